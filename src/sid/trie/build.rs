//! Building a trie from sorted IDs, one depth at a time.

use super::flat::Flat;
use super::offsets::Offsets;
use crate::mapped::Shared;

/// Builds the arrays from IDs pushed in lexicographic order.
pub(super) struct Builder {
    vocab: Vec<usize>,
    tokens: Vec<Vec<u16>>,
    offsets: Vec<Vec<u32>>,
    leaf_off: Vec<u32>,
    items: Vec<u32>,
    prev: Vec<u16>,
    shared: bool,
}

impl Builder {
    pub(super) fn new(vocab: Vec<usize>) -> Builder {
        let d = vocab.len();
        let mut offsets = vec![Vec::new(); d];
        offsets[0].push(0);
        Builder {
            vocab,
            tokens: vec![Vec::new(); d],
            offsets,
            leaf_off: Vec::new(),
            items: Vec::new(),
            prev: Vec::new(),
            shared: false,
        }
    }

    pub(super) fn push(&mut self, id: &[u16], item: u32) {
        let d = self.vocab.len();
        let lcp = if self.prev.is_empty() {
            0
        } else {
            id.iter()
                .zip(&self.prev)
                .take_while(|(a, b)| a == b)
                .count()
        };
        if lcp == d {
            self.shared = true;
        } else {
            for (p, &tok) in id.iter().enumerate().skip(lcp) {
                self.tokens[p].push(tok);
                if p + 1 < d {
                    // The new node at depth p + 1 starts its children here.
                    let start = self.tokens[p + 1].len() as u32;
                    self.offsets[p + 1].push(start);
                }
            }
            self.leaf_off.push(self.items.len() as u32);
            self.prev.clear();
            self.prev.extend_from_slice(id);
        }
        self.items.push(item);
    }

    pub(super) fn finish(mut self) -> Flat {
        let d = self.vocab.len();
        for p in 0..d {
            let end = self.tokens[p].len() as u32;
            self.offsets[p].push(end);
        }
        self.leaf_off.push(self.items.len() as u32);
        let leaf_items = self.shared.then(|| Offsets::new(self.leaf_off));
        let mut t = Flat {
            direct: vec![None; d],
            vocab: self.vocab,
            tokens: self.tokens.into_iter().map(Shared::from_vec).collect(),
            offsets: self.offsets.into_iter().map(Offsets::new).collect(),
            leaf_items,
            items: Shared::from_vec(self.items),
        };
        t.build_direct();
        debug_assert!(t.validate().is_ok());
        t
    }
}
