//! Constrained beam search over semantic IDs.
//!
//! A [`Scorer`] gives next-token log-scores for a batch of live beams (a
//! model's logits, or [`CodebookScorer`]'s distances of a query embedding to
//! the codebooks); a [`Constraint`] says which tokens may follow a prefix
//! (the [`Trie`](crate::sid::Trie) of valid IDs, or [`Unconstrained`]); [`BeamSearch`] keeps
//! the best `beam` prefixes per query, level by level, and returns the top
//! `k` items with their scores as [`Hits`](crate::hits::Hits).
//!
//! Masking happens *before* selection: only allowed tokens are candidates,
//! so a beam never leaves the trie and every hit is a valid ID.

mod beam;
mod codebook;
mod constraint;
mod scorer;
mod scorers;

pub use beam::{BeamSearch, ItemFilter, ItemLists};
pub use codebook::{CodebookScorer, ScoreMetric};
pub use constraint::{Allowed, Constraint, Unconstrained};
pub use scorer::{Beams, Scorer};
pub use scorers::{FnScorer, TableScorer};
