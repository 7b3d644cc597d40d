//! Figures of merit.
//!
//! - [`code_quality`]: how a set of semantic codes uses its codebooks
//!   (utilization, entropy, perplexity per level; collisions; FORGE's Gini).
//! - [`reconstruction_mse`] / [`mse`]: reconstruction error in the embedding
//!   space.

mod quality;

pub use quality::{
    CodeQuality, HistogramStats, LevelQuality, code_quality, mse, reconstruction_mse,
};
