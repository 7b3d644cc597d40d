//! Constrained beam search over semantic IDs.
//!
//! A [`Scorer`] gives next-token log-scores for a batch of live beams (a
//! model's logits, or [`CodebookScorer`]'s distances of a query embedding to
//! the codebooks); a [`Constraint`] says which tokens may follow a prefix
//! (the [`Trie`] of valid IDs, or [`Unconstrained`]); [`BeamSearch`] keeps
//! the best `beam` prefixes per query, level by level, and returns the top
//! `k` items with their scores as [`Hits`].
//!
//! Masking happens *before* selection: only allowed tokens are candidates,
//! so a beam never leaves the trie and every hit is a valid ID.

mod codebook;
mod scorers;

pub use codebook::{CodebookScorer, ScoreMetric};
pub use scorers::{FnScorer, TableScorer};

use crate::error::{Error, Result, invalid};
use crate::sid::{State, Trie};

/// `item` value of hits that carry no item ([`Unconstrained`] search).
pub const NO_ITEM: u32 = u32::MAX;

/// Which tokens may follow a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed<'a> {
    /// Every token of the vocabulary.
    All,
    /// Only these tokens (strictly ascending).
    Tokens(&'a [u16]),
}

/// The set of sequences a search may emit, as an automaton over tokens.
///
/// Implemented by [`Trie`] (valid semantic IDs) and [`Unconstrained`].
/// States are [`State`] values (`depth`, `node`); a custom constraint may
/// use `node` as it likes.
pub trait Constraint {
    /// Tokens per complete sequence.
    fn depth(&self) -> usize;
    /// Vocabulary size at position `level`.
    fn vocab(&self, level: usize) -> usize;
    /// The state before any token.
    fn start(&self) -> State;
    /// Tokens allowed after `s`.
    fn allowed(&self, s: State) -> Allowed<'_>;
    /// The state after the `i`-th allowed token of `s` (for
    /// [`Allowed::All`], token `i`).
    fn child(&self, s: State, i: usize) -> State;
    /// Items of a complete sequence (empty: the sequence is a hit with no
    /// item, [`NO_ITEM`]).
    fn items(&self, s: State) -> &[u32];
}

impl Constraint for Trie {
    fn depth(&self) -> usize {
        Trie::depth(self)
    }
    fn vocab(&self, level: usize) -> usize {
        Trie::vocab(self)[level]
    }
    fn start(&self) -> State {
        Trie::start(self)
    }
    #[inline]
    fn allowed(&self, s: State) -> Allowed<'_> {
        Allowed::Tokens(Trie::allowed(self, s))
    }
    #[inline]
    fn child(&self, s: State, i: usize) -> State {
        Trie::child(self, s, i).unwrap_or(s)
    }
    fn items(&self, s: State) -> &[u32] {
        Trie::items(self, s)
    }
}

/// No constraint: every token sequence of the given vocabularies is valid.
/// Hits carry the sequence and [`NO_ITEM`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unconstrained {
    vocab: Vec<usize>,
}

impl Unconstrained {
    /// Sequences of `vocab.len()` tokens, position `l` drawn from
    /// `0..vocab[l]`.
    pub fn new(vocab: &[usize]) -> Result<Unconstrained> {
        if vocab.is_empty() {
            return Err(Error::Empty {
                what: "vocabulary sizes",
            });
        }
        if let Some(&v) = vocab.iter().find(|&&v| v == 0 || v > 1 << 16) {
            return Err(invalid(
                "vocab",
                format!("holds {v}; every position needs 1..=65536 tokens"),
            ));
        }
        Ok(Unconstrained {
            vocab: vocab.to_vec(),
        })
    }
}

impl Constraint for Unconstrained {
    fn depth(&self) -> usize {
        self.vocab.len()
    }
    fn vocab(&self, level: usize) -> usize {
        self.vocab[level]
    }
    fn start(&self) -> State {
        State::default()
    }
    fn allowed(&self, _: State) -> Allowed<'_> {
        Allowed::All
    }
    fn child(&self, s: State, _: usize) -> State {
        State {
            depth: s.depth + 1,
            node: 0,
        }
    }
    fn items(&self, _: State) -> &[u32] {
        &[]
    }
}

/// The live beams of one decoding step, handed to a [`Scorer`].
#[derive(Clone, Copy, Debug)]
pub struct Beams<'a> {
    /// Position being decoded (0 = first token).
    pub level: usize,
    /// Scores to write per beam (the vocabulary at `level`).
    pub vocab: usize,
    /// Number of queries in the batch.
    pub n_queries: usize,
    /// Prefix of every beam, row-major `n_beams × level` (empty at level 0).
    pub prefixes: &'a [u16],
    /// Query (index within the batch) of every beam; beams of one query are
    /// contiguous and queries ascend.
    pub queries: &'a [u32],
}

impl Beams<'_> {
    /// Number of live beams.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queries.len()
    }
    /// True when no beam is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
    /// Checks the fields agree (prefix length, query indices below
    /// `n_queries`): the built-in scorers call it so that a hand-made
    /// `Beams` gives an error, not a panic.
    pub fn check(&self) -> Result<()> {
        let want = self.queries.len().saturating_mul(self.level);
        if self.prefixes.len() != want {
            return Err(Error::Shape {
                what: "beam prefixes (beams × level)",
                expected: want,
                got: self.prefixes.len(),
            });
        }
        if let Some(&q) = self.queries.iter().find(|&&q| q as usize >= self.n_queries) {
            return Err(Error::Shape {
                what: "beam query index (below n_queries)",
                expected: self.n_queries,
                got: q as usize,
            });
        }
        Ok(())
    }

    /// Prefix of beam `b`.
    ///
    /// # Panics
    /// If `b >= len()` or the prefixes are shorter than `len() × level`.
    #[must_use]
    pub fn prefix(&self, b: usize) -> &[u16] {
        &self.prefixes[b * self.level..(b + 1) * self.level]
    }
}

/// Next-token log-scores for a batch of beams.
pub trait Scorer {
    /// Appends `beams.len() × beams.vocab` log-scores to `out` (empty on
    /// entry; the decoder owns it and keeps its capacity): row `b` holds the
    /// score of every token after beam `b`'s prefix. Higher is better; NaN
    /// and −∞ mean "never".
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()>;
}

impl<S: Scorer + ?Sized> Scorer for &mut S {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        (**self).score(beams, out)
    }
}

/// Ranked hits of a batch of queries: for each query up to `k` items with
/// their scores (best first) and their IDs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hits {
    offsets: Vec<usize>,
    items: Vec<u32>,
    scores: Vec<f32>,
    ids: Vec<u16>,
    id_len: usize,
}

/// One query's hits, borrowed from [`Hits`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueryHits<'a> {
    /// Items, best first ([`NO_ITEM`] for unconstrained hits).
    pub items: &'a [u32],
    /// Scores (sum of per-level log-scores), non-increasing.
    pub scores: &'a [f32],
    /// IDs of the hits, row-major `items.len() × id_len` (empty for dense
    /// retrieval).
    pub ids: &'a [u16],
}

impl Hits {
    /// Empty hits.
    #[must_use]
    pub fn new() -> Hits {
        Hits {
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Tokens per ID in [`QueryHits::ids`] (0 when hits carry no ID).
    #[must_use]
    pub fn id_len(&self) -> usize {
        self.id_len
    }

    /// Hits of query `q`.
    ///
    /// # Panics
    /// If `q >= n_queries()`, like slice indexing.
    #[must_use]
    pub fn query(&self, q: usize) -> QueryHits<'_> {
        let (lo, hi) = (self.offsets[q], self.offsets[q + 1]);
        QueryHits {
            items: &self.items[lo..hi],
            scores: &self.scores[lo..hi],
            ids: &self.ids[lo * self.id_len..hi * self.id_len],
        }
    }

    /// All items, query after query.
    #[must_use]
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// Start of every query's hits in [`Hits::items`], plus the end.
    #[must_use]
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Items of every query as vectors (for metrics and printing).
    #[must_use]
    pub fn to_lists(&self) -> Vec<Vec<u32>> {
        (0..self.n_queries())
            .map(|q| self.query(q).items.to_vec())
            .collect()
    }

    pub(crate) fn clear(&mut self, id_len: usize) {
        self.offsets.clear();
        self.offsets.push(0);
        self.items.clear();
        self.scores.clear();
        self.ids.clear();
        self.id_len = id_len;
    }

    pub(crate) fn push(&mut self, item: u32, score: f32, id: &[u16]) {
        self.items.push(item);
        self.scores.push(score);
        self.ids.extend_from_slice(id);
    }

    pub(crate) fn end_query(&mut self) {
        self.offsets.push(self.items.len());
    }
}

/// Batched beam search over a [`Scorer`] under a [`Constraint`].
///
/// For each query, level by level, every live beam is extended by every
/// *allowed* token; the `beam` best candidates (sum of log-scores) survive.
/// After the last level the complete sequences are expanded to their items
/// (all items of a shared ID get its score) and the first `k` are returned.
///
/// **Tie-break** (deterministic, documented): candidates are ordered by
/// score descending, then by token sequence lexicographically ascending.
/// Items of one ID come in catalog order. With `beam ≥` the number of
/// valid sequences the result equals exhaustive scoring of every sequence
/// under the same order.
///
/// **Non-finite scores**: NaN and −∞ log-scores (and sums that become NaN)
/// mark a candidate as impossible: it is never kept, so a query whose every
/// candidate is impossible gets fewer than `k` (or no) hits. +∞ is kept and
/// ranks first.
///
/// **Allocation**: the search reuses its buffers and the [`Hits`] passed
/// in; after a first call of a given shape it does not allocate.
///
/// ```
/// use semid::{Codes, decode::{BeamSearch, TableScorer}, sid::{CollisionPolicy, SidMap, Trie}};
/// let codes = Codes::new(vec![0, 1, 1, 0, 1, 1], 2)?;
/// let (map, _) = SidMap::build(&codes, &[2, 2], CollisionPolicy::AllowShared)?;
/// let trie = Trie::build(&map)?;
/// // One query: level-0 scores [0, 1], level-1 scores [0, 2].
/// let mut scorer = TableScorer::new(1, &[2, 2], vec![0.0, 1.0, 0.0, 2.0])?;
/// let mut search = BeamSearch::new(3, 3)?;
/// let hits = search.run(&trie, &mut scorer, 1)?;
/// // (1,1) scores 3, (0,1) 2, (1,0) 1; (0,0) is not a valid ID.
/// assert_eq!(hits.query(0).items, &[2, 0, 1]);
/// assert_eq!(hits.query(0).scores, &[3.0, 2.0, 1.0]);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BeamSearch {
    beam: usize,
    k: usize,
    // Live beams (all queries), and the next level's.
    prefix: Vec<u16>,
    state: Vec<State>,
    score: Vec<f32>,
    query: Vec<u32>,
    next_prefix: Vec<u16>,
    next_state: Vec<State>,
    next_score: Vec<f32>,
    next_query: Vec<u32>,
    scores: Vec<f32>,
    lex: Vec<u32>,
    // −score of the kept candidates of one query (ascending; candidates
    // arrive in lexicographic order, so an equal key keeps the earlier one),
    // and their (parent beam, allowed index, token).
    top: Vec<f32>,
    top_src: Vec<(u32, u32, u16)>,
}

impl BeamSearch {
    /// A search keeping `beam` prefixes per query and returning `k` items.
    ///
    /// Errors: `beam == 0` or `k == 0`.
    pub fn new(beam: usize, k: usize) -> Result<BeamSearch> {
        if beam == 0 {
            return Err(invalid("beam", "is 0; keep at least 1 beam"));
        }
        if beam > u32::MAX as usize / 2 {
            return Err(invalid("beam", format!("is {beam}; at most 2^31")));
        }
        if k == 0 {
            return Err(invalid("k", "is 0; ask for at least 1 item"));
        }
        Ok(BeamSearch {
            beam,
            k,
            prefix: Vec::new(),
            state: Vec::new(),
            score: Vec::new(),
            query: Vec::new(),
            next_prefix: Vec::new(),
            next_state: Vec::new(),
            next_score: Vec::new(),
            next_query: Vec::new(),
            scores: Vec::new(),
            lex: Vec::new(),
            top: Vec::new(),
            top_src: Vec::new(),
        })
    }

    /// Beam width.
    #[must_use]
    pub fn beam(&self) -> usize {
        self.beam
    }

    /// Items returned per query.
    #[must_use]
    pub fn k(&self) -> usize {
        self.k
    }

    /// [`BeamSearch::search`] into a new [`Hits`].
    pub fn run<C: Constraint + ?Sized, S: Scorer + ?Sized>(
        &mut self,
        constraint: &C,
        scorer: &mut S,
        n_queries: usize,
    ) -> Result<Hits> {
        let mut h = Hits::new();
        self.search(constraint, scorer, n_queries, &mut h)?;
        Ok(h)
    }

    /// Decodes `n_queries` queries (the scorer knows what they are) into
    /// `out`.
    ///
    /// Errors: `n_queries == 0`, a scorer error, or a scorer that wrote
    /// another number of scores than `beams × vocab`.
    pub fn search<C: Constraint + ?Sized, S: Scorer + ?Sized>(
        &mut self,
        constraint: &C,
        scorer: &mut S,
        n_queries: usize,
        out: &mut Hits,
    ) -> Result<()> {
        if n_queries == 0 {
            return Err(Error::Empty {
                what: "query batch",
            });
        }
        if n_queries > u32::MAX as usize {
            return Err(Error::Shape {
                what: "queries per batch (at most u32::MAX)",
                expected: u32::MAX as usize,
                got: n_queries,
            });
        }
        let depth = constraint.depth();
        if depth == 0 {
            return Err(Error::Empty {
                what: "constraint depth",
            });
        }
        self.prefix.clear();
        self.state.clear();
        self.score.clear();
        self.query.clear();
        let root = constraint.start();
        for q in 0..n_queries {
            self.state.push(root);
            self.score.push(0.0);
            self.query.push(q as u32);
        }
        for level in 0..depth {
            let vocab = constraint.vocab(level);
            if vocab == 0 || vocab > 1 << 16 {
                return Err(invalid(
                    "constraint",
                    format!("has vocabulary {vocab} at level {level}; 1..=65536 needed"),
                ));
            }
            self.scores.clear();
            if !self.query.is_empty() {
                let beams = Beams {
                    level,
                    vocab,
                    n_queries,
                    prefixes: &self.prefix,
                    queries: &self.query,
                };
                scorer.score(&beams, &mut self.scores)?;
                let want = self.query.len() * vocab;
                if self.scores.len() != want {
                    return Err(Error::Shape {
                        what: "scores written by the scorer (beams × vocab)",
                        expected: want,
                        got: self.scores.len(),
                    });
                }
            }
            self.expand(constraint, level, vocab);
        }
        // Expand complete sequences to items.
        out.clear(depth);
        let mut b = 0;
        for q in 0..n_queries as u32 {
            let mut n = 0;
            while b < self.query.len() && self.query[b] == q {
                if n < self.k {
                    let id = &self.prefix[b * depth..(b + 1) * depth];
                    let items = constraint.items(self.state[b]);
                    if items.is_empty() {
                        out.push(NO_ITEM, self.score[b], id);
                        n += 1;
                    }
                    for &it in items.iter().take(self.k - n) {
                        out.push(it, self.score[b], id);
                        n += 1;
                    }
                }
                b += 1;
            }
            out.end_query();
        }
        Ok(())
    }

    /// One level: select the next beams of every query from the scores.
    fn expand<C: Constraint + ?Sized>(&mut self, c: &C, level: usize, vocab: usize) {
        self.next_prefix.clear();
        self.next_state.clear();
        self.next_score.clear();
        self.next_query.clear();
        let nb = self.query.len();
        let mut b0 = 0;
        while b0 < nb {
            let q = self.query[b0];
            let mut b1 = b0 + 1;
            while b1 < nb && self.query[b1] == q {
                b1 += 1;
            }
            // Parents in lexicographic order of their prefixes, so that the
            // ordinal (lex rank, token) orders candidates lexicographically.
            self.lex.clear();
            self.lex.extend(b0 as u32..b1 as u32);
            if level > 0 && b1 - b0 > 1 {
                let p = &self.prefix;
                self.lex.sort_unstable_by(|&x, &y| {
                    let (x, y) = (x as usize, y as usize);
                    p[x * level..(x + 1) * level].cmp(&p[y * level..(y + 1) * level])
                });
            }
            self.top.clear();
            self.top_src.clear();
            let cap = self.beam;
            let mut worst = f32::INFINITY; // −score of the worst kept, once full
            for &parent in &self.lex {
                let parent = parent as usize;
                let base = self.score[parent];
                let row = &self.scores[parent * vocab..(parent + 1) * vocab];
                let mut consider = |i: usize, t: u16, s: f32| {
                    let total = base + s;
                    // NaN or −∞: impossible.
                    if total.is_nan() || total == f32::NEG_INFINITY {
                        return;
                    }
                    let key = -total;
                    // Ordinals ascend, so an equal key loses to the kept one.
                    if self.top.len() == cap && key >= worst {
                        return;
                    }
                    let pos = self.top.partition_point(|&w| w <= key);
                    if self.top.len() == cap {
                        self.top.pop();
                        self.top_src.pop();
                    }
                    self.top.insert(pos, key);
                    self.top_src.insert(pos, (parent as u32, i as u32, t));
                    if self.top.len() == cap {
                        worst = self.top[cap - 1];
                    }
                };
                match c.allowed(self.state[parent]) {
                    Allowed::All => {
                        for (t, &s) in row.iter().enumerate() {
                            consider(t, t as u16, s);
                        }
                    }
                    Allowed::Tokens(toks) => {
                        for (i, &t) in toks.iter().enumerate() {
                            // A token beyond the vocabulary cannot be scored.
                            if let Some(&s) = row.get(t as usize) {
                                consider(i, t, s);
                            }
                        }
                    }
                }
            }
            for (j, &(parent, i, t)) in self.top_src.iter().enumerate() {
                let parent = parent as usize;
                self.next_prefix
                    .extend_from_slice(&self.prefix[parent * level..(parent + 1) * level]);
                self.next_prefix.push(t);
                self.next_state
                    .push(c.child(self.state[parent], i as usize));
                self.next_score.push(-self.top[j]);
                self.next_query.push(q);
            }
            b0 = b1;
        }
        std::mem::swap(&mut self.prefix, &mut self.next_prefix);
        std::mem::swap(&mut self.state, &mut self.next_state);
        std::mem::swap(&mut self.score, &mut self.next_score);
        std::mem::swap(&mut self.query, &mut self.next_query);
    }
}
