//! Semantic IDs: the item ⇄ ID map ([`SidMap`], with a
//! [`CollisionPolicy`]) and the flat prefix trie of valid IDs ([`Trie`])
//! that constrained decoding walks.

mod map;
mod sort;
mod trie;

pub use map::{CollisionPolicy, SidMap, SidReport};
pub use trie::{State, Trie, TrieStats};
