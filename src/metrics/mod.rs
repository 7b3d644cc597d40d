//! Retrieval metrics.
//!
//! - [`evaluate`]: Recall, Precision, NDCG, MRR and Hit at K over ranked
//!   lists ([`Rankings`], e.g. from [`crate::hits::Hits`]) and graded
//!   judgments ([`Qrels`]); [`trec`] reads text runs and qrels and follows
//!   trec_eval's or ranx's conventions.
//! - [`beyond_accuracy`]: catalog coverage, intra-list diversity, novelty
//!   and the Gini of recommended items.

mod beyond;
mod retrieval;
pub mod trec;

pub use beyond::{BeyondAccuracy, beyond_accuracy};
pub use retrieval::{EmptyQueries, EvalOptions, Evaluation, Metric, Qrels, Rankings, evaluate};
