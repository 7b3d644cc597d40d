//! Input views: row-major `n × d` embeddings in f32, f16 or bf16, and codes.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use crate::error::{Error, Result};

/// A borrowed row-major `n × d` matrix of embeddings.
///
/// Accepts `&[f32]` + `dim`, f16 or bf16 slices (as PyTorch exports them), and
/// ndarray views in standard (C) layout. Half-precision data is converted to
/// f32 block by block inside fit and encode, so a large f16 matrix is never
/// copied whole.
///
/// ```
/// use semid::Embeddings;
/// let data = vec![0.0f32; 6];
/// let x = Embeddings::new(&data, 3)?;
/// assert_eq!((x.rows(), x.dim()), (2, 3));
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Embeddings<'a> {
    elems: Elems<'a>,
    rows: usize,
    dim: usize,
}

#[derive(Clone, Copy, Debug)]
enum Elems<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
}

/// Element type of an [`Embeddings`] view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    Bf16,
}

fn shape_of(len: usize, dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::Empty {
            what: "embedding dimension (d = 0)",
        });
    }
    if len == 0 {
        return Err(Error::Empty { what: "embeddings" });
    }
    if !len.is_multiple_of(dim) {
        return Err(Error::Shape {
            what: "embedding slice length (must be a multiple of dim)",
            expected: len.div_ceil(dim) * dim,
            got: len,
        });
    }
    Ok(len / dim)
}

impl<'a> Embeddings<'a> {
    /// Views `data` as rows of `dim` f32 values.
    ///
    /// Errors: `dim == 0` or empty data ([`Error::Empty`]), a length that is
    /// not a multiple of `dim` ([`Error::Shape`]). Finiteness is checked by
    /// the functions that read the data.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        let rows = shape_of(data.len(), dim)?;
        Ok(Embeddings {
            elems: Elems::F32(data),
            rows,
            dim,
        })
    }

    /// Views `data` as rows of `dim` f16 values.
    pub fn from_f16(data: &'a [f16], dim: usize) -> Result<Self> {
        let rows = shape_of(data.len(), dim)?;
        Ok(Embeddings {
            elems: Elems::F16(data),
            rows,
            dim,
        })
    }

    /// Views `data` as rows of `dim` bf16 values.
    pub fn from_bf16(data: &'a [bf16], dim: usize) -> Result<Self> {
        let rows = shape_of(data.len(), dim)?;
        Ok(Embeddings {
            elems: Elems::Bf16(data),
            rows,
            dim,
        })
    }

    /// Number of rows `n`.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row length `d`.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        match self.elems {
            Elems::F32(_) => DType::F32,
            Elems::F16(_) => DType::F16,
            Elems::Bf16(_) => DType::Bf16,
        }
    }

    /// The f32 slice when the view holds f32 data.
    #[must_use]
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        match self.elems {
            Elems::F32(s) => Some(s),
            _ => None,
        }
    }

    /// Rows `start..end` as f32: borrowed for f32 data, converted into `buf`
    /// otherwise. Checks every value is finite.
    pub(crate) fn block<'b>(
        &'b self,
        start: usize,
        end: usize,
        buf: &'b mut Vec<f32>,
    ) -> Result<&'b [f32]> {
        let (lo, hi) = (start * self.dim, end * self.dim);
        let out: &[f32] = match self.elems {
            Elems::F32(s) => &s[lo..hi],
            Elems::F16(s) => {
                buf.resize(hi - lo, 0.0);
                s[lo..hi].convert_to_f32_slice(buf);
                buf
            }
            Elems::Bf16(s) => {
                buf.resize(hi - lo, 0.0);
                s[lo..hi].convert_to_f32_slice(buf);
                buf
            }
        };
        check_finite("embeddings", out, self.dim, start)?;
        Ok(out)
    }

    /// Checks every value is finite, in place (half-precision values are
    /// checked on their bits, without conversion). Cost: one pass, ~10 ms
    /// for 200k × 256 f32.
    pub(crate) fn check_all_finite(&self) -> Result<()> {
        fn first_bad<T: Copy>(s: &[T], bad: impl Fn(T) -> bool) -> Option<usize> {
            for (c, chunk) in s.chunks(1024).enumerate() {
                let mut any = false;
                for &v in chunk {
                    any |= bad(v);
                }
                if any {
                    return chunk.iter().position(|&v| bad(v)).map(|p| c * 1024 + p);
                }
            }
            None
        }
        let off = match self.elems {
            Elems::F32(s) => first_bad(s, |v: f32| v.to_bits() & 0x7f80_0000 == 0x7f80_0000),
            Elems::F16(s) => first_bad(s, |v: f16| v.to_bits() & 0x7c00 == 0x7c00),
            Elems::Bf16(s) => first_bad(s, |v: bf16| v.to_bits() & 0x7f80 == 0x7f80),
        };
        match off {
            Some(o) => Err(Error::NonFinite {
                what: "embeddings",
                row: o / self.dim,
                col: o % self.dim,
            }),
            None => Ok(()),
        }
    }

    /// Copies the rows listed in `idx` into a new row-major f32 buffer.
    /// Does not check finiteness: callers run [`Embeddings::check_all_finite`]
    /// first.
    pub(crate) fn gather(&self, idx: &[usize]) -> Vec<f32> {
        let d = self.dim;
        let mut out = vec![0.0f32; idx.len() * d];
        for (o, &i) in out.chunks_exact_mut(d).zip(idx) {
            let (lo, hi) = (i * d, (i + 1) * d);
            match self.elems {
                Elems::F32(s) => o.copy_from_slice(&s[lo..hi]),
                Elems::F16(s) => s[lo..hi].convert_to_f32_slice(o),
                Elems::Bf16(s) => s[lo..hi].convert_to_f32_slice(o),
            }
        }
        out
    }

    /// Rows `start..end` as a new view, without copying.
    ///
    /// Errors: [`Error::Shape`] if `end > rows()` or `start > end`.
    pub fn slice(&self, start: usize, end: usize) -> Result<Embeddings<'a>> {
        if end > self.rows {
            return Err(Error::Shape {
                what: "row range end (at most the row count)",
                expected: self.rows,
                got: end,
            });
        }
        if start > end {
            return Err(Error::Shape {
                what: "row range start (at most its end)",
                expected: end,
                got: start,
            });
        }
        Ok(self.slice_rows(start, end))
    }

    /// Rows `start..end` (`start <= end <= rows`) as a new view.
    pub(crate) fn slice_rows(&self, start: usize, end: usize) -> Embeddings<'a> {
        let (lo, hi) = (start * self.dim, end * self.dim);
        let elems = match self.elems {
            Elems::F32(s) => Elems::F32(&s[lo..hi]),
            Elems::F16(s) => Elems::F16(&s[lo..hi]),
            Elems::Bf16(s) => Elems::Bf16(&s[lo..hi]),
        };
        Embeddings {
            elems,
            rows: end - start,
            dim: self.dim,
        }
    }

    /// Checks that the view has `dim` columns.
    pub(crate) fn expect_dim(&self, dim: usize) -> Result<()> {
        if self.dim != dim {
            return Err(Error::Shape {
                what: "data dimension (model was fitted on another d)",
                expected: dim,
                got: self.dim,
            });
        }
        Ok(())
    }
}

/// Rows known to be finite: checked once where they entered the crate (or
/// built from rows that were), so inner layers read them without checking
/// again. Only [`FiniteRows::check`] makes one from user data.
#[derive(Clone, Debug)]
pub(crate) struct FiniteRows<'a> {
    data: std::borrow::Cow<'a, [f32]>,
    dim: usize,
}

impl<'a> FiniteRows<'a> {
    /// `x`'s rows listed in `idx` (every row when `idx` is `None`: then f32
    /// data is borrowed, not copied), after checking every row of `x` (so
    /// the error does not depend on which rows are kept).
    pub(crate) fn check(x: Embeddings<'a>, idx: Option<&[usize]>) -> Result<FiniteRows<'a>> {
        x.check_all_finite()?;
        let data = match (idx, x.as_f32()) {
            (None, Some(s)) => std::borrow::Cow::Borrowed(s),
            (None, None) => {
                let all: Vec<usize> = (0..x.rows()).collect();
                std::borrow::Cow::Owned(x.gather(&all))
            }
            (Some(idx), _) => std::borrow::Cow::Owned(x.gather(idx)),
        };
        Ok(FiniteRows { data, dim: x.dim() })
    }

    /// The rows, row-major.
    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// A view to read blocks from.
    pub(crate) fn view(&self) -> Finite<'_> {
        Finite {
            data: &self.data,
            dim: self.dim,
        }
    }
}

/// A borrowed view of [`FiniteRows`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finite<'a> {
    data: &'a [f32],
    dim: usize,
}

/// Where an encoder reads blocks of rows: [`Embeddings`] (f16/bf16
/// converted, every block checked finite) or [`Finite`] rows (checked
/// already: read as they are).
pub(crate) trait RowBlocks: Copy + Sync {
    /// Number of rows.
    fn n_rows(&self) -> usize;
    /// Rows `start..end` as f32 (converted into `buf` if needed).
    fn rows_f32<'b>(&'b self, start: usize, end: usize, buf: &'b mut Vec<f32>)
    -> Result<&'b [f32]>;
}

impl RowBlocks for Embeddings<'_> {
    fn n_rows(&self) -> usize {
        self.rows()
    }
    fn rows_f32<'b>(
        &'b self,
        start: usize,
        end: usize,
        buf: &'b mut Vec<f32>,
    ) -> Result<&'b [f32]> {
        self.block(start, end, buf)
    }
}

impl RowBlocks for Finite<'_> {
    fn n_rows(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    fn rows_f32<'b>(&'b self, start: usize, end: usize, _: &'b mut Vec<f32>) -> Result<&'b [f32]> {
        Ok(&self.data[start * self.dim..end * self.dim])
    }
}

/// Errors with the first non-finite value of `x` (rows of `dim`, the first
/// one being row `first_row`).
pub(crate) fn check_finite(
    what: &'static str,
    x: &[f32],
    dim: usize,
    first_row: usize,
) -> Result<()> {
    const EXP: u32 = 0x7f80_0000;
    for (c, chunk) in x.chunks(1024).enumerate() {
        let mut bad = false;
        for &v in chunk {
            bad |= v.to_bits() & EXP == EXP;
        }
        if bad {
            let off = chunk.iter().position(|v| !v.is_finite()).unwrap_or(0) + c * 1024;
            return Err(Error::NonFinite {
                what,
                row: first_row + off / dim,
                col: off % dim,
            });
        }
    }
    Ok(())
}

macro_rules! from_ndarray {
    ($t:ty, $ctor:ident) => {
        impl<'a> TryFrom<ndarray::ArrayView2<'a, $t>> for Embeddings<'a> {
            type Error = Error;
            /// Views a standard-layout (C-contiguous) ndarray; other layouts
            /// return [`Error::Layout`].
            fn try_from(a: ndarray::ArrayView2<'a, $t>) -> Result<Self> {
                let dim = a.ncols();
                match a.to_slice() {
                    Some(s) => Embeddings::$ctor(s, dim),
                    None => Err(Error::Layout {
                        reason: "the ndarray view is not in standard (row-major, contiguous) layout; call `.as_standard_layout()` first",
                    }),
                }
            }
        }
    };
}
from_ndarray!(f32, new);
from_ndarray!(f16, from_f16);
from_ndarray!(bf16, from_bf16);

/// Semantic codes: `n × L` tokens, row-major, one `u16` token per level.
///
/// ```
/// use semid::Codes;
/// let codes = Codes::new(vec![1, 2, 3, 4, 5, 6], 3)?;
/// assert_eq!(codes.rows(), 2);
/// assert_eq!(codes.row(1), &[4, 5, 6]);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "CodesRepr"))]
pub struct Codes {
    tokens: Vec<u16>,
    levels: usize,
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct CodesRepr {
    tokens: Vec<u16>,
    levels: usize,
}

#[cfg(feature = "serde")]
impl TryFrom<CodesRepr> for Codes {
    type Error = Error;
    fn try_from(r: CodesRepr) -> Result<Self> {
        Codes::new(r.tokens, r.levels)
    }
}

impl Codes {
    /// Wraps row-major tokens with `levels` tokens per row.
    ///
    /// Errors: `levels == 0` or a length that is not a multiple of `levels`.
    pub fn new(tokens: Vec<u16>, levels: usize) -> Result<Self> {
        if levels == 0 {
            return Err(Error::Empty {
                what: "code levels (L = 0)",
            });
        }
        if !tokens.len().is_multiple_of(levels) {
            return Err(Error::Shape {
                what: "code token count (must be a multiple of levels)",
                expected: tokens.len().div_ceil(levels) * levels,
                got: tokens.len(),
            });
        }
        Ok(Codes { tokens, levels })
    }

    /// Number of rows (items).
    #[must_use]
    pub fn rows(&self) -> usize {
        self.tokens.len() / self.levels
    }

    /// Tokens per row `L`.
    #[must_use]
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// Row `i`'s tokens.
    ///
    /// # Panics
    /// If `i >= rows()`, like slice indexing.
    #[must_use]
    pub fn row(&self, i: usize) -> &[u16] {
        &self.tokens[i * self.levels..(i + 1) * self.levels]
    }

    /// All tokens, row-major.
    #[must_use]
    pub fn as_slice(&self) -> &[u16] {
        &self.tokens
    }

    /// Consumes the codes, returning the row-major tokens.
    #[must_use]
    pub fn into_vec(self) -> Vec<u16> {
        self.tokens
    }

    /// Iterates over rows.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u16]> + '_ {
        self.tokens.chunks_exact(self.levels)
    }

    /// Checks every token against its level's codebook size.
    pub fn check_tokens(&self, codebook_sizes: &[usize]) -> Result<()> {
        check_tokens(&self.tokens, self.levels, codebook_sizes)
    }
}

/// The most tokens a position can have: tokens are `u16`.
pub const MAX_VOCAB: usize = 1 << 16;

/// Checks that every size in `sizes` (codebook sizes, vocabularies) is in
/// `min..=MAX_VOCAB`; the error names `field` and the offending value.
pub(crate) fn check_vocab(field: &'static str, sizes: &[usize], min: usize) -> Result<()> {
    match sizes.iter().find(|&&v| !(min..=MAX_VOCAB).contains(&v)) {
        None => Ok(()),
        Some(&v) => Err(crate::error::invalid(
            field,
            format!("holds {v}; each must be in {min}..=65536 (tokens are u16)"),
        )),
    }
}

/// Checks a per-level size list: one entry per level, each in
/// `min..=65536` (errors name `field`).
pub(crate) fn check_level_sizes(
    field: &'static str,
    sizes: &[usize],
    levels: usize,
    min: usize,
) -> Result<()> {
    if sizes.len() != levels {
        return Err(crate::error::invalid(
            field,
            format!(
                "has {} entries but levels is {levels}; give one size per level",
                sizes.len()
            ),
        ));
    }
    check_vocab(field, sizes, min)
}

/// Checks `tokens` (rows of `levels`) against `codebook_sizes`.
pub(crate) fn check_tokens(tokens: &[u16], levels: usize, codebook_sizes: &[usize]) -> Result<()> {
    if levels != codebook_sizes.len() {
        return Err(Error::Shape {
            what: "code levels (codes vs. model)",
            expected: codebook_sizes.len(),
            got: levels,
        });
    }
    for (row, r) in tokens.chunks_exact(levels).enumerate() {
        for (level, (&t, &k)) in r.iter().zip(codebook_sizes).enumerate() {
            if t as usize >= k {
                return Err(Error::TokenOutOfRange {
                    row,
                    level,
                    token: t,
                    codebook_size: k,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row and column of a `NonFinite` error.
    fn non_finite_at<T>(r: Result<T>) -> Option<(usize, usize)> {
        match r {
            Err(Error::NonFinite { row, col, .. }) => Some((row, col)),
            _ => None,
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(Embeddings::new(&[], 3), Err(Error::Empty { .. })));
        assert!(matches!(
            Embeddings::new(&[1.0], 0),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            Embeddings::new(&[1.0; 5], 2),
            Err(Error::Shape { got: 5, .. })
        ));
        assert!(Codes::new(vec![1, 2, 3], 2).is_err());
        assert!(Codes::new(vec![1, 2], 0).is_err());
    }

    #[test]
    fn nonfinite_reports_row_and_col() {
        let mut v = vec![0.5f32; 4 * 3000];
        v[2 * 3000 + 17] = f32::NAN;
        let x = Embeddings::new(&v, 3000).unwrap();
        let mut buf = Vec::new();
        match x.block(0, 4, &mut buf) {
            Err(Error::NonFinite { row, col, .. }) => assert_eq!((row, col), (2, 17)),
            other => panic!("{other:?}"),
        }
        let h: Vec<f16> = v.iter().map(|&f| f16::from_f32(f)).collect();
        let mut h2 = h.clone();
        h2[2 * 3000 + 17] = f16::INFINITY;
        let x = Embeddings::from_f16(&h2, 3000).unwrap();
        assert_eq!(non_finite_at(x.block(1, 4, &mut buf)), Some((2, 17)));
        assert_eq!(non_finite_at(x.check_all_finite()), Some((2, 17)));
    }

    #[test]
    fn check_all_finite_reads_every_dtype_in_place() {
        let mut v = vec![0.5f32; 4 * 300];
        assert!(Embeddings::new(&v, 300).unwrap().check_all_finite().is_ok());
        v[2 * 300 + 17] = f32::NEG_INFINITY;
        let b: Vec<bf16> = v.iter().map(|&f| bf16::from_f32(f)).collect();
        let h: Vec<f16> = v.iter().map(|&f| f16::from_f32(f)).collect();
        for x in [
            Embeddings::new(&v, 300).unwrap(),
            Embeddings::from_bf16(&b, 300).unwrap(),
            Embeddings::from_f16(&h, 300).unwrap(),
        ] {
            assert_eq!(non_finite_at(x.check_all_finite()), Some((2, 17)));
        }
    }

    #[test]
    fn ndarray_views() {
        let a = ndarray::Array2::<f32>::zeros((4, 3));
        let x = Embeddings::try_from(a.view()).unwrap();
        assert_eq!((x.rows(), x.dim()), (4, 3));
        let t = a.t();
        assert!(matches!(Embeddings::try_from(t), Err(Error::Layout { .. })));
    }
}

#[cfg(all(test, feature = "serde"))]
mod serde_tests {
    use super::Codes;

    #[test]
    fn codes_deserialization_is_validated() {
        let cfg = bincode::config::standard();
        let c = Codes::new(vec![1, 2, 3, 4], 2).unwrap();
        let bytes = bincode::serde::encode_to_vec(&c, cfg).unwrap();
        let (back, _): (Codes, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, c);
        // Same tokens, levels = 3: 4 tokens are not a multiple of 3.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 3;
        assert!(bincode::serde::decode_from_slice::<Codes, _>(&bad, cfg).is_err());
    }
}
