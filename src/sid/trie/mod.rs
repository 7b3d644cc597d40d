//! A flat, immutable prefix trie of semantic IDs.

mod build;
mod offsets;

use build::Builder;
use offsets::{OFF_BLOCK, Offsets};

use super::SidMap;
use super::sort::{packed_sorted, position_bits, radix_order};
use crate::error::{Error, FormatError, Result};
use crate::format::{ModelKind, sealed::Payload, to_invalid};

/// A position in the trie: the node reached after `depth` tokens.
///
/// `node` numbers the nodes of one depth in lexicographic order of their
/// prefixes, so at depth [`Trie::id_len`] it is the leaf (ID) index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct State {
    /// Tokens consumed.
    pub depth: u32,
    /// Node index within its depth.
    pub node: u32,
}

/// Memory and shape of a [`Trie`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrieStats {
    /// Distinct IDs (leaves).
    pub ids: usize,
    /// Items (≥ ids when IDs are shared).
    pub items: usize,
    /// Nodes per depth, root (depth 0) first.
    pub nodes_per_depth: Vec<usize>,
    /// Bytes of the ID structure: tokens, offsets and direct tables.
    pub structure_bytes: usize,
    /// Bytes of the leaf → item table.
    pub item_bytes: usize,
}

/// The set of valid semantic IDs as a flat prefix trie.
///
/// Nodes are numbered per depth in lexicographic order; each depth stores
/// its nodes' tokens (`u16`, sorted within each parent) and each parent's
/// child range (compressed offsets, 2 bytes per node plus 4 per 64 nodes).
/// Depths where a direct table is cheap (`nodes × vocab ≤
/// max(65 536, ids / 4)` entries) also get a table `(node, token) → child`,
/// so [`Trie::step`] there is one load; elsewhere it is a binary search
/// among the children. Leaves map to item ranges. The walk API follows
/// `fst`'s `Automaton`: [`Trie::start`], [`Trie::allowed`], [`Trie::step`],
/// [`Trie::items`].
///
/// ```
/// use semid::{Codes, sid::{CollisionPolicy, SidMap, Trie}};
/// let codes = Codes::new(vec![1, 2, 1, 3, 4, 0], 2)?;
/// let (map, _) = SidMap::build(&codes, &[8, 8], CollisionPolicy::AllowShared)?;
/// let trie = Trie::build(&map)?;
/// let s = trie.start();
/// assert_eq!(trie.allowed(s), &[1, 4]);
/// let s = trie.step(s, 1).unwrap();
/// assert_eq!(trie.allowed(s), &[2, 3]);
/// assert_eq!(trie.items(trie.step(s, 3).unwrap()), &[1]);
/// assert!(trie.step(s, 5).is_none());
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Trie {
    vocab: Vec<usize>,
    /// `tokens[p]`: token of every node at depth `p + 1`.
    tokens: Vec<Vec<u16>>,
    /// `offsets[p]`: child ranges of the nodes at depth `p` (len nodes + 1).
    offsets: Vec<Offsets>,
    /// Direct tables `(node, token) → child index` (`u32::MAX`: none).
    direct: Vec<Option<Vec<u32>>>,
    /// Leaf → item range; `None` when every leaf holds exactly one item.
    leaf_items: Option<Offsets>,
    items: Vec<u32>,
}

impl Trie {
    /// Builds the trie of a [`SidMap`]'s IDs. Cost: one pass over the map's
    /// sorted IDs.
    pub fn build(map: &SidMap) -> Result<Trie> {
        if map.is_empty() {
            return Err(Error::Empty { what: "SidMap" });
        }
        let mut b = Builder::new(map.codebook_sizes());
        for (item, id) in map.iter_sorted() {
            b.push(id, item);
        }
        b.finish()
    }

    /// Builds the trie of arbitrary IDs (`ids`: row-major, `id_len` tokens
    /// per row, any order, repeats allowed); row `i` is item `i`.
    ///
    /// Errors: empty input, a length that is not a multiple of `id_len`,
    /// more than `u32::MAX` rows, vocabularies of 0 or above 65 536, tokens
    /// out of range.
    pub fn from_ids(ids: &[u16], id_len: usize, vocab: &[usize]) -> Result<Trie> {
        if id_len == 0 || ids.is_empty() {
            return Err(Error::Empty { what: "IDs" });
        }
        if vocab.len() != id_len {
            return Err(Error::Shape {
                what: "vocabulary sizes (one per ID position)",
                expected: id_len,
                got: vocab.len(),
            });
        }
        check_vocab(vocab)?;
        if !ids.len().is_multiple_of(id_len) {
            return Err(Error::Shape {
                what: "ID token count (must be a multiple of id_len)",
                expected: ids.len().div_ceil(id_len) * id_len,
                got: ids.len(),
            });
        }
        let n = ids.len() / id_len;
        if n > u32::MAX as usize {
            return Err(Error::Shape {
                what: "IDs (at most u32::MAX)",
                expected: u32::MAX as usize,
                got: n,
            });
        }
        crate::data::check_tokens(ids, id_len, vocab)?;
        let mut b = Builder::new(vocab.to_vec());
        let bits = position_bits(id_len, vocab);
        let total: u32 = bits.iter().sum();
        if total <= 64 {
            // Walk the sorted packed keys sequentially, unpacking tokens.
            let mut id = vec![0u16; id_len];
            for (key, r) in packed_sorted(ids, id_len, &bits, total, n) {
                let mut k = key;
                for (t, &bw) in id.iter_mut().zip(&bits).rev() {
                    *t = (k & ((1u64 << bw) - 1)) as u16;
                    k = k.checked_shr(bw).unwrap_or(0);
                }
                b.push(&id, r);
            }
        } else {
            for r in radix_order(ids, id_len, vocab, n) {
                let r = r as usize;
                b.push(&ids[r * id_len..(r + 1) * id_len], r as u32);
            }
        }
        b.finish()
    }

    /// ID length (the depth of every leaf).
    #[must_use]
    pub fn id_len(&self) -> usize {
        self.vocab.len()
    }

    /// Codebook size of every ID position (the suffix position counts as
    /// one more codebook).
    #[must_use]
    pub fn codebook_sizes(&self) -> &[usize] {
        &self.vocab
    }

    /// Number of distinct IDs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.last().map_or(0, Vec::len)
    }

    /// True when the trie holds no ID (never, for a built trie).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root state (no token consumed).
    #[must_use]
    pub fn start(&self) -> State {
        State::default()
    }

    #[inline]
    fn range(&self, s: State) -> (usize, usize) {
        let o = &self.offsets[s.depth as usize];
        (o.get(s.node as usize), o.get(s.node as usize + 1))
    }

    /// Tokens that may follow state `s`, ascending; empty at a leaf or for a
    /// state that does not belong to this trie.
    #[inline]
    #[must_use]
    pub fn allowed(&self, s: State) -> &[u16] {
        if !self.is_valid(s) || s.depth as usize == self.id_len() {
            return &[];
        }
        let (lo, hi) = self.range(s);
        &self.tokens[s.depth as usize][lo..hi]
    }

    /// Starts fetching what [`Trie::allowed`] and [`Trie::step`] read first
    /// for `s` (its child range), so that a batch of states can be looked
    /// up with the memory latency overlapped: prefetch every state, then
    /// [`Trie::prefetch_children`] every state, then step them. A hint
    /// only; invalid states are ignored. [`crate::decode::BeamSearch`] does
    /// this for all beams of a level while the scorer runs.
    #[inline]
    pub fn prefetch(&self, s: State) {
        if self.is_valid(s) && (s.depth as usize) < self.id_len() {
            self.offsets[s.depth as usize].prefetch(s.node as usize);
        }
    }

    /// Starts fetching the child tokens of `s` (reads its child range, which
    /// [`Trie::prefetch`] brought in). A hint only.
    #[inline]
    pub fn prefetch_children(&self, s: State) {
        if self.is_valid(s) && (s.depth as usize) < self.id_len() {
            let (lo, _) = self.range(s);
            crate::kernels::prefetch(&self.tokens[s.depth as usize][lo]);
        }
    }

    /// The state after `token`, or `None` if no ID continues that way.
    #[inline]
    #[must_use]
    pub fn step(&self, s: State, token: u16) -> Option<State> {
        if !self.is_valid(s) || s.depth as usize == self.id_len() {
            return None;
        }
        let d = s.depth as usize;
        let child = if let Some(t) = &self.direct[d] {
            if token as usize >= self.vocab[d] {
                return None;
            }
            let c = t[s.node as usize * self.vocab[d] + token as usize];
            if c == u32::MAX {
                return None;
            }
            c as usize
        } else {
            let (lo, hi) = self.range(s);
            lo + find_token(&self.tokens[d][lo..hi], token)?
        };
        Some(State {
            depth: s.depth + 1,
            node: child as u32,
        })
    }

    /// The `i`-th child of `s` (the one with token `allowed(s)[i]`).
    /// `None` if `i` is out of range.
    #[inline]
    #[must_use]
    pub fn child(&self, s: State, i: usize) -> Option<State> {
        let n = self.allowed(s).len();
        if i >= n {
            return None;
        }
        let (lo, _) = self.range(s);
        Some(State {
            depth: s.depth + 1,
            node: (lo + i) as u32,
        })
    }

    /// Follows a whole prefix from the root.
    #[must_use]
    pub fn walk(&self, prefix: &[u16]) -> Option<State> {
        prefix
            .iter()
            .try_fold(self.start(), |s, &t| self.step(s, t))
    }

    /// True if `id` is a complete ID of the trie.
    #[must_use]
    pub fn contains(&self, id: &[u16]) -> bool {
        id.len() == self.id_len() && self.walk(id).is_some()
    }

    fn is_valid(&self, s: State) -> bool {
        let d = s.depth as usize;
        d <= self.id_len() && (s.node as usize) < self.nodes_at(d)
    }

    fn nodes_at(&self, d: usize) -> usize {
        if d == 0 { 1 } else { self.tokens[d - 1].len() }
    }

    /// Range of leaves (ID indices) under `s`.
    #[must_use]
    pub fn leaf_range(&self, s: State) -> std::ops::Range<usize> {
        if !self.is_valid(s) {
            return 0..0;
        }
        let (mut lo, mut hi) = (s.node as usize, s.node as usize + 1);
        for d in s.depth as usize..self.id_len() {
            lo = self.offsets[d].get(lo);
            hi = self.offsets[d].get(hi);
        }
        lo..hi
    }

    /// Items under state `s` (all IDs with that prefix), in ID order then
    /// catalog order; for a leaf, the items of that ID.
    #[must_use]
    pub fn items(&self, s: State) -> &[u32] {
        let r = self.leaf_range(s);
        match &self.leaf_items {
            None => &self.items[r],
            Some(o) => &self.items[o.get(r.start)..o.get(r.end)],
        }
    }

    /// The tokens of leaf `leaf` (the `leaf`-th ID in lexicographic order),
    /// written into `out` (`depth()` tokens). Cost: a binary search per
    /// level.
    pub fn id_of_leaf(&self, leaf: usize, out: &mut [u16]) -> Result<()> {
        if out.len() != self.id_len() {
            return Err(Error::Shape {
                what: "ID buffer length",
                expected: self.id_len(),
                got: out.len(),
            });
        }
        if leaf >= self.len() {
            return Err(Error::Shape {
                what: "leaf index (below the number of IDs)",
                expected: self.len(),
                got: leaf,
            });
        }
        let mut node = leaf;
        for d in (0..self.id_len()).rev() {
            out[d] = self.tokens[d][node];
            // Parent: the last node whose range starts at or before `node`.
            let o = &self.offsets[d];
            let (mut lo, mut hi) = (0, o.len() - 1);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if o.get(mid) <= node {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            node = lo;
        }
        Ok(())
    }

    /// Shape and memory.
    #[must_use]
    pub fn stats(&self) -> TrieStats {
        let structure = self.tokens.iter().map(|t| t.len() * 2).sum::<usize>()
            + self.offsets.iter().map(Offsets::bytes).sum::<usize>()
            + self
                .direct
                .iter()
                .map(|t| t.as_ref().map_or(0, |t| t.len() * 4))
                .sum::<usize>();
        TrieStats {
            ids: self.len(),
            items: self.items.len(),
            nodes_per_depth: (0..=self.id_len()).map(|d| self.nodes_at(d)).collect(),
            structure_bytes: structure,
            item_bytes: self.items.len() * 4 + self.leaf_items.as_ref().map_or(0, Offsets::bytes),
        }
    }

    /// Checks every invariant: vocabularies, offsets monotone and in range,
    /// no dead ends, children sorted, strictly increasing and in range, leaf
    /// item ranges non-empty and covering the items, items unique. Run by
    /// [`load`](crate::ModelFile::load) / [`from_bytes`](crate::ModelFile::from_bytes).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Error::Format(FormatError::Invalid(m));
        let depth = self.vocab.len();
        if depth == 0 {
            return Err(bad("trie has depth 0".into()));
        }
        check_vocab(&self.vocab).map_err(|e| bad(e.to_string()))?;
        if self.tokens.len() != depth || self.offsets.len() != depth || self.direct.len() != depth {
            return Err(bad("per-depth arrays do not match the depth".into()));
        }
        for d in 0..depth {
            let n = self.nodes_at(d);
            let o = &self.offsets[d];
            if o.len() != n + 1 {
                return Err(bad(format!("depth {d}: {} offsets for {n} nodes", o.len())));
            }
            if let Offsets::Narrow { base, rel } = o
                && base.len() != rel.len().div_ceil(OFF_BLOCK)
            {
                return Err(bad(format!("depth {d}: offset blocks do not match")));
            }
            let toks = &self.tokens[d];
            if o.get(0) != 0 || o.get(n) != toks.len() {
                return Err(bad(format!(
                    "depth {d}: offsets must run from 0 to {}",
                    toks.len()
                )));
            }
            for i in 0..n {
                let (lo, hi) = (o.get(i), o.get(i + 1));
                if hi <= lo {
                    return Err(bad(format!(
                        "depth {d}, node {i}: offsets not increasing (a node without children)"
                    )));
                }
                if hi > toks.len() {
                    return Err(bad(format!("depth {d}, node {i}: offset out of range")));
                }
                let c = &toks[lo..hi];
                if c.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(bad(format!(
                        "depth {d}, node {i}: child tokens not strictly increasing"
                    )));
                }
                if c[c.len() - 1] as usize >= self.vocab[d] {
                    return Err(bad(format!(
                        "depth {d}, node {i}: token {} beyond vocabulary {}",
                        c[c.len() - 1],
                        self.vocab[d]
                    )));
                }
            }
        }
        let leaves = self.len();
        match &self.leaf_items {
            None => {
                if self.items.len() != leaves {
                    return Err(bad(format!(
                        "{} items for {leaves} leaves",
                        self.items.len()
                    )));
                }
            }
            Some(o) => {
                if o.len() != leaves + 1 || o.get(0) != 0 || o.get(leaves) != self.items.len() {
                    return Err(bad("leaf item offsets do not cover the items".into()));
                }
                if (0..leaves).any(|i| o.get(i + 1) <= o.get(i)) {
                    return Err(bad("a leaf without items".into()));
                }
            }
        }
        let mut it = self.items.clone();
        it.sort_unstable();
        if let Some(w) = it.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!("item {} appears twice", w[0])));
        }
        Ok(())
    }

    /// Rebuilds from stored parts and validates.
    fn from_parts(
        vocab: Vec<u64>,
        tokens: Vec<Vec<u16>>,
        offsets: Vec<Vec<u32>>,
        leaf_items: Option<Vec<u32>>,
        items: Vec<u32>,
    ) -> Result<Trie> {
        let bad = |m: &str| Error::Format(FormatError::Invalid(m.into()));
        let vocab: Vec<usize> = vocab
            .into_iter()
            .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
            .collect();
        check_vocab(&vocab).map_err(|e| bad(&e.to_string()))?;
        // Offsets must be monotone before they can be compressed.
        for o in offsets.iter().chain(leaf_items.iter()) {
            if o.is_empty() || o.windows(2).any(|w| w[1] < w[0]) {
                return Err(bad("offsets are empty or not monotone"));
            }
        }
        if tokens.len() != vocab.len() || offsets.len() != vocab.len() {
            return Err(bad("per-depth arrays do not match the depth"));
        }
        let mut t = Trie {
            direct: vec![None; vocab.len()],
            vocab,
            tokens,
            offsets: offsets.into_iter().map(Offsets::new).collect(),
            leaf_items: leaf_items.map(Offsets::new),
            items,
        };
        t.validate()?;
        t.build_direct();
        Ok(t)
    }

    fn build_direct(&mut self) {
        let ids = self.len();
        let budget = (1usize << 16).max(ids / 4);
        for d in 0..self.id_len() {
            let n = self.nodes_at(d);
            let v = self.vocab[d];
            if n.saturating_mul(v) > budget {
                self.direct[d] = None;
                continue;
            }
            let mut t = vec![u32::MAX; n * v];
            for i in 0..n {
                let (lo, hi) = (self.offsets[d].get(i), self.offsets[d].get(i + 1));
                for (j, &tok) in self.tokens[d][lo..hi].iter().enumerate() {
                    t[i * v + tok as usize] = (lo + j) as u32;
                }
            }
            self.direct[d] = Some(t);
        }
    }
}

/// Position of `token` in the strictly ascending `tokens`: a branch-free
/// count for short lists (no mispredicted branches), binary search beyond.
#[inline]
fn find_token(tokens: &[u16], token: u16) -> Option<usize> {
    let pos = if tokens.len() <= 64 {
        tokens.iter().map(|&t| usize::from(t < token)).sum()
    } else {
        tokens.partition_point(|&t| t < token)
    };
    (tokens.get(pos) == Some(&token)).then_some(pos)
}

fn check_vocab(vocab: &[usize]) -> Result<()> {
    crate::data::check_vocab("vocab", vocab, 1)
}

// ---- model file (format version 1; docs/FORMAT.md) ----

/// [`Trie`]'s model-file payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct TrieV1 {
    vocab: Vec<u64>,
    tokens: Vec<Vec<u16>>,
    offsets: Vec<Vec<u32>>,
    leaf_items: Option<Vec<u32>>,
    items: Vec<u32>,
}

impl Payload for Trie {
    const KIND: ModelKind = ModelKind::Trie;
    type V = TrieV1;
    fn to_payload(&self) -> TrieV1 {
        TrieV1 {
            vocab: self.vocab.iter().map(|&v| v as u64).collect(),
            tokens: self.tokens.clone(),
            offsets: self.offsets.iter().map(Offsets::to_vec).collect(),
            leaf_items: self.leaf_items.as_ref().map(Offsets::to_vec),
            items: self.items.clone(),
        }
    }
    fn from_payload(p: TrieV1) -> Result<Self> {
        Trie::from_parts(p.vocab, p.tokens, p.offsets, p.leaf_items, p.items).map_err(to_invalid)
    }
}
