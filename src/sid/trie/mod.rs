//! A prefix trie of semantic IDs: flat per-depth arrays, plus the inserts
//! made since the last compaction.

mod build;
mod flat;
mod offsets;
mod overlay;

use build::Builder;
use flat::Flat;
pub(crate) use flat::TrieV3;
use offsets::Offsets;
use overlay::Overlay;

use super::SidMap;
use super::sort::{packed_sorted, position_bits, radix_order};
use crate::error::{Error, Result};
use crate::format::{ModelKind, sealed::Payload, to_invalid};

/// A position in the trie: the node reached after `depth` tokens.
///
/// `node` numbers the nodes of one depth. In a compacted trie they are in
/// lexicographic order of their prefixes, so at depth [`Trie::id_len`] it
/// is the leaf (ID) index; nodes made by [`SemanticIndex::insert`](crate::SemanticIndex::insert)
/// since the last compaction are numbered after those.
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
    /// Bytes of the ID structure: tokens, offsets and direct tables, and
    /// the lists of pending inserts.
    pub structure_bytes: usize,
    /// Bytes of the leaf → item table.
    pub item_bytes: usize,
    /// Items inserted since the last compaction ([`Trie::pending`]).
    pub pending: usize,
}

/// The set of valid semantic IDs as a prefix trie.
///
/// Compacted, nodes are numbered per depth in lexicographic order; each
/// depth stores its nodes' tokens (`u16`, sorted within each parent) and
/// each parent's child range (compressed offsets, 2 bytes per node plus 4
/// per 64 nodes). Depths where a direct table is cheap (`nodes × vocab ≤
/// max(65 536, ids / 4)` entries) also get a table `(node, token) → child`,
/// so [`Trie::step`] there is one load; elsewhere it is a binary search
/// among the children. Leaves map to item ranges. The walk API follows
/// `fst`'s `Automaton`: [`Trie::start`], [`Trie::allowed`], [`Trie::step`],
/// [`Trie::items`].
///
/// **Growing.** The arrays are shared (each behind a reference count, so a
/// clone copies only the pending inserts) and never change. [`SemanticIndex::insert`](crate::SemanticIndex::insert)
/// puts new IDs beside them: every node that gained a child gets a small
/// list of its own, and new nodes are numbered after the compacted ones.
/// A step then costs one hash lookup more wherever inserts are pending;
/// [`Trie::compact`] folds them into new arrays (one pass over all IDs).
/// Walks see the same IDs and items either way.
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
/// assert_eq!(trie.items_under(s), vec![0, 1]);
/// assert!(trie.step(s, 5).is_none());
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trie {
    /// The compacted arrays (each shared between clones).
    flat: Flat,
    /// Codebook size of every position (the suffix's may have grown since
    /// the arrays were built).
    vocab: Vec<usize>,
    /// Inserts since the last compaction.
    delta: Option<Box<Overlay>>,
}

/// Two tries are equal when they hold the same IDs with the same items,
/// whether or not inserts are pending.
impl PartialEq for Trie {
    fn eq(&self, other: &Trie) -> bool {
        if self.vocab != other.vocab {
            return false;
        }
        match (&self.delta, &other.delta) {
            (None, None) => self.flat == other.flat,
            _ => self.compacted().flat == other.compacted().flat,
        }
    }
}

impl Trie {
    /// Builds the trie of a [`SidMap`]'s IDs. Cost: one pass over the map's
    /// sorted IDs.
    pub fn build(map: &SidMap) -> Result<Trie> {
        if map.is_empty() {
            return Err(Error::Empty { what: "SidMap" });
        }
        // A map opened without a full check is checked first.
        map.check()?;
        Ok(Trie::build_checked(map))
    }

    /// [`Trie::build`] of a non-empty map whose invariants hold.
    pub(crate) fn build_checked(map: &SidMap) -> Trie {
        let mut b = Builder::new(map.codebook_sizes());
        for (item, id) in map.iter_sorted() {
            b.push(id, item);
        }
        Trie::from_flat(b.finish())
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
        Ok(Trie::from_flat(b.finish()))
    }

    fn from_flat(flat: Flat) -> Trie {
        Trie {
            vocab: flat.vocab.clone(),
            flat,
            delta: None,
        }
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
        self.nodes_at(self.id_len())
    }

    /// True when the trie holds no ID (never, for a built trie).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items inserted since the last compaction ([`Trie::compact`]).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.delta.as_ref().map_or(0, |o| o.items)
    }

    /// The root state (no token consumed).
    #[must_use]
    pub fn start(&self) -> State {
        State::default()
    }

    fn nodes_at(&self, d: usize) -> usize {
        self.flat.nodes_at(d) + self.delta.as_ref().map_or(0, |o| o.levels[d].new_nodes())
    }

    fn is_valid(&self, s: State) -> bool {
        let d = s.depth as usize;
        d <= self.id_len() && (s.node as usize) < self.nodes_at(d)
    }

    /// The pending lists of `s` (a valid state), if it has its own.
    #[inline]
    fn slot(&self, s: State) -> Option<(&overlay::Level, usize)> {
        let o = self.delta.as_deref()?;
        let d = s.depth as usize;
        o.slot(&self.flat, d, s.node).map(|i| (&o.levels[d], i))
    }

    /// Tokens that may follow state `s`, ascending; empty at a leaf or for a
    /// state that does not belong to this trie.
    #[inline]
    #[must_use]
    pub fn allowed(&self, s: State) -> &[u16] {
        // No insert pending: the arrays alone (they check `s` themselves).
        if self.delta.is_none() {
            return self.flat.allowed(s);
        }
        if !self.is_valid(s) || s.depth as usize == self.id_len() {
            return &[];
        }
        match self.slot(s) {
            Some((l, i)) => &l.tokens[i],
            None => self.flat.allowed(s),
        }
    }

    /// Starts fetching what [`Trie::allowed`] and [`Trie::step`] read first
    /// for `s` (its child range), so that a batch of states can be looked
    /// up with the memory latency overlapped: prefetch every state, then
    /// [`Trie::prefetch_children`] every state, then step them. A hint
    /// only; invalid states are ignored. [`crate::decode::BeamSearch`] does
    /// this for all beams of a level while the scorer runs.
    #[inline]
    pub fn prefetch(&self, s: State) {
        self.flat.prefetch(s);
    }

    /// Starts fetching the child tokens of `s` (reads its child range, which
    /// [`Trie::prefetch`] brought in). A hint only.
    #[inline]
    pub fn prefetch_children(&self, s: State) {
        self.flat.prefetch_children(s);
    }

    /// The state after `token`, or `None` if no ID continues that way.
    #[inline]
    #[must_use]
    pub fn step(&self, s: State, token: u16) -> Option<State> {
        if self.delta.is_none() {
            return self.flat.step(s, token);
        }
        if !self.is_valid(s) || s.depth as usize == self.id_len() {
            return None;
        }
        match self.slot(s) {
            Some((l, i)) => Some(State {
                depth: s.depth + 1,
                node: l.next[i][find_token(&l.tokens[i], token)?],
            }),
            None => self.flat.step(s, token),
        }
    }

    /// The `i`-th child of `s` (the one with token `allowed(s)[i]`).
    /// `None` if `i` is out of range.
    #[inline]
    #[must_use]
    pub fn child(&self, s: State, i: usize) -> Option<State> {
        if self.delta.is_none() {
            return self.flat.child(s, i);
        }
        if !self.is_valid(s) || s.depth as usize == self.id_len() {
            return None;
        }
        match self.slot(s) {
            Some((l, k)) => Some(State {
                depth: s.depth + 1,
                node: *l.next[k].get(i)?,
            }),
            None => self.flat.child(s, i),
        }
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

    /// The items of a complete ID (a leaf state), in catalog order; empty
    /// for an inner state or a state not of this trie. For every item
    /// under a prefix, see [`Trie::items_under`].
    #[must_use]
    pub fn items(&self, s: State) -> &[u32] {
        if !self.is_valid(s) || s.depth as usize != self.id_len() {
            return &[];
        }
        match self.slot(s) {
            Some((l, i)) => &l.next[i],
            None => self.flat.items(s),
        }
    }

    /// Every item under state `s` (all IDs with that prefix), in ID order
    /// then catalog order; empty for a state not of this trie.
    #[must_use]
    pub fn items_under(&self, s: State) -> Vec<u32> {
        if !self.is_valid(s) {
            return Vec::new();
        }
        if self.delta.is_none() {
            return self.flat.items(s).to_vec();
        }
        let mut out = Vec::new();
        self.for_each_leaf(s, &mut Vec::new(), &mut |_, items| {
            out.extend_from_slice(items);
        });
        out
    }

    /// Calls `f(id, items)` for every leaf under `s`, in ID order; `path`
    /// holds the tokens that led to `s`.
    fn for_each_leaf(&self, s: State, path: &mut Vec<u16>, f: &mut dyn FnMut(&[u16], &[u32])) {
        if s.depth as usize == self.id_len() {
            f(path, self.items(s));
            return;
        }
        let allowed = self.allowed(s);
        for (i, &t) in allowed.iter().enumerate() {
            if let Some(c) = self.child(s, i) {
                path.push(t);
                self.for_each_leaf(c, path, f);
                path.pop();
            }
        }
    }

    /// The tokens of leaf `leaf` (the state `(id_len, leaf)`: the
    /// `leaf`-th ID in lexicographic order when no insert is pending),
    /// written into `out` (`id_len()` tokens). Cost: a binary search per
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
        let (mut d, mut node) = (self.id_len(), leaf);
        if let Some(o) = &self.delta {
            // New nodes know their parent; the compacted ones are found by
            // search.
            while d > 0 {
                let Some((p, t)) = o.parent(&self.flat, d, node) else {
                    break;
                };
                out[d - 1] = t;
                node = p as usize;
                d -= 1;
            }
        }
        self.flat.path_of(d, node, out);
        Ok(())
    }

    /// Shape and memory.
    #[must_use]
    pub fn stats(&self) -> TrieStats {
        let mut s = self.flat.stats();
        if let Some(o) = &self.delta {
            s.ids = self.len();
            s.items += o.items;
            s.nodes_per_depth = (0..=self.id_len()).map(|d| self.nodes_at(d)).collect();
            s.structure_bytes += o.bytes();
            s.pending = o.items;
        }
        s
    }

    /// Checks every invariant of the compacted arrays: vocabularies,
    /// offsets monotone and in range, no dead ends, children sorted,
    /// strictly increasing and in range, leaf item ranges non-empty and
    /// covering the items, items unique. Run by
    /// [`load`](crate::ModelFile::load) / [`from_bytes`](crate::ModelFile::from_bytes).
    /// (Pending inserts are checked as they are made.)
    pub fn validate(&self) -> Result<()> {
        self.flat.validate()
    }

    /// Folds pending inserts into new compacted arrays: one pass over every
    /// ID. Does nothing when none is pending.
    pub fn compact(&mut self) {
        if self.delta.is_some() {
            *self = self.compacted();
        }
    }

    /// The trie with pending inserts folded in.
    fn compacted(&self) -> Trie {
        if self.delta.is_none() {
            return self.clone();
        }
        let mut b = Builder::new(self.vocab.clone());
        self.for_each_leaf(self.start(), &mut Vec::new(), &mut |id, items| {
            for &it in items {
                b.push(id, it);
            }
        });
        Trie::from_flat(b.finish())
    }

    /// Adds `items` with their IDs (`ids`: row-major, `id_len` tokens per
    /// item, already checked against `vocab`, the map's codebook sizes now)
    /// without rebuilding: O(m · id_len) list updates. Items must be new;
    /// the items of one ID keep the order they are given in.
    pub(crate) fn insert(&mut self, ids: &[u16], items: &[u32], vocab: &[usize]) {
        debug_assert_eq!(vocab.len(), self.id_len());
        self.vocab = vocab.to_vec();
        let o = self
            .delta
            .get_or_insert_with(|| Box::new(Overlay::new(vocab.len())));
        for (id, &item) in ids.chunks_exact(vocab.len()).zip(items) {
            o.insert(&self.flat, id, item);
        }
    }
}

impl Trie {
    /// Adds the arrays to a version-3 file; pending inserts must have been
    /// compacted.
    pub(crate) fn write_v3<'a>(&'a self, w: &mut crate::layout::SectionWriter<'a>) -> TrieV3 {
        debug_assert!(self.delta.is_none());
        self.flat.write(w)
    }

    /// The trie a version-3 file holds, its arrays read in place; `full`
    /// runs [`Trie::validate`], else only the structure check (see
    /// [`Check`](crate::Check)).
    pub(crate) fn read_v3(
        m: &TrieV3,
        r: &crate::layout::SectionReader,
        full: bool,
    ) -> Result<Trie> {
        Flat::read(m, r, full).map(Trie::from_flat)
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
        // Pending inserts are written compacted.
        let compacted;
        let f = if self.delta.is_some() {
            compacted = self.compacted();
            &compacted.flat
        } else {
            &self.flat
        };
        TrieV1 {
            vocab: f.vocab.iter().map(|&v| v as u64).collect(),
            tokens: f.tokens.iter().map(|t| t.to_vec()).collect(),
            offsets: f.offsets.iter().map(Offsets::to_vec).collect(),
            leaf_items: f.leaf_items.as_ref().map(Offsets::to_vec),
            items: f.items.to_vec(),
        }
    }
    fn from_payload(p: TrieV1) -> Result<Self> {
        Flat::from_parts(p.vocab, p.tokens, p.offsets, p.leaf_items, p.items)
            .map(Trie::from_flat)
            .map_err(to_invalid)
    }
}
