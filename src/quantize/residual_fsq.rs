//! Residual FSQ in vector-quantize-pytorch's `ResidualFSQ` convention.

use super::{Fsq, FsqMode, Quantizer, expect_len};
use crate::data::{Codes, Embeddings};
use crate::error::{Result, invalid};
use crate::format::{ModelKind, sealed::Payload, stored_usize, to_invalid};
use crate::par::{Par, for_each_block};

/// Rows per block of residual-FSQ work.
const BLOCK: usize = 2048;

/// Residual finite scalar quantization: `Q` FSQ layers with the same
/// levels, each quantizing what the previous ones left, at a finer scale.
///
/// The convention is vector-quantize-pytorch's `ResidualFSQ(levels,
/// num_quantizers)` with its defaults and no projection (the input width is
/// `levels.len()`; learn a projection with [`super::FsqAutoencoder`] or
/// your own model): per dimension with `L` levels, the input is first
/// soft-clamped, `x ← tanh(x / c)·c` with `c = 1 + 1/(L − 1)`; layer `q`
/// then quantizes `r / s_q` with `s_q = L^(−q)` by
/// [`FsqMode::SymmetricHardClamp`], multiplies the value back by `s_q`
/// and subtracts it from the residual `r`. The output is the sum of the
/// layers' scaled values. Every index and output value of
/// tests/data/residual_fsq (written by the reference) is equal bit for bit.
///
/// As a [`Quantizer`]: `Q` levels, each token the layer's FSQ index
/// (`Π levels` ≤ 65 536 codes per level).
///
/// ```
/// use semid::{Embeddings, Quantizer, quantize::ResidualFsq};
/// let rfsq = ResidualFsq::new(&[8, 5, 5, 5], 3)?;
/// let x = [0.3f32, -0.7, 0.05, 0.9];
/// let codes = rfsq.encode(Embeddings::new(&x, 4)?)?;
/// assert_eq!(codes.levels(), 3);
/// let y = rfsq.decode(&codes)?;
/// // Three layers refine the soft-clamped input `tanh(x/c)·c`,
/// // c = 1 + 1/(L − 1), to within the last layer's step.
/// for ((&a, &b), l) in x.iter().zip(&y).zip([8.0f32, 5.0, 5.0, 5.0]) {
///     let c = 1.0 + 1.0 / (l - 1.0);
///     assert!(((a / c).tanh() * c - b).abs() < 0.02);
/// }
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualFsq {
    layer: Fsq,
    levels: usize,
    /// Soft-clamp bound per dimension, `1 + 1/(L − 1)`.
    clamp: Vec<f32>,
    /// `levels × d` layer scales `L^(−q)`.
    scales: Vec<f32>,
}

impl ResidualFsq {
    /// `levels` layers (tokens per code) of FSQ with `levels_per_dim[j]`
    /// values in dimension `j`.
    ///
    /// Errors: no dimension, a level below 2 or a product above 65 536 (as
    /// [`Fsq::with_mode`]), or 0 layers.
    pub fn new(levels_per_dim: &[u32], levels: usize) -> Result<ResidualFsq> {
        if levels == 0 {
            return Err(invalid("levels", "is 0; use at least 1 layer"));
        }
        if levels > 64 {
            return Err(invalid(
                "levels",
                format!("is {levels}; at most 64 layers (scales underflow long before)"),
            ));
        }
        let layer = Fsq::with_mode(levels_per_dim, FsqMode::SymmetricHardClamp)?;
        let clamp = levels_per_dim
            .iter()
            .map(|&l| 1.0f32 + 1.0f32 / (l - 1) as f32)
            .collect();
        let mut scales = Vec::with_capacity(levels * levels_per_dim.len());
        for q in 0..levels {
            // `L ** -q` in f32, as the reference's pow (1/L, 1/(L·L), …;
            // exact powers rounded once).
            scales.extend(
                levels_per_dim
                    .iter()
                    .map(|&l| (1.0f64 / (l as f64).powi(q as i32)) as f32),
            );
        }
        Ok(ResidualFsq {
            layer,
            levels,
            clamp,
            scales,
        })
    }

    /// Levels per dimension.
    #[must_use]
    pub fn levels_per_dim(&self) -> Vec<u32> {
        self.layer.levels_per_dim()
    }

    /// The per-layer FSQ (symmetric, hard clamp).
    #[must_use]
    pub fn layer(&self) -> &Fsq {
        &self.layer
    }

    /// Encodes rows of `z` (`n × d`, finite) into `out` (`n × Q`).
    fn encode_block(&self, z: &[f32], out: &mut [u16]) {
        let d = self.clamp.len();
        let mut r = vec![0f32; d];
        for (row, o) in z.chunks_exact(d).zip(out.chunks_exact_mut(self.levels)) {
            for ((rv, &x), &c) in r.iter_mut().zip(row).zip(&self.clamp) {
                *rv = (((x / c) as f64).tanh() as f32) * c;
            }
            for (q, t) in o.iter_mut().enumerate() {
                let scales = &self.scales[q * d..(q + 1) * d];
                let mut idx = 0u32;
                for (j, (rv, &s)) in r.iter_mut().zip(scales).enumerate() {
                    let digit = self.layer.digit_at(j, *rv / s);
                    idx += digit * self.layer.basis_at(j);
                    *rv -= self.layer.value_at(j, digit) * s;
                }
                *t = idx as u16;
            }
        }
    }
}

impl Quantizer for ResidualFsq {
    fn dim(&self) -> usize {
        self.clamp.len()
    }
    fn levels(&self) -> usize {
        self.levels
    }
    fn codebook_size(&self, level: usize) -> usize {
        if level < self.levels {
            self.layer.n_codes()
        } else {
            0
        }
    }
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        let d = self.dim();
        x.expect_dim(d)?;
        expect_len(
            "code buffer length (n × levels)",
            x.rows() * self.levels,
            out.len(),
        )?;
        let mut buf = Vec::new();
        for start in (0..x.rows()).step_by(1 << 16) {
            let end = (start + (1 << 16)).min(x.rows());
            let zb = x.block(start, end, &mut buf)?;
            crate::data::check_finite("residual FSQ input", zb, d, start)?;
            let o = &mut out[start * self.levels..end * self.levels];
            let q = self.levels;
            for_each_block(
                par,
                end - start,
                BLOCK,
                o,
                q,
                || (),
                |_, row0, ob| {
                    self.encode_block(&zb[row0 * d..(row0 + ob.len() / q) * d], ob);
                },
            );
        }
        Ok(())
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], _par: Par) -> Result<()> {
        codes.check_tokens(&self.codebook_sizes())?;
        let d = self.dim();
        expect_len("output length (n × d)", codes.rows() * d, out.len())?;
        for (row, o) in codes.iter().zip(out.chunks_exact_mut(d)) {
            o.fill(0.0);
            for (q, &t) in row.iter().enumerate() {
                let scales = &self.scales[q * d..(q + 1) * d];
                for (j, (ov, &s)) in o.iter_mut().zip(scales).enumerate() {
                    let digit = (t as u32 / self.layer.basis_at(j)) % self.layer.level_at(j);
                    *ov += self.layer.value_at(j, digit) * s;
                }
            }
        }
        Ok(())
    }
}

// ---- model file (format version 1; docs/FORMAT.md) ----

/// [`ResidualFsq`]'s model-file payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ResidualFsqV1 {
    levels: Vec<u32>,
    quantizers: u64,
}

impl Payload for ResidualFsq {
    const KIND: ModelKind = ModelKind::ResidualFsq;
    type V = ResidualFsqV1;
    fn to_payload(&self) -> ResidualFsqV1 {
        ResidualFsqV1 {
            levels: self.levels_per_dim(),
            quantizers: self.levels as u64,
        }
    }
    fn from_payload(p: ResidualFsqV1) -> Result<Self> {
        let q = stored_usize(p.quantizers, "quantizers")?;
        ResidualFsq::new(&p.levels, q).map_err(to_invalid)
    }
}
