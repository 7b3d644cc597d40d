//! Finite scalar quantization (FSQ) in vector-quantize-pytorch's convention, with a
//! correctly rounded `tanh` (see [`Fsq`] for where PyTorch differs).

use super::{Quantizer, expect_len};
use crate::data::{Codes, Embeddings, check_finite};
use crate::error::{Error, Result, invalid};
use crate::format::{ModelKind, invalid_payload, sealed::Payload, to_invalid};
use crate::par::{Par, for_each_block};

/// Rows per block of FSQ work.
const FSQ_BLOCK: usize = 4096;

/// How FSQ bounds and rounds each value (vector-quantize-pytorch's
/// options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FsqMode {
    /// `FSQ(levels)`: `round(tanh(z + shift)·half_l − offset) / (L / 2)`.
    /// Needs every level ≥ 3 (as the reference, which asserts it: with
    /// `L = 2` the two values are −1 and 0).
    #[default]
    Default,
    /// `FSQ(levels, preserve_symmetry = True)` (Yu et al. 2024, §3.2):
    /// `2/(L−1) · ⌊(L−1)(tanh(z) + 1)/2 + ½⌋ − 1`, values symmetric around
    /// 0; levels ≥ 2.
    Symmetric,
    /// [`FsqMode::Symmetric`] with `clamp(z, −1, 1)` instead of `tanh`
    /// (`bound_hard_clamp = True`): what `ResidualFSQ`'s layers use on
    /// their pre-scaled residuals.
    SymmetricHardClamp,
}

/// One dimension's rounding, as thresholds in input space.
#[derive(Clone, Debug, PartialEq)]
struct Dim {
    level: u32,
    mode: FsqMode,
    /// `L / 2` (integer division): divides the rounded value (default
    /// mode) and turns it into a digit.
    half_width: i32,
    /// `2 / (L − 1)` in f32 (symmetric modes).
    sym_scale: f32,
    /// Added to a rounded value to make its digit: `L / 2` in the default
    /// mode, 0 in the symmetric ones.
    digit_offset: i32,
    half_l: f32,
    offset: f32,
    shift: f32,
    /// Rounded value at −∞.
    r_min: i32,
    /// `thresholds[i]`: the smallest f32 input whose rounded value is
    /// `r_min + i + 1`. Ascending.
    thresholds: Vec<f32>,
}

impl Dim {
    fn new(level: u32, mode: FsqMode) -> Dim {
        // Float32 throughout, in the reference's order of operations.
        let half_l = ((level - 1) as f32) * (1.0f32 + 1e-3f32) / 2.0f32;
        let offset = if level.is_multiple_of(2) {
            0.5f32
        } else {
            0.0f32
        };
        // atanh and tanh are evaluated in f64 and rounded to f32: correctly
        // rounded f32 results, the same on every platform's libm (PyTorch's
        // float32 kernels agree with them on the golden cases).
        let shift = ((offset / half_l) as f64).atanh() as f32;
        let mut d = Dim {
            level,
            mode,
            half_width: (level / 2) as i32,
            sym_scale: 2.0f32 / (level - 1) as f32,
            digit_offset: if mode == FsqMode::Default {
                (level / 2) as i32
            } else {
                0
            },
            half_l,
            offset,
            shift,
            r_min: 0,
            thresholds: Vec::new(),
        };
        d.r_min = d.round(f32::NEG_INFINITY);
        let r_max = d.round(f32::INFINITY);
        // Each threshold by binary search over the f32 values in order.
        for k in d.r_min..r_max {
            let (mut lo, mut hi) = (ordered(f32::NEG_INFINITY), ordered(f32::INFINITY));
            // Invariant: round(lo) <= k < round(hi).
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if d.round(from_ordered(mid)) > k {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            d.thresholds.push(from_ordered(hi));
        }
        d
    }

    /// The reference formula in f32, in its order of operations: default
    /// mode `round_half_even(tanh(z + shift) · half_l − offset)`, symmetric
    /// modes `⌊(L − 1)(b(z) + 1)/2 + 0.5⌋` with `b` = tanh or clamp.
    #[inline]
    fn round(&self, z: f32) -> i32 {
        match self.mode {
            FsqMode::Default => {
                let t = ((z + self.shift) as f64).tanh() as f32;
                let bounded = t * self.half_l - self.offset;
                bounded.round_ties_even() as i32
            }
            FsqMode::Symmetric | FsqMode::SymmetricHardClamp => {
                let b = if self.mode == FsqMode::Symmetric {
                    (z as f64).tanh() as f32
                } else {
                    z.clamp(-1.0, 1.0)
                };
                let lm1 = (self.level - 1) as f32;
                ((lm1 * (b + 1.0)) / 2.0 + 0.5).floor() as i32
            }
        }
    }

    /// The rounded value of `z` from the thresholds.
    #[inline]
    fn fast(&self, z: f32) -> i32 {
        if self.thresholds.len() > 32 {
            return self.r_min + self.thresholds.partition_point(|&t| z >= t) as i32;
        }
        let mut r = self.r_min;
        for &t in &self.thresholds {
            r += i32::from(z >= t);
        }
        r
    }

    /// Digit (`0..L`) of a rounded value.
    #[inline]
    fn digit(&self, r: i32) -> u32 {
        (r + self.digit_offset) as u32
    }

    /// Quantized value of a digit, as the reference computes it.
    #[inline]
    fn value(&self, digit: u32) -> f32 {
        match self.mode {
            FsqMode::Default => (digit as i32 - self.half_width) as f32 / self.half_width as f32,
            _ => self.sym_scale * digit as f32 - 1.0,
        }
    }
}

/// f32 → u32 key with the same order as the floats (−∞ … −0, +0 … +∞).
fn ordered(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

fn from_ordered(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k })
}

/// Finite scalar quantization (Mentzer et al., 2023) with the convention of
/// vector-quantize-pytorch's `FSQ` (its defaults), which RecGPT uses.
///
/// Per dimension `j` with `L = levels[j]`, in f32: `half_l = (L − 1)(1 +
/// 1e−3)/2`, `offset = 0.5` for even `L` else 0, `shift = atanh(offset /
/// half_l)`, `r = round_half_even(tanh(z + shift)·half_l − offset)`; the
/// quantized value is `r / (L / 2)` and the digit `r + L / 2 ∈ 0..L`; the
/// index is `Σ digit_j · basis_j` with `basis = cumprod([1] + levels[..−1])`
/// (dimension 0 least significant). Older code following the paper
/// literally (`1 − eps`, `tan` shift) gives other codes.
///
/// The rounding is computed from per-dimension thresholds found once, at
/// construction, by binary search over f32 inputs with the formula above,
/// so encoding is a few comparisons per value and gives exactly the
/// formula's result. `atanh` and `tanh` are correctly rounded to f32
/// (evaluated in f64), so codes do not depend on the platform's libm; all
/// 206 golden rows, including the 16 within 1e-4 of a rounding boundary,
/// match PyTorch bit for bit.
///
/// PyTorch itself is not correctly rounded: on x86-64 builds `torch.tanh`
/// of a float32 tensor is Intel MKL's `vsTanh` (checked by calling it:
/// equal on 10⁶ of 10⁶ values), which differs from the correctly rounded
/// value on about 1% of inputs, by one ulp. An index differs only when the
/// bounded value falls within that ulp of a rounding boundary: 1 row in
/// 8 million N(0, 1) rows, and 8 of 2 730 inputs scanned ±32 ulps around
/// every boundary of levels 3–8 and 16 (`docs/quantizers.md`).
///
/// [`Fsq::with_mode`] selects vector-quantize-pytorch's symmetric variants
/// ([`FsqMode`]); [`super::ResidualFsq`] stacks them, and
/// [`super::FsqAutoencoder`] learns a projection into FSQ from raw
/// embeddings.
///
/// As a [`Quantizer`], `Fsq` has one level whose token is the index
/// (`codebook_size = Π levels`, at most 65 536) and works on
/// `levels.len()`-dimensional inputs (no projection).
///
/// ```
/// use semid::{Embeddings, Quantizer, quantize::Fsq};
/// let fsq = Fsq::new(&[8, 5, 5, 5])?;
/// let z = [0.1257302f32, -0.13210486, 0.64042264, 0.10490011];
/// let codes = fsq.encode(Embeddings::new(&z, 4)?)?;
/// assert_eq!(codes.as_slice(), &[540]);
/// assert_eq!(fsq.decode(&codes)?, vec![0.0, 0.0, 0.5, 0.0]);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Fsq {
    mode: FsqMode,
    dims: Vec<Dim>,
    basis: Vec<u32>,
    size: usize,
}

impl Fsq {
    /// FSQ with `levels_per_dim[j]` values in latent dimension `j`.
    ///
    /// Errors: no dimension, a level below 2 or above 65 536, or a product
    /// of the levels above 65 536 (indices are `u16` tokens).
    pub fn new(levels_per_dim: &[u32]) -> Result<Fsq> {
        Fsq::with_mode(levels_per_dim, FsqMode::Default)
    }

    /// FSQ with the given levels per dimension and bounding mode.
    ///
    /// Errors: no dimension, a level below 2 (below 3 in the default mode)
    /// or above 65 536, or a product of the levels above 65 536.
    pub fn with_mode(levels_per_dim: &[u32], mode: FsqMode) -> Result<Fsq> {
        if levels_per_dim.is_empty() {
            return Err(Error::Empty {
                what: "FSQ levels_per_dim",
            });
        }
        if let Some(&l) = levels_per_dim
            .iter()
            .find(|&&l| !(2..=1 << 16).contains(&l))
        {
            return Err(invalid(
                "levels_per_dim",
                format!("holds {l}; every level needs 2..=65536 values"),
            ));
        }
        if mode == FsqMode::Default && levels_per_dim.contains(&2) {
            return Err(invalid(
                "levels_per_dim",
                format!(
                    "{levels_per_dim:?} holds 2; the default FSQ bound gives the values −1 and 0 there (vector-quantize-pytorch refuses it): use FsqMode::Symmetric or a level ≥ 3"
                ),
            ));
        }
        let mut basis = Vec::with_capacity(levels_per_dim.len());
        let mut size: u64 = 1;
        for &l in levels_per_dim {
            basis.push(size as u32);
            size = size.saturating_mul(l as u64);
            if size > 1 << 16 {
                return Err(invalid(
                    "levels_per_dim",
                    format!(
                        "{levels_per_dim:?}: the product of the levels exceeds 65536, the u16 index range; use fewer or smaller levels, or residual FSQ"
                    ),
                ));
            }
        }
        Ok(Fsq {
            mode,
            dims: levels_per_dim.iter().map(|&l| Dim::new(l, mode)).collect(),
            basis,
            size: size as usize,
        })
    }

    /// Levels per dimension (as a [`Quantizer`], an `Fsq` has one level of
    /// `Π levels_per_dim` codes).
    #[must_use]
    pub fn levels_per_dim(&self) -> Vec<u32> {
        self.dims.iter().map(|d| d.level).collect()
    }

    /// The bounding mode.
    #[must_use]
    pub fn mode(&self) -> FsqMode {
        self.mode
    }

    /// Number of codes, `Π levels` (what `Quantizer::codebook_size(0)` says).
    pub(crate) fn n_codes(&self) -> usize {
        self.size
    }

    /// Index of every row of `z` (`n × levels.len()`, finite) into `out`.
    pub fn indices_into(&self, z: &[f32], out: &mut [u16], par: Par) -> Result<()> {
        let d = self.dims.len();
        self.check_input(z, out.len())?;
        for_each_block(
            par,
            out.len(),
            FSQ_BLOCK,
            out,
            1,
            || (),
            |_, row0, o| {
                let zb = &z[row0 * d..(row0 + o.len()) * d];
                self.indices_block(zb, o);
            },
        );
        Ok(())
    }

    fn indices_block(&self, z: &[f32], out: &mut [u16]) {
        let d = self.dims.len();
        // Unrolled for the common 4- and 5-level shapes.
        for (row, o) in z.chunks_exact(d).zip(out.iter_mut()) {
            let mut idx = 0u32;
            for ((&v, dim), &b) in row.iter().zip(&self.dims).zip(&self.basis) {
                let digit = dim.digit(dim.fast(v));
                idx += digit * b;
            }
            *o = idx as u16;
        }
    }

    /// Quantized values (`r / (L / 2)` per dimension, the FSQ forward
    /// output) of every row of `z` into `out` (same shape).
    pub fn quantize_into(&self, z: &[f32], out: &mut [f32]) -> Result<()> {
        let d = self.dims.len();
        if out.len() != z.len() {
            return Err(Error::Shape {
                what: "output length (same as the input)",
                expected: z.len(),
                got: out.len(),
            });
        }
        self.check_input(z, z.len() / d)?;
        for (zr, or) in z.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            for ((&v, o), dim) in zr.iter().zip(or.iter_mut()).zip(&self.dims) {
                *o = dim.value(dim.digit(dim.fast(v)));
            }
        }
        Ok(())
    }

    /// The per-dimension digits (`0..L`) of `index`.
    pub fn digits(&self, index: u16, out: &mut [u32]) -> Result<()> {
        expect_len("digit buffer (one per level)", self.dims.len(), out.len())?;
        self.check_index(index)?;
        for ((o, dim), &b) in out.iter_mut().zip(&self.dims).zip(&self.basis) {
            *o = (index as u32 / b) % dim.level;
        }
        Ok(())
    }

    /// The index of per-dimension digits (each below its level).
    pub fn index_of(&self, digits: &[u32]) -> Result<u16> {
        expect_len("digits (one per level)", self.dims.len(), digits.len())?;
        let mut idx = 0u32;
        for (j, ((&g, dim), &b)) in digits.iter().zip(&self.dims).zip(&self.basis).enumerate() {
            if g >= dim.level {
                return Err(invalid(
                    "digits",
                    format!(
                        "digit {g} at dimension {j} is not below its level {}",
                        dim.level
                    ),
                ));
            }
            idx += g * b;
        }
        Ok(idx as u16)
    }

    /// The quantized values of `index` into `out` (one per dimension).
    pub fn index_to_values(&self, index: u16, out: &mut [f32]) -> Result<()> {
        expect_len("value buffer (one per level)", self.dims.len(), out.len())?;
        self.check_index(index)?;
        for ((o, dim), &b) in out.iter_mut().zip(&self.dims).zip(&self.basis) {
            *o = dim.value((index as u32 / b) % dim.level);
        }
        Ok(())
    }

    /// The reference formula for one value of dimension `j` (for tests):
    /// the rounded integer `r`; `None` for a dimension out of range.
    #[doc(hidden)]
    #[must_use]
    pub fn reference_round(&self, j: usize, z: f32) -> Option<i32> {
        self.dims.get(j).map(|d| d.round(z))
    }

    /// The threshold path for one value of dimension `j` (for tests);
    /// `None` for a dimension out of range.
    #[doc(hidden)]
    #[must_use]
    pub fn fast_round(&self, j: usize, z: f32) -> Option<i32> {
        self.dims.get(j).map(|d| d.fast(z))
    }

    /// Rounding thresholds of dimension `j` (for tests; empty when out of
    /// range).
    #[doc(hidden)]
    #[must_use]
    pub fn thresholds(&self, j: usize) -> &[f32] {
        self.dims.get(j).map_or(&[], |d| &d.thresholds)
    }

    /// Digit (`0..L`) of value `z` at dimension `j` (in range).
    #[inline]
    pub(crate) fn digit_at(&self, j: usize, z: f32) -> u32 {
        let d = &self.dims[j];
        d.digit(d.fast(z))
    }

    /// Quantized value of `digit` at dimension `j` (in range).
    #[inline]
    pub(crate) fn value_at(&self, j: usize, digit: u32) -> f32 {
        self.dims[j].value(digit)
    }

    /// Level count of dimension `j` (in range).
    #[inline]
    pub(crate) fn level_at(&self, j: usize) -> u32 {
        self.dims[j].level
    }

    /// Straight-through derivative of the quantized value of dimension `j`
    /// at `z`: the derivative of the bound (rounding passes gradients
    /// unchanged), as PyTorch's autograd gives it for the reference.
    #[inline]
    pub(crate) fn ste_grad_at(&self, j: usize, z: f32) -> f32 {
        let d = &self.dims[j];
        match d.mode {
            FsqMode::Default => {
                let t = (z + d.shift).tanh();
                (1.0 - t * t) * d.half_l / d.half_width as f32
            }
            FsqMode::Symmetric => {
                let t = z.tanh();
                d.sym_scale * (d.level - 1) as f32 / 2.0 * (1.0 - t * t)
            }
            FsqMode::SymmetricHardClamp => f32::from(u8::from((-1.0..=1.0).contains(&z))),
        }
    }

    /// Index weight of dimension `j`.
    #[inline]
    pub(crate) fn basis_at(&self, j: usize) -> u32 {
        self.basis[j]
    }

    fn check_index(&self, index: u16) -> Result<()> {
        if index as usize >= self.size {
            return Err(Error::TokenOutOfRange {
                row: 0,
                level: 0,
                token: index,
                codebook_size: self.size,
            });
        }
        Ok(())
    }

    fn check_input(&self, z: &[f32], rows: usize) -> Result<()> {
        let d = self.dims.len();
        if !z.len().is_multiple_of(d) {
            return Err(Error::Shape {
                what: "input length (multiple of the number of levels)",
                expected: z.len().div_ceil(d) * d,
                got: z.len(),
            });
        }
        expect_len("output rows", z.len() / d, rows)?;
        check_finite("FSQ input", z, d, 0)
    }
}

impl Quantizer for Fsq {
    fn dim(&self) -> usize {
        self.dims.len()
    }
    fn levels(&self) -> usize {
        1
    }
    fn codebook_size(&self, level: usize) -> usize {
        if level == 0 { self.size } else { 0 }
    }
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        x.expect_dim(self.dims.len())?;
        expect_len("code buffer length (n × 1)", x.rows(), out.len())?;
        let mut buf = Vec::new();
        for start in (0..x.rows()).step_by(1 << 16) {
            let end = (start + (1 << 16)).min(x.rows());
            let zb = x.block(start, end, &mut buf)?;
            self.indices_into(zb, &mut out[start..end], par)?;
        }
        Ok(())
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], _par: Par) -> Result<()> {
        codes.check_tokens(&[self.size])?;
        let d = self.dims.len();
        expect_len("output length (n × d)", codes.rows() * d, out.len())?;
        for (&t, o) in codes.as_slice().iter().zip(out.chunks_exact_mut(d)) {
            self.index_to_values(t, o)?;
        }
        Ok(())
    }
}

// ---- model file (format version 1; docs/FORMAT.md) ----

/// [`FsqMode`]'s stored tag.
pub(crate) fn mode_tag(m: FsqMode) -> u8 {
    match m {
        FsqMode::Default => 0,
        FsqMode::Symmetric => 1,
        FsqMode::SymmetricHardClamp => 2,
    }
}

/// The [`FsqMode`] of a stored tag.
pub(crate) fn mode_of(tag: u8) -> Result<FsqMode> {
    match tag {
        0 => Ok(FsqMode::Default),
        1 => Ok(FsqMode::Symmetric),
        2 => Ok(FsqMode::SymmetricHardClamp),
        t => Err(invalid_payload(format!("unknown FSQ mode tag {t}"))),
    }
}

/// [`Fsq`]'s model-file payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct FsqV1 {
    /// 0 = default, 1 = symmetric, 2 = symmetric with hard clamp.
    mode: u8,
    levels: Vec<u32>,
}

impl Payload for Fsq {
    const KIND: ModelKind = ModelKind::Fsq;
    type V = FsqV1;
    fn to_payload(&self) -> FsqV1 {
        FsqV1 {
            mode: mode_tag(self.mode()),
            levels: self.levels_per_dim(),
        }
    }
    fn from_payload(p: FsqV1) -> Result<Self> {
        Fsq::with_mode(&p.levels, mode_of(p.mode)?).map_err(to_invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straight-through derivative is the derivative of the continuous
    /// bound (before rounding), checked by central differences.
    #[test]
    fn ste_gradient_is_the_bound_derivative() {
        for mode in [
            FsqMode::Default,
            FsqMode::Symmetric,
            FsqMode::SymmetricHardClamp,
        ] {
            let fsq = Fsq::with_mode(&[3, 4, 8], mode).unwrap();
            for (j, dim) in fsq.dims.iter().enumerate() {
                let bound = |z: f64| -> f64 {
                    let lm1 = (dim.level - 1) as f64;
                    match mode {
                        FsqMode::Default => {
                            (z + dim.shift as f64).tanh() * dim.half_l as f64
                                / dim.half_width as f64
                        }
                        FsqMode::Symmetric => 2.0 / lm1 * (lm1 * (z.tanh() + 1.0) / 2.0) - 1.0,
                        FsqMode::SymmetricHardClamp => {
                            2.0 / lm1 * (lm1 * (z.clamp(-1.0, 1.0) + 1.0) / 2.0) - 1.0
                        }
                    }
                };
                for i in -30..=30 {
                    let z = i as f64 * 0.1 + 0.013;
                    let h = 1e-5;
                    let fd = (bound(z + h) - bound(z - h)) / (2.0 * h);
                    let got = fsq.ste_grad_at(j, z as f32) as f64;
                    assert!(
                        (fd - got).abs() < 1e-4,
                        "{mode:?} dim {j} z {z}: {got} vs {fd}"
                    );
                }
            }
        }
    }
}
