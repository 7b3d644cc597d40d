//! Figures of merit.
//!
//! - [`code_quality`]: how a set of semantic codes uses its codebooks
//!   (utilization, entropy, perplexity per level; collisions; FORGE's Gini).
//! - [`reconstruction_mse`] / [`mse`]: reconstruction error in the embedding
//!   space.
//! - [`evaluate`]: Recall, Precision, NDCG, MRR and Hit at K over ranked
//!   lists ([`Rankings`], e.g. from [`crate::decode::Hits`]) and graded
//!   judgments ([`Qrels`]); [`trec`] reads text runs and qrels and follows
//!   trec_eval's or ranx's conventions.

mod quality;
mod retrieval;
pub mod trec;

pub use quality::{
    CodeQuality, HistogramStats, LevelQuality, code_quality, mse, reconstruction_mse,
};
pub use retrieval::{EmptyQueries, EvalOptions, Evaluation, Metric, Qrels, Rankings, evaluate};
