//! Batched beam search over a scorer under a constraint.

use super::{Allowed, Beams, Constraint, Scorer};
use crate::error::{Error, Result, invalid};
use crate::hits::{Hits, NO_ITEM};
use crate::sid::State;

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
/// let hits = search.search(&trie, &mut scorer, 1)?;
/// // (1,1) scores 3, (0,1) 2, (1,0) 1; (0,0) is not a valid ID.
/// assert_eq!(hits.query(0).items, &[2, 0, 1]);
/// assert_eq!(hits.query(0).scores, &[3.0, 2.0, 1.0]);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BeamSearch {
    beam: usize,
    k: usize,
    renormalize: bool,
    // Live beams (all queries), and the next level's.
    prefix: Vec<u16>,
    state: Vec<State>,
    score: Vec<f32>,
    query: Vec<u32>,
    parent: Vec<u32>,
    next_prefix: Vec<u16>,
    next_state: Vec<State>,
    next_score: Vec<f32>,
    next_query: Vec<u32>,
    next_parent: Vec<u32>,
    scores: Vec<f32>,
    // (first, end) beams of each query at the current level.
    runs: Vec<(usize, usize)>,
    lex: Vec<u32>,
    // −score of the kept candidates of one query (ascending; candidates
    // arrive in lexicographic order, so an equal key keeps the earlier one),
    // and their (parent beam, allowed index, token).
    top: Vec<f32>,
    top_src: Vec<(u32, u32, u16)>,
    /// At most this many beams (and so results) per level-0 token.
    per_prefix: Option<usize>,
    // Candidates of one query for the filtered path: (−score, visit order,
    // parent, allowed index, token).
    cands: Vec<(f32, u32, u32, u32, u16)>,
    // Accepted beams per level-0 token of one query.
    first_counts: Vec<(u16, usize)>,
    /// Buffers a scorer built for one call may borrow and give back (the
    /// codebook scorer's residuals and converted queries), so that repeated
    /// searches allocate nothing.
    pub(crate) scorer_scratch: super::codebook::ScorerScratch,
}

/// Which items each query may receive, applied inside a search
/// ([`BeamSearch::search_filtered`]).
pub trait ItemFilter {
    /// Whether query `query` (its index in the batch) may receive `item`.
    fn allows(&self, query: usize, item: u32) -> bool;
    /// The number of queries the filter is for, if it is for a fixed
    /// number (the search checks it against its batch).
    fn n_queries(&self) -> Option<usize> {
        None
    }
}

impl<F: Fn(usize, u32) -> bool> ItemFilter for F {
    fn allows(&self, query: usize, item: u32) -> bool {
        self(query, item)
    }
}

/// Per-query item lists: a deny list (e.g. items already seen) or an allow
/// list (e.g. one category). Memory: the lists, sorted; a check is a
/// binary search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemLists {
    lists: Vec<Vec<u32>>,
    deny: bool,
}

impl ItemLists {
    /// Query `q` may receive any item but those of `lists[q]`.
    pub fn deny<L: AsRef<[u32]>>(lists: &[L]) -> ItemLists {
        ItemLists::new(lists, true)
    }

    /// Query `q` may receive only the items of `lists[q]`.
    pub fn allow<L: AsRef<[u32]>>(lists: &[L]) -> ItemLists {
        ItemLists::new(lists, false)
    }

    fn new<L: AsRef<[u32]>>(lists: &[L], deny: bool) -> ItemLists {
        let lists = lists
            .iter()
            .map(|l| {
                let mut v = l.as_ref().to_vec();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        ItemLists { lists, deny }
    }
}

impl ItemFilter for ItemLists {
    fn allows(&self, query: usize, item: u32) -> bool {
        let listed = self
            .lists
            .get(query)
            .is_some_and(|l| l.binary_search(&item).is_ok());
        listed != self.deny
    }
    fn n_queries(&self) -> Option<usize> {
        Some(self.lists.len())
    }
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
            renormalize: false,
            prefix: Vec::new(),
            state: Vec::new(),
            score: Vec::new(),
            query: Vec::new(),
            parent: Vec::new(),
            next_prefix: Vec::new(),
            next_state: Vec::new(),
            next_score: Vec::new(),
            next_query: Vec::new(),
            next_parent: Vec::new(),
            scores: Vec::new(),
            runs: Vec::new(),
            lex: Vec::new(),
            top: Vec::new(),
            top_src: Vec::new(),
            per_prefix: None,
            cands: Vec::new(),
            first_counts: Vec::new(),
            scorer_scratch: (Vec::new(), Vec::new()),
        })
    }

    /// Treats each beam's scores as log-probabilities and renormalises them
    /// over the tokens the constraint allows (off by default).
    ///
    /// Off, a beam's score is the sum of the scorer's log-scores: a model
    /// that gives little mass to the valid continuations of a prefix
    /// penalises every item under it, even where the trie leaves one child.
    /// On, every level subtracts `log Σ exp(score)` over the allowed tokens
    /// (finite scores only), so the result is the model's probability
    /// *conditioned on emitting a valid ID*; a prefix with one valid child
    /// costs nothing more. This suits models trained without the
    /// constraint (a token softmax over the whole level vocabulary).
    /// Scores that are not log-probabilities (distances) should leave it
    /// off.
    ///
    /// ```
    /// use semid::{Codes, decode::{BeamSearch, TableScorer}, sid::{CollisionPolicy, SidMap, Trie}};
    /// let codes = Codes::new(vec![0, 0, 1, 1], 2)?;
    /// let (map, _) = SidMap::build(&codes, &[2, 2], CollisionPolicy::AllowShared)?;
    /// let trie = Trie::build(&map)?;
    /// let ln = |p: f32| p.ln();
    /// // Level 0 prefers 0 (0.6), but the model puts little mass on 0's
    /// // only valid child, (0, 0).
    /// let s = vec![ln(0.6), ln(0.4), ln(0.1), ln(0.9)];
    /// let mut scorer = TableScorer::new(1, &[2, 2], s.clone())?;
    /// let masked = BeamSearch::new(2, 2)?.search(&trie, &mut scorer, 1)?;
    /// assert_eq!(masked.query(0).items, &[1, 0]); // 0.4·0.9 > 0.6·0.1
    /// let mut scorer = TableScorer::new(1, &[2, 2], s)?;
    /// let mut renorm = BeamSearch::new(2, 2)?.renormalize(true);
    /// let hits = renorm.search(&trie, &mut scorer, 1)?;
    /// assert_eq!(hits.query(0).items, &[0, 1]); // 0.6·1 > 0.4·1
    /// # Ok::<(), semid::Error>(())
    /// ```
    #[must_use]
    pub fn renormalize(mut self, on: bool) -> BeamSearch {
        self.renormalize = on;
        self
    }

    /// At most `cap` results per query share their first token (`None`,
    /// the default: no cap): diversity through the ID hierarchy, which
    /// dense retrieval cannot offer cheaply. Inside the search: the last
    /// level keeps at most `cap` complete IDs per first token, and earlier
    /// levels at most `⌈beam · cap / k⌉` beams per first token (never
    /// fewer than `cap`), so the freed beams explore other branches. With
    /// `beam ≥ |IDs| · k` the result is the exhaustive ranking with the
    /// cap applied greedily. Errors: `cap == Some(0)`.
    pub fn per_prefix(mut self, cap: Option<usize>) -> Result<BeamSearch> {
        if cap == Some(0) {
            return Err(invalid(
                "per_prefix",
                "is 0; keep at least 1 result per first token, or None",
            ));
        }
        self.per_prefix = cap;
        Ok(self)
    }

    /// Whether [`BeamSearch::renormalize`] is on.
    #[must_use]
    pub fn renormalizes(&self) -> bool {
        self.renormalize
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

    /// [`BeamSearch::search_into`] a new [`Hits`].
    pub fn search<C: Constraint + ?Sized, S: Scorer + ?Sized>(
        &mut self,
        constraint: &C,
        scorer: &mut S,
        n_queries: usize,
    ) -> Result<Hits> {
        let mut h = Hits::new();
        self.search_into(constraint, scorer, n_queries, &mut h)?;
        Ok(h)
    }

    /// Decodes `n_queries` queries (the scorer knows what they are) into
    /// `out`, reusing its buffers.
    ///
    /// Errors: `n_queries == 0`, a scorer error, or a scorer that wrote
    /// another number of scores than `beams × vocab`.
    pub fn search_into<C: Constraint + ?Sized, S: Scorer + ?Sized>(
        &mut self,
        constraint: &C,
        scorer: &mut S,
        n_queries: usize,
        out: &mut Hits,
    ) -> Result<()> {
        self.run(constraint, scorer, n_queries, None, out)
    }

    /// [`BeamSearch::search`] where query `q` may only receive the items
    /// `filter` allows it. The filter works inside the search: at the last
    /// level a complete ID none of whose items is allowed is never a
    /// candidate, so it takes no beam and no result; prefixes above it are
    /// not pruned (an allow list much smaller than the catalog wants a
    /// wider beam).
    ///
    /// ```
    /// use semid::{Codes, decode::{BeamSearch, ItemLists, TableScorer}, sid::{CollisionPolicy, SidMap, Trie}};
    /// let codes = Codes::new(vec![0, 0, 0, 1, 1, 0], 2)?;
    /// let (map, _) = SidMap::build(&codes, &[2, 2], CollisionPolicy::AllowShared)?;
    /// let trie = Trie::build(&map)?;
    /// let mut scorer = TableScorer::new(1, &[2, 2], vec![0.0, -1.0, -0.5, -0.7])?;
    /// // Item 0, (0,0), is the best; the user has seen it.
    /// let seen = ItemLists::deny(&[vec![0u32]]);
    /// let hits = BeamSearch::new(2, 2)?.search_filtered(&trie, &mut scorer, 1, &seen)?;
    /// assert_eq!(hits.query(0).items, &[1, 2]);
    /// # Ok::<(), semid::Error>(())
    /// ```
    pub fn search_filtered<C, S, F>(
        &mut self,
        constraint: &C,
        scorer: &mut S,
        n_queries: usize,
        filter: &F,
    ) -> Result<Hits>
    where
        C: Constraint + ?Sized,
        S: Scorer + ?Sized,
        F: ItemFilter + ?Sized,
    {
        if let Some(n) = filter.n_queries()
            && n != n_queries
        {
            return Err(Error::Shape {
                what: "item filter lists (one per query)",
                expected: n_queries,
                got: n,
            });
        }
        let mut h = Hits::new();
        self.run(
            constraint,
            scorer,
            n_queries,
            Some(&FilterRef(filter)),
            &mut h,
        )?;
        Ok(h)
    }

    fn run<C: Constraint + ?Sized, S: Scorer + ?Sized>(
        &mut self,
        constraint: &C,
        scorer: &mut S,
        n_queries: usize,
        filter: Option<&dyn ItemFilter>,
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
        let depth = constraint.id_len();
        if depth == 0 {
            return Err(Error::Empty {
                what: "constraint depth",
            });
        }
        self.prefix.clear();
        self.state.clear();
        self.score.clear();
        self.query.clear();
        self.parent.clear();
        let root = constraint.start();
        for q in 0..n_queries {
            self.state.push(root);
            self.score.push(0.0);
            self.query.push(q as u32);
        }
        for level in 0..depth {
            let vocab = constraint.codebook_size(level);
            crate::data::check_vocab("constraint vocabulary", &[vocab], 1)?;
            self.scores.clear();
            // Start fetching every beam's trie node, then its children, so
            // that the lookups after scoring find them in cache (a batch of
            // independent loads instead of one miss per beam).
            for &s in &self.state {
                constraint.prefetch(s);
            }
            for &s in &self.state {
                constraint.prefetch_children(s);
            }
            if !self.query.is_empty() {
                let beams = Beams {
                    level,
                    codebook_size: vocab,
                    n_queries,
                    prefixes: &self.prefix,
                    queries: &self.query,
                    parents: &self.parent,
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
            let last_filter = filter.filter(|_| level + 1 == depth);
            if self.per_prefix.is_some() || last_filter.is_some() {
                self.expand_filtered(constraint, (level, level + 1 == depth), vocab, last_filter);
            } else {
                self.expand(constraint, level, vocab);
            }
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
                    let ok = |&&it: &&u32| filter.is_none_or(|f| f.allows(q as usize, it));
                    for &it in items.iter().filter(ok).take(self.k - n) {
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

    /// [`BeamSearch::expand`] with the per-prefix cap and, at the last
    /// level, the item filter: every candidate of a query is collected,
    /// sorted by (−score, visit order) and accepted greedily.
    fn expand_filtered<C: Constraint + ?Sized>(
        &mut self,
        c: &C,
        (level, last): (usize, bool),
        vocab: usize,
        filter: Option<&dyn ItemFilter>,
    ) {
        self.begin_level();
        for run in 0..self.runs.len() {
            let (b0, b1) = self.runs[run];
            let q = self.query[b0];
            self.lex_order(b0, b1, level);
            self.cands.clear();
            let mut visit = 0u32;
            for &parent in &self.lex {
                let parent = parent as usize;
                let row = &self.scores[parent * vocab..(parent + 1) * vocab];
                let allowed = c.allowed(self.state[parent]);
                let base = self.base_score(parent, row, &allowed);
                let state = self.state[parent];
                let consider = |i: usize, t: u16, s: f32| {
                    let total = base + s;
                    visit += 1;
                    if total.is_nan() || total == f32::NEG_INFINITY {
                        return;
                    }
                    if let Some(f) = filter {
                        let items = c.items(c.child(state, i));
                        if !items.is_empty() && !items.iter().any(|&it| f.allows(q as usize, it)) {
                            return;
                        }
                    }
                    self.cands.push((-total, visit, parent as u32, i as u32, t));
                };
                each_allowed(row, &allowed, consider);
            }
            self.cands
                .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            self.first_counts.clear();
            let mut kept = 0;
            for j in 0..self.cands.len() {
                if kept == self.beam {
                    break;
                }
                let (key, _, parent, i, t) = self.cands[j];
                let parent = parent as usize;
                let first = if level == 0 {
                    t
                } else {
                    self.prefix[parent * level]
                };
                if let Some(cap) = self.per_prefix {
                    // The last level caps results; earlier levels keep a
                    // first token's fair share of the beam (at least `cap`),
                    // so the freed beams explore other branches.
                    let cap = if last {
                        cap
                    } else {
                        (self.beam * cap).div_ceil(self.k).max(cap)
                    };
                    match self.first_counts.iter_mut().find(|(f, _)| *f == first) {
                        Some((_, n)) if *n >= cap => continue,
                        Some((_, n)) => *n += 1,
                        None => self.first_counts.push((first, 1)),
                    }
                }
                kept += 1;
                self.push_beam(c, level, (parent, i, t), -key);
            }
        }
        self.end_level();
    }

    /// One level: select the next beams of every query from the scores.
    fn expand<C: Constraint + ?Sized>(&mut self, c: &C, level: usize, vocab: usize) {
        self.begin_level();
        for run in 0..self.runs.len() {
            let (b0, b1) = self.runs[run];
            self.lex_order(b0, b1, level);
            self.top.clear();
            self.top_src.clear();
            let cap = self.beam;
            let mut worst = f32::INFINITY; // −score of the worst kept, once full
            for &parent in &self.lex {
                let parent = parent as usize;
                let row = &self.scores[parent * vocab..(parent + 1) * vocab];
                let allowed = c.allowed(self.state[parent]);
                let base = self.base_score(parent, row, &allowed);
                let consider = |i: usize, t: u16, s: f32| {
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
                each_allowed(row, &allowed, consider);
            }
            for j in 0..self.top_src.len() {
                let (parent, i, t) = self.top_src[j];
                self.push_beam(c, level, (parent as usize, i, t), -self.top[j]);
            }
        }
        self.end_level();
    }

    /// Empties the next level's buffers and finds each query's run of
    /// beams (`runs`; beams of one query are contiguous).
    fn begin_level(&mut self) {
        self.runs.clear();
        let mut b0 = 0;
        while b0 < self.query.len() {
            let q = self.query[b0];
            let b1 = b0 + self.query[b0..].iter().take_while(|&&x| x == q).count();
            self.runs.push((b0, b1));
            b0 = b1;
        }
        self.next_prefix.clear();
        self.next_state.clear();
        self.next_score.clear();
        self.next_query.clear();
        self.next_parent.clear();
    }

    /// Makes the next level's beams the current ones.
    fn end_level(&mut self) {
        std::mem::swap(&mut self.prefix, &mut self.next_prefix);
        std::mem::swap(&mut self.state, &mut self.next_state);
        std::mem::swap(&mut self.score, &mut self.next_score);
        std::mem::swap(&mut self.query, &mut self.next_query);
        std::mem::swap(&mut self.parent, &mut self.next_parent);
    }

    /// Beams `b0..b1` (one query's) into `lex`, in lexicographic order of
    /// their prefixes, so that the ordinal (lex rank, token) orders
    /// candidates lexicographically.
    fn lex_order(&mut self, b0: usize, b1: usize, level: usize) {
        self.lex.clear();
        self.lex.extend(b0 as u32..b1 as u32);
        if level > 0 && b1 - b0 > 1 {
            let p = &self.prefix;
            self.lex.sort_unstable_by(|&x, &y| {
                let (x, y) = (x as usize, y as usize);
                p[x * level..(x + 1) * level].cmp(&p[y * level..(y + 1) * level])
            });
        }
    }

    /// The parent's log-probability, less the log of its allowed tokens'
    /// mass when renormalizing.
    fn base_score(&self, parent: usize, row: &[f32], allowed: &Allowed<'_>) -> f32 {
        if self.renormalize {
            self.score[parent] - log_sum_exp(row, allowed)
        } else {
            self.score[parent]
        }
    }

    /// Appends a child beam: `parent`'s prefix plus token `t`, the `i`-th
    /// allowed child of the parent's state, with `score`.
    fn push_beam<C: Constraint + ?Sized>(
        &mut self,
        c: &C,
        level: usize,
        (parent, i, t): (usize, u32, u16),
        score: f32,
    ) {
        let q = self.query[parent];
        self.next_prefix
            .extend_from_slice(&self.prefix[parent * level..(parent + 1) * level]);
        self.next_prefix.push(t);
        self.next_state
            .push(c.child(self.state[parent], i as usize));
        self.next_score.push(score);
        self.next_query.push(q);
        self.next_parent.push(parent as u32);
    }
}

/// Calls `f(i, token, score)` for each allowed token of a beam's score row:
/// `i` is the token's rank among the allowed children; a token beyond the
/// vocabulary cannot be scored and is skipped.
fn each_allowed(row: &[f32], allowed: &Allowed<'_>, mut f: impl FnMut(usize, u16, f32)) {
    match allowed {
        Allowed::All => {
            for (t, &s) in row.iter().enumerate() {
                f(t, t as u16, s);
            }
        }
        Allowed::Tokens(toks) => {
            for (i, &t) in toks.iter().enumerate() {
                if let Some(&s) = row.get(t as usize) {
                    f(i, t, s);
                }
            }
        }
    }
}

/// Borrows a possibly unsized filter as a `dyn ItemFilter`.
struct FilterRef<'a, F: ItemFilter + ?Sized>(&'a F);

impl<F: ItemFilter + ?Sized> ItemFilter for FilterRef<'_, F> {
    fn allows(&self, query: usize, item: u32) -> bool {
        self.0.allows(query, item)
    }
}

/// `log Σ exp(row[t])` over the allowed tokens with finite scores; 0 when
/// there are none (every candidate is then impossible or +∞ anyway).
fn log_sum_exp(row: &[f32], allowed: &Allowed<'_>) -> f32 {
    let finite = |t: usize| row.get(t).copied().filter(|s| s.is_finite());
    let mut max = f32::NEG_INFINITY;
    let visit = |f: &mut dyn FnMut(f32)| match allowed {
        Allowed::All => row.iter().filter(|s| s.is_finite()).for_each(|&s| f(s)),
        Allowed::Tokens(toks) => toks
            .iter()
            .filter_map(|&t| finite(t as usize))
            .for_each(&mut *f),
    };
    visit(&mut |s| max = max.max(s));
    if max == f32::NEG_INFINITY {
        return 0.0;
    }
    let mut sum = 0f64;
    visit(&mut |s| sum += f64::from(s - max).exp());
    max + sum.ln() as f32
}
