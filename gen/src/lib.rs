//! Sequence models over semantic IDs for [`semid`], in candle (CPU).
//!
//! - [`SidModel`]: a generative recommender. A decoder-only transformer
//!   reads a user's history as semantic-ID tokens and emits the next
//!   item's ID; [`SidModel::recommend`] decodes it with semid's
//!   trie-constrained beam search through [`SidScorer`] (a KV cache
//!   reordered by the beams' parents, many users per search).
//! - [`ItemModel`]: the SASRec baseline, the same transformer over item
//!   ids with a full softmax.
//! - [`ParallelModel`]: RPG's recipe, items as tuples of product-quantizer
//!   codes predicted in parallel, every item scored exactly.
//! - [`TrainConfig`]: one training loop for both (AdamW, warm-up, weight
//!   decay, dropout, early stopping with patience, a time budget).
//!
//! The SID ⇄ token layout is semid's [`semid::sid::TokenMap`].
//! docs/GENREC.md is the guide, with figures on MovieLens-100K.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod batch;
mod decoder;
mod error;
pub mod gpt2;
mod model;
mod parallel;
mod serve;
pub mod t5;
mod train;
mod weights;

pub use error::{Error, Result};
pub use model::{Arch, Content, DecodeStats, ItemModel, ModelConfig, SidModel, SidScorer};
pub use parallel::ParallelModel;
pub use serve::{HfModel, HfScorer};
pub use train::{EpochReport, Stop, TrainConfig, TrainReport, shuffled};
