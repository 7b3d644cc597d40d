//! The compacted form of a [`Trie`](super::Trie): one array per depth.

use super::offsets::{Offsets, OffsetsV3};
use super::{State, TrieStats, check_vocab, find_token};
use crate::error::{Error, FormatError, Result};
use crate::layout::{SectionReader, SectionWriter};
use crate::mapped::Shared;

/// Where a version-3 file keeps a trie's arrays (docs/FORMAT.md).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct TrieV3 {
    vocab: Vec<u64>,
    tokens: Vec<u32>,
    offsets: Vec<OffsetsV3>,
    leaf_items: Option<OffsetsV3>,
    items: u32,
}

/// The compacted trie: per-depth arrays (see [`Trie`]). Every array is a
/// [`Shared`] view, on the heap or in a mapped file: a clone shares them.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Flat {
    pub(super) vocab: Vec<usize>,
    /// `tokens[p]`: token of every node at depth `p + 1`.
    pub(super) tokens: Vec<Shared<u16>>,
    /// `offsets[p]`: child ranges of the nodes at depth `p` (len nodes + 1).
    pub(super) offsets: Vec<Offsets>,
    /// Direct tables `(node, token) → child index` (`u32::MAX`: none).
    pub(super) direct: Vec<Option<Shared<u32>>>,
    /// Leaf → item range; `None` when every leaf holds exactly one item.
    pub(super) leaf_items: Option<Offsets>,
    pub(super) items: Shared<u32>,
}

impl Flat {
    /// ID length (the depth of every leaf).
    #[must_use]
    #[inline(always)]
    pub(super) fn id_len(&self) -> usize {
        self.vocab.len()
    }

    /// Number of distinct IDs.
    #[must_use]
    pub(super) fn len(&self) -> usize {
        self.tokens.last().map_or(0, |t| t.len())
    }

    #[inline(always)]
    pub(super) fn range(&self, s: State) -> (usize, usize) {
        let o = &self.offsets[s.depth as usize];
        (o.get(s.node as usize), o.get(s.node as usize + 1))
    }

    /// Tokens that may follow state `s`, ascending; empty at a leaf or for a
    /// state that does not belong to this trie.
    #[inline(always)]
    #[must_use]
    pub(super) fn allowed(&self, s: State) -> &[u16] {
        if !self.is_valid(s) || s.depth as usize == self.id_len() {
            return &[];
        }
        let (lo, hi) = self.range(s);
        &self.tokens[s.depth as usize][lo..hi]
    }

    /// Starts fetching what [`Flat::allowed`] and [`Flat::step`] read first
    /// for `s` (its child range), so that a batch of states can be looked
    /// up with the memory latency overlapped: prefetch every state, then
    /// [`Flat::prefetch_children`] every state, then step them. A hint
    /// only; invalid states are ignored. [`crate::decode::BeamSearch`] does
    /// this for all beams of a level while the scorer runs.
    #[inline(always)]
    pub(super) fn prefetch(&self, s: State) {
        if self.is_valid(s) && (s.depth as usize) < self.id_len() {
            self.offsets[s.depth as usize].prefetch(s.node as usize);
        }
    }

    /// Starts fetching the child tokens of `s` (reads its child range, which
    /// [`Flat::prefetch`] brought in). A hint only.
    #[inline(always)]
    pub(super) fn prefetch_children(&self, s: State) {
        if self.is_valid(s) && (s.depth as usize) < self.id_len() {
            let (lo, _) = self.range(s);
            crate::kernels::prefetch(&self.tokens[s.depth as usize][lo]);
        }
    }

    /// The state after `token`, or `None` if no ID continues that way.
    #[inline(always)]
    #[must_use]
    pub(super) fn step(&self, s: State, token: u16) -> Option<State> {
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
    #[inline(always)]
    #[must_use]
    pub(super) fn child(&self, s: State, i: usize) -> Option<State> {
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

    #[inline(always)]
    pub(super) fn is_valid(&self, s: State) -> bool {
        let d = s.depth as usize;
        d <= self.id_len() && (s.node as usize) < self.nodes_at(d)
    }

    #[inline(always)]
    pub(super) fn nodes_at(&self, d: usize) -> usize {
        if d == 0 { 1 } else { self.tokens[d - 1].len() }
    }

    /// Range of leaves (ID indices) under `s`.
    #[must_use]
    pub(super) fn leaf_range(&self, s: State) -> std::ops::Range<usize> {
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
    pub(super) fn items(&self, s: State) -> &[u32] {
        let r = self.leaf_range(s);
        match &self.leaf_items {
            None => &self.items[r],
            Some(o) => &self.items[o.get(r.start)..o.get(r.end)],
        }
    }

    /// The first `depth` tokens of the path to node `node` at `depth`,
    /// written into `out[..depth]` (`node` must exist). Cost: a binary
    /// search per level.
    pub(super) fn path_of(&self, depth: usize, node: usize, out: &mut [u16]) {
        let mut node = node;
        for d in (0..depth).rev() {
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
    }

    /// Shape and memory.
    #[must_use]
    pub(super) fn stats(&self) -> TrieStats {
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
            pending: 0,
        }
    }

    /// Checks every invariant: [`Flat::check_structure`], and items
    /// unique. Run by [`load`](crate::ModelFile::load) /
    /// [`from_bytes`](crate::ModelFile::from_bytes).
    pub(super) fn validate(&self) -> Result<()> {
        self.check_structure()?;
        let mut it = self.items.to_vec();
        it.sort_unstable();
        if let Some(w) = it.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Format(FormatError::Invalid(format!(
                "item {} appears twice",
                w[0]
            ))));
        }
        Ok(())
    }

    /// Checks what every walk relies on, reading the structure arrays
    /// only (not the items): vocabularies, offsets monotone and in range,
    /// no dead ends, children strictly increasing and in range, leaf item
    /// ranges non-empty and covering the items. After it, no walk reads
    /// out of bounds or hands out a token beyond its vocabulary.
    pub(super) fn check_structure(&self) -> Result<()> {
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
            if !o.blocks_ok() {
                return Err(bad(format!("depth {d}: offset blocks do not match")));
            }
            let toks = &self.tokens[d];
            if o.get(0) != 0 || o.get(n) != toks.len() {
                return Err(bad(format!(
                    "depth {d}: offsets must run from 0 to {}",
                    toks.len()
                )));
            }
            // Branch-free passes (a file of 10M IDs is checked in tens of
            // milliseconds): offsets strictly increasing (every node has a
            // child; with both ends fixed, all in range), and every place
            // where the tokens do not increase is the start of a node
            // (children strictly increasing).
            let (mut prev, mut flat, mut at_starts) = (0usize, 0usize, 0usize);
            o.for_each_from(1, |v| {
                flat += usize::from(v <= prev);
                if v > 0 && v < toks.len() {
                    at_starts += usize::from(toks[v] <= toks[v - 1]);
                }
                prev = v;
            });
            if flat > 0 {
                return Err(bad(format!(
                    "depth {d}: offsets not increasing (a node without children)"
                )));
            }
            let drops: usize = toks[1..]
                .iter()
                .zip(toks.iter())
                .map(|(a, b)| usize::from(a <= b))
                .sum();
            if drops != at_starts {
                return Err(bad(format!(
                    "depth {d}: child tokens not strictly increasing"
                )));
            }
            let max = toks.iter().copied().max().unwrap_or(0);
            if max as usize >= self.vocab[d] {
                return Err(bad(format!(
                    "depth {d}: token {max} beyond vocabulary {}",
                    self.vocab[d]
                )));
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
                if !o.blocks_ok()
                    || o.len() != leaves + 1
                    || o.get(0) != 0
                    || o.get(leaves) != self.items.len()
                {
                    return Err(bad("leaf item offsets do not cover the items".into()));
                }
                let (mut prev, mut flat) = (0usize, 0usize);
                o.for_each_from(1, |v| {
                    flat += usize::from(v <= prev);
                    prev = v;
                });
                if flat > 0 {
                    return Err(bad("a leaf without items".into()));
                }
            }
        }
        Ok(())
    }

    /// Rebuilds from stored parts and validates.
    pub(super) fn from_parts(
        vocab: Vec<u64>,
        tokens: Vec<Vec<u16>>,
        offsets: Vec<Vec<u32>>,
        leaf_items: Option<Vec<u32>>,
        items: Vec<u32>,
    ) -> Result<Flat> {
        let bad = |m: &str| Error::Format(FormatError::Invalid(m.into()));
        let vocab = stored_vocab(&vocab, tokens.len(), offsets.len())?;
        // Offsets must be monotone before they can be compressed.
        for o in offsets.iter().chain(leaf_items.iter()) {
            if o.is_empty() || o.windows(2).any(|w| w[1] < w[0]) {
                return Err(bad("offsets are empty or not monotone"));
            }
        }
        let mut t = Flat {
            direct: vec![None; vocab.len()],
            vocab,
            tokens: tokens.into_iter().map(Shared::from_vec).collect(),
            offsets: offsets.into_iter().map(Offsets::new).collect(),
            leaf_items: leaf_items.map(Offsets::new),
            items: Shared::from_vec(items),
        };
        t.validate()?;
        t.build_direct();
        Ok(t)
    }

    /// Adds the arrays to a file (direct tables are rebuilt on opening).
    pub(super) fn write<'a>(&'a self, w: &mut SectionWriter<'a>) -> TrieV3 {
        TrieV3 {
            vocab: self.vocab.iter().map(|&v| v as u64).collect(),
            tokens: self.tokens.iter().map(|t| w.push(t)).collect(),
            offsets: self.offsets.iter().map(|o| o.write(w)).collect(),
            leaf_items: self.leaf_items.as_ref().map(|o| o.write(w)),
            items: w.push(&self.items),
        }
    }

    /// The trie a file holds, its arrays read in place. `full`: every
    /// invariant ([`Flat::validate`]), else [`Flat::check_structure`],
    /// which reads the structure arrays (tokens and offsets, whose
    /// checksums are checked too) but not the items.
    pub(super) fn read(m: &TrieV3, r: &SectionReader, full: bool) -> Result<Flat> {
        let vocab = stored_vocab(&m.vocab, m.tokens.len(), m.offsets.len())?;
        let mut t = Flat {
            direct: vec![None; vocab.len()],
            vocab,
            tokens: m
                .tokens
                .iter()
                .map(|&i| r.get_summed(i, None, "trie tokens"))
                .collect::<Result<_>>()?,
            offsets: m
                .offsets
                .iter()
                .map(|&o| Offsets::read(o, r, "trie offsets"))
                .collect::<Result<_>>()?,
            leaf_items: m
                .leaf_items
                .map(|o| Offsets::read(o, r, "trie leaf items"))
                .transpose()?,
            items: r.get(m.items, None, "trie items")?,
        };
        if full {
            t.validate()?;
        } else {
            t.check_structure()?;
        }
        t.build_direct();
        Ok(t)
    }

    pub(super) fn build_direct(&mut self) {
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
            self.direct[d] = Some(Shared::from_vec(t));
        }
    }
}

/// A stored vocabulary (one size per depth), checked, and the per-depth
/// array counts (`tokens`, `offsets`) checked against its depth.
fn stored_vocab(vocab: &[u64], tokens: usize, offsets: usize) -> Result<Vec<usize>> {
    let bad = |m: String| Error::Format(FormatError::Invalid(m));
    let vocab: Vec<usize> = vocab
        .iter()
        .map(|&v| usize::try_from(v).unwrap_or(usize::MAX))
        .collect();
    check_vocab(&vocab).map_err(|e| bad(e.to_string()))?;
    if tokens != vocab.len() || offsets != vocab.len() {
        return Err(bad("per-depth arrays do not match the depth".into()));
    }
    Ok(vocab)
}
