//! Quantizers: embeddings in, codes out.
//!
//! Every quantizer implements [`Quantizer`] (encode/decode into caller
//! buffers, allocating conveniences on top) and [`Fit`] (train from data
//! with a config), so swapping RQ-KMeans for another quantizer is one line.

mod any;
mod autoencoder;
mod fsq;
mod fsq_ae;
pub(crate) mod kmeans;
mod pq;
mod residual_fsq;
mod rq_kmeans;
mod rqvae;
mod standardize;

pub use any::AnyQuantizer;
pub use autoencoder::{EpochReport, rotation_trick_backward};
pub use fsq::{Fsq, FsqMode};
pub use fsq_ae::{FsqAutoencoder, FsqAutoencoderConfig};
pub use kmeans::{
    Assignment, CpuSteps, Init, KMeans, KMeansConfig, KMeansReport, Labels, LloydSteps,
    centroid_sum_chunk,
};
pub use pq::{PqConfig, PqReport, ProductQuantizer, ProductQuantizerV1};
pub use residual_fsq::ResidualFsq;
pub use rq_kmeans::{EncodeSearch, LevelReport, RqKMeans, RqKMeansConfig, RqKMeansReport};
pub use rqvae::{RqVae, RqVaeConfig};

use crate::data::{Codes, Embeddings};
use crate::error::Result;
use crate::par::Par;

/// A fitted quantizer: maps `d`-dimensional embeddings to `L` tokens and back.
///
/// Object-safe: `Box<dyn Quantizer>` works. Implementations validate all
/// input and return [`Error`](crate::Error)s, never panic on user data.
pub trait Quantizer {
    /// Embedding dimension `d` the model was fitted on.
    fn dim(&self) -> usize;

    /// Number of tokens per code, `L`.
    fn levels(&self) -> usize;

    /// Codebook size of `level` (0 for a level `>= levels()`).
    fn codebook_size(&self, level: usize) -> usize;

    /// Codebook sizes of all levels.
    fn codebook_sizes(&self) -> Vec<usize> {
        (0..self.levels()).map(|l| self.codebook_size(l)).collect()
    }

    /// Encodes `x` (`n × d`) into `out` (`n × L` tokens, row-major).
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()>;

    /// Decodes `codes` (`n × L`) into `out` (`n × d`, row-major).
    fn decode_into(&self, codes: &Codes, out: &mut [f32], par: Par) -> Result<()>;

    /// Allocating [`Quantizer::encode_into`] with [`Par::default`].
    fn encode(&self, x: Embeddings<'_>) -> Result<Codes> {
        let mut out = vec![0u16; x.rows() * self.levels()];
        self.encode_into(x, &mut out, Par::default())?;
        Codes::new(out, self.levels())
    }

    /// Allocating [`Quantizer::decode_into`] with [`Par::default`].
    fn decode(&self, codes: &Codes) -> Result<Vec<f32>> {
        let mut out = vec![0f32; codes.rows() * self.dim()];
        self.decode_into(codes, &mut out, Par::default())?;
        Ok(out)
    }

    /// Reconstruction MSE on `x`: the mean over rows of `‖x − decode(encode(x))‖²`
    /// (see [`stats::mse`](crate::stats::mse)), encoded and decoded in blocks
    /// of 16 384 rows so extra memory does not grow with `n`.
    fn reconstruction_mse(&self, x: Embeddings<'_>, par: Par) -> Result<f64> {
        x.expect_dim(self.dim())?;
        let (d, lv) = (x.dim(), self.levels());
        let step = 16384;
        let mut codes = vec![0u16; step * lv];
        let mut rec = vec![0f32; step * d];
        let mut total = 0.0f64;
        let mut r = 0;
        while r < x.rows() {
            let end = (r + step).min(x.rows());
            let xb = x.slice_rows(r, end);
            let rows = end - r;
            self.encode_into(xb, &mut codes[..rows * lv], par)?;
            let c = Codes::new(codes[..rows * lv].to_vec(), lv)?;
            self.decode_into(&c, &mut rec[..rows * d], par)?;
            total += crate::stats::mse(xb, &rec[..rows * d])? * rows as f64;
            r = end;
        }
        Ok(total / x.rows() as f64)
    }
}

/// Distances a quantizer can give for
/// [`CollisionPolicy::ReassignLastLevel`](crate::sid::CollisionPolicy::ReassignLastLevel)
/// (implemented by [`RqKMeans`]).
pub trait LastLevelDistances: Quantizer {
    /// For each row of `x` with its code (`codes`, row-major `n × L`),
    /// writes into `out` (`n × k_last`, row-major) the squared distance
    /// between the row's residual before the last level and every
    /// last-level codeword.
    fn last_level_distances(&self, x: Embeddings<'_>, codes: &[u16], out: &mut [f32])
    -> Result<()>;
}

/// Checks the arguments of [`LastLevelDistances::last_level_distances`]
/// for `q`: `x`'s dimension, `codes` (`n × L`, tokens in range) and `out`
/// (`n × k_last`). Returns `(n, L, k_last)`.
pub(crate) fn check_last_level(
    q: &dyn Quantizer,
    x: Embeddings<'_>,
    codes: &[u16],
    out: &[f32],
) -> Result<(usize, usize, usize)> {
    x.expect_dim(q.dim())?;
    let (n, lv) = (x.rows(), q.levels());
    let k = q.codebook_size(lv - 1);
    expect_len("code length (n × L)", n * lv, codes.len())?;
    crate::data::check_tokens(codes, lv, &q.codebook_sizes())?;
    expect_len("distance buffer length (n × k)", n * k, out.len())?;
    Ok((n, lv, k))
}

/// Training: a quantizer exists only after a successful fit.
pub trait Fit: Quantizer + Sized {
    /// The configuration type (`Default` + `validate()`).
    type Config;
    /// What the fit reports (iterations, losses, statistics).
    type Report;

    /// Fits a model to `x` (`n × d`).
    fn fit(config: &Self::Config, x: Embeddings<'_>) -> Result<(Self, Self::Report)>;
}

/// `impl Fit for $model` by the model's inherent `fit`.
macro_rules! fit_by_inherent {
    ($model:ty, $config:ty, $report:ty) => {
        impl $crate::quantize::Fit for $model {
            type Config = $config;
            type Report = $report;
            fn fit(
                config: &$config,
                x: $crate::data::Embeddings<'_>,
            ) -> $crate::error::Result<(Self, $report)> {
                <$model>::fit(config, x)
            }
        }
    };
}
pub(crate) use fit_by_inherent;

pub(crate) use crate::error::expect_len;
