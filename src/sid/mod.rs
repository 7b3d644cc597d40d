//! Semantic IDs: the item ⇄ ID map ([`SidMap`], with a
//! [`CollisionPolicy`]) and the flat prefix trie of valid IDs ([`Trie`])
//! that constrained decoding walks, and the ID ⇄ model-token map
//! ([`TokenMap`]) that sequence models read and write.

mod map;
mod ngram;
pub mod sinkhorn;
mod sort;
mod text;
mod tokens;
mod trie;

pub(crate) use map::SidMapV3;
pub use map::{COMPACT_MIN_ITEMS, CollisionPolicy, SidMap, SidReport};
pub use ngram::prefix_ngrams;
pub use sinkhorn::{Sinkhorn, resolve_collisions};
pub use text::TextFormat;
pub use tokens::{Next, SpecialTokens, TokenMap};
pub(crate) use trie::TrieV3;
pub use trie::{State, Trie, TrieStats};
