//! # semid — semantic-ID tokenization for generative retrieval
//!
//! Generative recommenders (TIGER, OneRec, MiniOneRec, GRID, RecGPT) turn each
//! item's content embedding into a short tuple of discrete tokens, its
//! *semantic ID*, then train a sequence model to emit those tokens. semid is
//! the fast, deterministic, embeddable core of that pipeline:
//!
//! - quantizers behind one [`Quantizer`] contract: [`KMeans`] and residual
//!   k-means [`RqKMeans`] (OneRec's RQ-KMeans) with greedy or beam encoding;
//! - SIMD distance kernels (run-time AVX2+FMA dispatch, `wide` fallback,
//!   scalar oracle) and blocked matrix-product assignment (the crate's own
//!   packed kernel; `faer` serves the RQ-VAE layers);
//! - unique semantic IDs with a documented collision policy
//!   ([`sid::SidMap`]) and a flat prefix trie of valid IDs ([`sid::Trie`]);
//! - batched, trie-constrained beam search over any [`decode::Scorer`]
//!   (a model's logits, or [`decode::CodebookScorer`]'s codebook distances);
//! - retrieval metrics matching pytrec_eval and SID quality figures
//!   ([`metrics`]); exact kNN and HNSW baselines ([`ann`]);
//! - versioned, checksummed model files ([`ModelFile`], [`format`],
//!   `docs/FORMAT.md`); `.npy` input ([`npy`]).
//!
//! ```
//! use semid::{Embeddings, ModelFile, Quantizer, RqKMeans, RqKMeansConfig, stats, synthetic};
//!
//! // 5 000 synthetic item embeddings of dimension 32.
//! let cfg = synthetic::MixtureConfig { n: 5_000, dim: 32, ..Default::default() };
//! let data = synthetic::hierarchical_mixture(&cfg);
//! let x = Embeddings::new(&data, 32)?;
//!
//! // Fit 3 levels × 64 codes, encode, measure.
//! let (rq, _report) = RqKMeans::fit(&RqKMeansConfig::new(3, 64).seed(42), x)?;
//! let codes = rq.encode(x)?;
//! let q = stats::code_quality(&codes, &rq.codebook_sizes())?;
//! assert!(q.levels[0].stats.utilization > 0.9);
//!
//! // Save and load (atomic write, validated read).
//! let path = std::env::temp_dir().join("semid-doc-example.semid");
//! rq.save(&path)?;
//! let again = RqKMeans::load(&path)?;
//! assert_eq!(again.encode(x)?, codes);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), semid::Error>(())
//! ```
//!
//! ## Conventions
//! - Data is row-major `n × d` `f32` (or f16/bf16, converted block by block);
//!   codes are row-major `n × L` `u16`.
//! - Same data + same seed ⇒ bit-identical codes, whatever the thread count.
//! - Public functions return [`Error`] on bad input; they do not panic.
//! - Parallelism is explicit ([`Par`]); semid reads no environment variables.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod ann;
mod data;
pub mod decode;

/// The README's code blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod error;
pub mod format;
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz;
pub mod hits;
pub mod index;
pub mod kernels;
pub mod metrics;
pub mod nn;
pub mod npy;
mod par;
pub mod quantize;
mod rng;
pub mod sid;
pub mod stats;
pub mod synthetic;

pub use data::{Codes, DType, Embeddings};
pub use error::{Error, FormatError, Result};
pub use format::ModelFile;
pub use par::Par;
pub use quantize::{
    Assignment, Fit, Init, KMeans, KMeansConfig, KMeansReport, LevelReport, Quantizer, RqKMeans,
    RqKMeansConfig, RqKMeansReport, Search,
};
