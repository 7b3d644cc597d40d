//! # semid — semantic-ID tokenization for generative retrieval
//!
//! Generative recommenders (TIGER, OneRec, MiniOneRec, GRID, RecGPT) turn each
//! item's content embedding into a short tuple of discrete tokens, its
//! *semantic ID*, then train a sequence model to emit those tokens. semid is
//! the fast, deterministic, embeddable core of that pipeline:
//!
//! - quantizers behind one [`Quantizer`] contract: [`KMeans`], residual
//!   k-means [`RqKMeans`] (OneRec's RQ-KMeans) with greedy or beam encoding,
//!   [`RqVae`] trained in-crate, [`Fsq`], [`ResidualFsq`] and
//!   [`FsqAutoencoder`]; [`AnyQuantizer`] holds any of them;
//! - [`SemanticIndex`]: quantizer, IDs and trie as one artifact and one file;
//! - SIMD distance kernels (run-time AVX2+FMA dispatch, `wide` fallback,
//!   scalar oracle) and blocked matrix-product assignment (the crate's own
//!   packed kernel; `faer` serves the RQ-VAE layers);
//! - unique semantic IDs with a documented collision policy
//!   ([`sid::SidMap`]) and a flat prefix trie of valid IDs ([`sid::Trie`]);
//! - batched, trie-constrained beam search over any [`decode::Scorer`]
//!   (a model's logits, or [`decode::CodebookScorer`]'s codebook distances);
//!   a stateful scorer follows each beam's parent ([`decode::Beams`]);
//! - users' interaction sequences ([`seq`]): TSV and RecBole loading, the
//!   leave-one-out split, synthetic sequences; the SID ⇄ model-token map
//!   ([`sid::TokenMap`]) that sequence models read and write (the
//!   workspace crate `semid-gen` trains them and runs the whole
//!   generative-recommendation experiment);
//! - retrieval metrics matching pytrec_eval ([`metrics`]) and SID quality
//!   figures ([`stats`]); exact kNN and HNSW baselines ([`ann`]);
//! - versioned, checksummed model files ([`ModelFile`], [`format`](mod@format),
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
//! - Public functions return [`Error`] on bad input; they do not panic.
//! - Parallelism is explicit ([`Par`]); semid reads no environment variables.
//!
//! ## Determinism
//! Same data + same config (seed included) ⇒ bit-identical codes, models
//! and files **on the same machine and build, whatever the thread count**:
//! every parallel reduction has a fixed order that does not depend on the
//! threads. The CPU's features are checked once per process
//! ([`kernels::Cpu`]) and every kernel dispatches on that token. Across
//! CPUs: the nearest-centroid kernels (k-means, RQ-KMeans
//! fit and encode, codebook scoring) and the PCA of the progressive
//! initialisation return the same bits on AVX-512 and AVX2+FMA CPUs (each
//! output is one fused multiply-add chain in a fixed order); a CPU without
//! AVX2+FMA runs the `wide` kernels without fused multiply-adds, so exact
//! ties and last-bit differences can change a code there. RQ-VAE and the
//! FSQ autoencoder train through faer's matrix products, which pick their
//! kernels per CPU: trained weights can differ between CPU models (not
//! between runs or thread counts on one machine).
//!
//! ## Vocabulary
//!
//! | word | means | e.g. |
//! |---|---|---|
//! | `levels` | tokens per code (`Quantizer::levels`) | RQ-KMeans 3 × 256 has 3 |
//! | `codebook_size(l)` | codes at level `l` | 256; `Π levels_per_dim` for [`Fsq`] |
//! | `levels_per_dim` | FSQ levels of each latent dimension | `[8, 5, 5, 5]` |
//! | `k` | a k-means config's codebook size (`KMeansConfig::k`) | |
//! | `…Config` | `new(required)`, a setter per field, `validate()`; `fit` validates | [`RqKMeansConfig`] |
//! | `…Report` | what a fit or an insertion measured | [`RqKMeansReport`], [`EpochReport`] |
//! | `x_into(…, out)` | writes into a caller buffer; `x(…)` allocates it | `encode_into` / `encode`, `search_into` / `search` |
//! | `x_with_…` | `x` with one more explicit input | `fit_with_callback`, `build_with_distances` |
//! | `with_…` | a constructor with an option | `Fsq::with_mode` |
//! | `search` | decoding IDs with [`decode::BeamSearch`] | [`SemanticIndex::search`] |
//! | [`EncodeSearch`] | how RQ-KMeans picks codes when encoding (greedy or beam) | |
//! | `Constraint::{vocab_size, allowed_tokens, child_state}` | the constraint automaton; [`sid::Trie`] has its own `vocab`, `allowed`, `child` | |
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod ann;
mod config;
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
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod hits;
pub mod index;
pub mod kernels;
pub mod metrics;
pub mod nn;
pub mod npy;
mod par;
pub mod quantize;
mod rng;
pub mod seq;
pub mod sid;
pub mod stats;
pub mod synthetic;

pub use data::{Codes, DType, Embeddings};
pub use error::{Error, FormatError, Result};
pub use format::ModelFile;
pub use index::SemanticIndex;
pub use par::Par;
pub use quantize::{
    AnyQuantizer, Assignment, EncodeSearch, EpochReport, Fit, Fsq, FsqAutoencoder,
    FsqAutoencoderConfig, FsqMode, Init, KMeans, KMeansConfig, KMeansReport, LevelReport,
    Quantizer, ResidualFsq, RqKMeans, RqKMeansConfig, RqKMeansReport, RqVae, RqVaeConfig,
};
