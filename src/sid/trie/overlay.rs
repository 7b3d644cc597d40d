//! Inserts into a [`Trie`](super::Trie) that wait for compaction: the
//! nodes whose children changed, and the new nodes, as small lists beside
//! the flat arrays.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::flat::Flat;
use super::{State, find_token};

/// A hasher for node numbers: one multiply (node numbers are not chosen by
/// an attacker; they come from the trie's own numbering).
#[derive(Default)]
pub(super) struct NodeHasher(u64);

impl Hasher for NodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        let h = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

type NodeMap = HashMap<u32, u32, BuildHasherDefault<NodeHasher>>;

/// The changed and new nodes of one depth.
#[derive(Clone, Debug, Default)]
pub(super) struct Level {
    /// Flat nodes that gained a child (at the leaves: an item) → slot.
    patched: NodeMap,
    /// Slot of new node `flat.nodes_at(depth) + i`.
    new: Vec<u32>,
    /// Parent node and token of new node `i`.
    parents: Vec<(u32, u16)>,
    /// Child tokens of every slot, ascending (empty at the leaves).
    pub(super) tokens: Vec<Vec<u16>>,
    /// Child nodes of every slot, in token order; at the leaves, items in
    /// catalog order.
    pub(super) next: Vec<Vec<u32>>,
}

impl Level {
    /// New nodes of this depth.
    pub(super) fn new_nodes(&self) -> usize {
        self.new.len()
    }

    /// A fresh slot with no children.
    fn push_slot(&mut self) -> usize {
        self.tokens.push(Vec::new());
        self.next.push(Vec::new());
        self.next.len() - 1
    }

    fn bytes(&self) -> usize {
        self.patched.capacity() * 9
            + self.new.capacity() * 4
            + self.parents.capacity() * 8
            + self
                .tokens
                .iter()
                .map(|t| t.capacity() * 2 + 24)
                .sum::<usize>()
            + self
                .next
                .iter()
                .map(|t| t.capacity() * 4 + 24)
                .sum::<usize>()
    }
}

/// Every depth's changes (`levels[d]`, `d` in `0..=id_len`).
#[derive(Clone, Debug)]
pub(super) struct Overlay {
    pub(super) levels: Vec<Level>,
    /// Items inserted.
    pub(super) items: usize,
}

impl Overlay {
    pub(super) fn new(id_len: usize) -> Overlay {
        Overlay {
            levels: vec![Level::default(); id_len + 1],
            items: 0,
        }
    }

    /// The slot of node `node` at depth `d`, if it changed or is new.
    #[inline]
    pub(super) fn slot(&self, flat: &Flat, d: usize, node: u32) -> Option<usize> {
        let l = &self.levels[d];
        let n = flat.nodes_at(d);
        if node as usize >= n {
            l.new.get(node as usize - n).map(|&s| s as usize)
        } else if l.patched.is_empty() {
            None
        } else {
            l.patched.get(&node).map(|&s| s as usize)
        }
    }

    /// The parent and token of `node` at depth `d`, if it is new.
    pub(super) fn parent(&self, flat: &Flat, d: usize, node: usize) -> Option<(u32, u16)> {
        let n = flat.nodes_at(d);
        (node >= n).then(|| self.levels[d].parents[node - n])
    }

    /// The slot of `node` at depth `d`, copying a flat node's children (or
    /// items) into a new slot on first change.
    fn slot_or_patch(&mut self, flat: &Flat, d: usize, node: u32) -> usize {
        if let Some(s) = self.slot(flat, d, node) {
            return s;
        }
        let s = State {
            depth: d as u32,
            node,
        };
        let l = &mut self.levels[d];
        let slot = l.push_slot();
        if d == flat.id_len() {
            l.next[slot].extend_from_slice(flat.items(s));
        } else {
            let (lo, hi) = flat.range(s);
            l.tokens[slot].extend_from_slice(flat.allowed(s));
            l.next[slot].extend(lo as u32..hi as u32);
        }
        l.patched.insert(node, slot as u32);
        slot
    }

    /// Adds `item` under `id` (`id_len` tokens, checked by the caller).
    pub(super) fn insert(&mut self, flat: &Flat, id: &[u16], item: u32) {
        let mut node = 0u32;
        for (d, &tok) in id.iter().enumerate() {
            let found = match self.slot(flat, d, node) {
                Some(s) => {
                    let l = &self.levels[d];
                    find_token(&l.tokens[s], tok).map(|i| l.next[s][i])
                }
                None => flat
                    .step(
                        State {
                            depth: d as u32,
                            node,
                        },
                        tok,
                    )
                    .map(|c| c.node),
            };
            node = match found {
                Some(c) => c,
                None => {
                    let next = &mut self.levels[d + 1];
                    let child = (flat.nodes_at(d + 1) + next.new.len()) as u32;
                    let slot = next.push_slot() as u32;
                    next.new.push(slot);
                    next.parents.push((node, tok));
                    let s = self.slot_or_patch(flat, d, node);
                    let l = &mut self.levels[d];
                    let pos = l.tokens[s].partition_point(|&t| t < tok);
                    l.tokens[s].insert(pos, tok);
                    l.next[s].insert(pos, child);
                    child
                }
            };
        }
        let s = self.slot_or_patch(flat, id.len(), node);
        self.levels[id.len()].next[s].push(item);
        self.items += 1;
    }

    /// Bytes held (estimated from capacities).
    pub(super) fn bytes(&self) -> usize {
        self.levels.iter().map(Level::bytes).sum()
    }
}
