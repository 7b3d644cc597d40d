//! # semid — semantic-ID tokenization for generative retrieval
//!
//! Generative recommenders (TIGER, OneRec, MiniOneRec, GRID, RecGPT) turn each
//! item's content embedding into a short tuple of discrete tokens, its
//! *semantic ID*, then train a sequence model to emit those tokens. semid is
//! the fast, deterministic, embeddable core of that pipeline:
//!
//! - quantizers behind one [`Quantizer`] contract: [`KMeans`], residual
//!   k-means [`RqKMeans`] (OneRec's RQ-KMeans) with greedy or beam encoding,
//!   [`RqVae`] trained in-crate (or warm-started from RQ-KMeans), [`Fsq`],
//!   [`ResidualFsq`], [`FsqAutoencoder`] and [`ProductQuantizer`] (PQ and
//!   OPQ); [`AnyQuantizer`] holds any of them;
//! - [`SemanticIndex`]: quantizer, IDs and trie as one artifact and one file;
//!   [`SharedIndex`] serves one to many threads and swaps in updates;
//! - SIMD distance kernels (run-time AVX2+FMA dispatch, `wide` fallback,
//!   scalar oracle) and blocked matrix-product assignment (the crate's own
//!   packed kernel; `faer` serves the RQ-VAE layers);
//! - unique semantic IDs with a documented collision policy
//!   ([`sid::SidMap`]; TIGER's suffix, LC-Rec's Sinkhorn, capacity
//!   reassignment) and a flat prefix trie of valid IDs ([`sid::Trie`]);
//!   IDs as LLM text tokens ([`sid::TextFormat`]) and prefix n-grams for
//!   ranking models ([`sid::prefix_ngrams`]);
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
//!   `docs/FORMAT.md`); `.npy` input, whole or a block of rows at a time
//!   ([`npy`]).
//!
//! The `semid` command (workspace crate `semid-cli`, `docs/CLI.md`) drives
//! the same pipeline from a shell on `.npy` and Parquet files: `fit`,
//! `encode`, `index build | insert | info`, `search`, `eval`, `inspect`.
//!
//! ```
//! use semid::prelude::*;
//! use semid::{stats, synthetic};
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
//! One word per idea, across the crate, the Python package and the CLI:
//!
//! | word | means | e.g. |
//! |---|---|---|
//! | `levels` | tokens per code: `Quantizer::levels`, `Codes::levels`, the `levels` of every config and constructor | RQ-KMeans 3 × 256 has 3 |
//! | `id_len` | tokens per semantic ID: `levels`, plus one with [`CollisionPolicy::AppendSuffix`] ([`sid::SidMap::id_len`], [`sid::Trie::id_len`], [`decode::Constraint::id_len`]) | 4 |
//! | `codebook_size(l)` / `codebook_sizes()` | tokens possible at position `l` of a code or an ID (the suffix position counts as one more codebook) | 256; `Π levels_per_dim` for [`Fsq`] |
//! | `k` | codes per level in a config: [`KMeansConfig::k`], [`RqKMeansConfig::k`], [`RqVaeConfig::k`] | |
//! | `levels_per_dim` | FSQ's values in each latent dimension | `[8, 5, 5, 5]` |
//! | `vocab_size` | a sequence model's whole token vocabulary ([`sid::TokenMap::vocab_size`]) | 773 |
//! | `allowed(s)`, `child(s, i)` | the tokens after a state, and the state after one: [`decode::Constraint`], and [`sid::Trie`]'s typed forms (a slice, an `Option`) | |
//! | `par` | threads a call may use ([`Par`]): a field of every fit's config, the last argument of every call that encodes, searches or builds from a fitted model; the allocating shorthands (`Quantizer::encode`, `decode`) use `Par::default()` | |
//! | `…Config` | `new(required)`, a setter per field, `validate()`; `fit` validates | [`RqKMeansConfig`] |
//! | `…Report` | what a fit or an insertion measured | [`RqKMeansReport`], [`EpochReport`] |
//! | `x_into(…, out)` | writes into a caller buffer; `x(…)` allocates it | `encode_into` / `encode`, `search_into` / `search` |
//! | `x_with_…` | `x` with one more explicit input | `fit_with_steps`, `fit_with_callback`, `build_with_distances` |
//! | `with_…` | a constructor with an option | `Fsq::with_mode` |
//! | `search` | decoding IDs with [`BeamSearch`]; the inputs come first, the search settings last | `index.search(scorer, n, &mut beam)`, `index.search_embeddings(queries, &mut beam)` |
//! | [`EncodeSearch`] | how RQ-KMeans picks codes when encoding (greedy or beam) | |
//!
//! [`prelude`] imports what most programs use: `use semid::prelude::*;`.
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
mod index;
pub mod kernels;
mod layout;
mod mapped;
pub mod metrics;
pub mod nn;
pub mod npy;
mod par;
pub mod quantize;
mod rng;
pub mod seq;
mod shared;
pub mod sid;
pub mod stats;
pub mod synthetic;

pub use data::{Codes, DType, Embeddings};
pub use decode::BeamSearch;
pub use error::{Error, FormatError, Result};
pub use format::ModelFile;
pub use hits::Hits;
pub use index::{Check, SemanticIndex};
pub use par::Par;
pub use quantize::{
    AnyQuantizer, Assignment, EncodeSearch, EpochReport, Fit, Fsq, FsqAutoencoder,
    FsqAutoencoderConfig, FsqMode, Init, KMeans, KMeansConfig, KMeansReport, LevelReport, PqConfig,
    ProductQuantizer, Quantizer, ResidualFsq, RqKMeans, RqKMeansConfig, RqKMeansReport, RqVae,
    RqVaeConfig,
};
pub use shared::SharedIndex;
pub use sid::CollisionPolicy;

/// What most programs import: `use semid::prelude::*;`.
///
/// The data views, the quantizers with their configs, the two traits a
/// quantizer is used through ([`Quantizer`], [`Fit`]) and the one a model
/// file is saved and loaded through ([`ModelFile`]), the index and its
/// search. [`Result`] is left out so that it does not shadow
/// `std`'s: write `semid::Result`.
///
/// ```
/// use semid::prelude::*;
///
/// let cfg = semid::synthetic::MixtureConfig { n: 2_000, dim: 16, ..Default::default() };
/// let data = semid::synthetic::hierarchical_mixture(&cfg);
/// let x = Embeddings::new(&data, 16)?;
/// let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16), x)?;
/// assert_eq!(rq.encode(x)?.levels(), 2);
/// # Ok::<(), semid::Error>(())
/// ```
pub mod prelude {
    pub use crate::{
        BeamSearch, Codes, CollisionPolicy, Embeddings, Error, Fit, Fsq, FsqAutoencoder,
        FsqAutoencoderConfig, Hits, KMeans, KMeansConfig, ModelFile, Par, PqConfig,
        ProductQuantizer, Quantizer, ResidualFsq, RqKMeans, RqKMeansConfig, RqVae, RqVaeConfig,
        SemanticIndex, SharedIndex,
    };
}
