//! Which token sequences a search may emit.

use crate::error::{Error, Result};
use crate::sid::{State, Trie};

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
/// [`Trie`]'s inherent methods of the same names give the typed forms:
/// `allowed` as a slice, `child` as an `Option`.
/// States are [`State`] values (`depth`, `node`); a custom constraint may
/// use `node` as it likes.
pub trait Constraint {
    /// Tokens per complete sequence (the ID length).
    fn id_len(&self) -> usize;
    /// Tokens possible at position `level` (its codebook size).
    fn codebook_size(&self, level: usize) -> usize;
    /// The state before any token.
    fn start(&self) -> State;
    /// Tokens allowed after `s`.
    fn allowed(&self, s: State) -> Allowed<'_>;
    /// The state after the `i`-th allowed token of `s` (for
    /// [`Allowed::All`], token `i`).
    fn child(&self, s: State, i: usize) -> State;
    /// Items of a complete sequence (empty: the sequence is a hit with no
    /// item, [`NO_ITEM`](crate::hits::NO_ITEM)).
    fn items(&self, s: State) -> &[u32];
    /// A hint that `s` is about to be looked up ([`Trie::prefetch`]); the
    /// search calls it for every beam, then [`Constraint::prefetch_children`]
    /// for every beam, before scoring a level. Does nothing by default.
    #[inline]
    fn prefetch(&self, s: State) {
        let _ = s;
    }
    /// The second half of [`Constraint::prefetch`] ([`Trie::prefetch_children`]).
    /// Does nothing by default.
    #[inline]
    fn prefetch_children(&self, s: State) {
        let _ = s;
    }
}

impl Constraint for Trie {
    fn id_len(&self) -> usize {
        Trie::id_len(self)
    }
    fn codebook_size(&self, level: usize) -> usize {
        Trie::codebook_sizes(self)[level]
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
    #[inline]
    fn prefetch(&self, s: State) {
        Trie::prefetch(self, s);
    }
    #[inline]
    fn prefetch_children(&self, s: State) {
        Trie::prefetch_children(self, s);
    }
}

/// No constraint: every token sequence of the given vocabularies is valid.
/// Hits carry the sequence and [`NO_ITEM`](crate::hits::NO_ITEM).
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
        crate::data::check_vocab("vocab", vocab, 1)?;
        Ok(Unconstrained {
            vocab: vocab.to_vec(),
        })
    }
}

impl Constraint for Unconstrained {
    fn id_len(&self) -> usize {
        self.vocab.len()
    }
    fn codebook_size(&self, level: usize) -> usize {
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
