//! Reading 2-D `.npy` arrays of floats: float16, bfloat16, float32 and
//! float64, either byte order, C or Fortran order, converted to row-major
//! f32. Headers are parsed by hand (format versions 1, 2 and 3) so that every
//! malformed or hostile file is an [`Error::Npy`] naming what is wrong,
//! never a panic or a huge allocation. [`write_npy`] writes f32 arrays.

use std::path::Path;

use half::{bf16, f16, slice::HalfFloatSliceExt};

use crate::error::{Error, Result};

/// The element types semid reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F16,
    Bf16,
    F32,
    F64,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F16 | Elem::Bf16 => 2,
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }
}

/// How 2-byte void elements (`'<V2'`) are read: numpy has no bfloat16, and
/// `np.save` of an `ml_dtypes.bfloat16` array writes them as `V2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Void2 {
    Refuse,
    Bf16,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Npy(what.to_string())
}

/// The value text of `'key':` in a header dict, up to the next top-level
/// comma or closing brace.
fn field<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let pat = format!("'{key}'");
    let at = header
        .find(&pat)
        .ok_or_else(|| bad(format!("header has no '{key}' entry")))?;
    let rest = header[at + pat.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| bad(format!("header entry '{key}' has no ':'")))?
        .trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Ok(rest[..i].trim()),
            _ => {}
        }
    }
    Err(bad(format!("header entry '{key}' is not terminated")))
}

/// Parses a whole `.npy` file into `(row-major f32 data, columns)`.
pub(crate) fn parse(bytes: &[u8], void2: Void2) -> Result<(Vec<f32>, usize)> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (magic \\x93NUMPY missing)"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("format version {v} (semid reads 1, 2, 3)"))),
    };
    let hend = hstart
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header"))?;
    let header =
        std::str::from_utf8(&bytes[hstart..hend]).map_err(|_| bad("header is not text"))?;

    let descr = field(header, "descr")?.trim_matches(|c| c == '\'' || c == '"');
    let (little, elem) = match descr {
        "<f2" | "=f2" => (true, Elem::F16),
        ">f2" => (false, Elem::F16),
        "<f4" | "=f4" => (true, Elem::F32),
        ">f4" => (false, Elem::F32),
        "<f8" | "=f8" => (true, Elem::F64),
        ">f8" => (false, Elem::F64),
        "bfloat16" | "<bfloat16" => (true, Elem::Bf16),
        "<V2" | "|V2" if void2 == Void2::Bf16 => (true, Elem::Bf16),
        "<V2" | "|V2" => {
            return Err(bad(
                "2-byte void elements ('V2'): np.save writes ml_dtypes.bfloat16 this way; \
                 read it with semid::npy::read_npy_bf16, or save float16/float32",
            ));
        }
        other => {
            return Err(bad(format!(
                "element type {other} (semid reads float16, bfloat16, float32, float64)"
            )));
        }
    };
    let fortran = match field(header, "fortran_order")? {
        "True" => true,
        "False" => false,
        o => return Err(bad(format!("fortran_order {o}"))),
    };
    let shape = field(header, "shape")?;
    let dims: Vec<usize> = shape
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("shape {shape}")))
        })
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad(format!(
            "shape {shape}: semid reads 2-D arrays (items × dimension)"
        )));
    };
    if cols == 0 {
        return Err(bad(format!("shape {shape}: rows of 0 values")));
    }
    let count = rows
        .checked_mul(cols)
        .ok_or_else(|| bad(format!("shape {shape} overflows")))?;
    let body = &bytes[hend..];
    let want = count
        .checked_mul(elem.size())
        .ok_or_else(|| bad(format!("shape {shape} overflows")))?;
    if body.len() != want {
        return Err(bad(format!(
            "data holds {} bytes, shape {shape} of {descr} needs {want} (truncated or padded file)",
            body.len()
        )));
    }

    let mut out = vec![0f32; count];
    let chunks = body.chunks_exact(elem.size());
    match elem {
        Elem::F16 | Elem::Bf16 => {
            let bits: Vec<u16> = chunks
                .map(|c| {
                    let b = [c[0], c[1]];
                    if little {
                        u16::from_le_bytes(b)
                    } else {
                        u16::from_be_bytes(b)
                    }
                })
                .collect();
            if elem == Elem::F16 {
                // F16C at run time where the CPU has it.
                let h: Vec<f16> = bits.into_iter().map(f16::from_bits).collect();
                h.convert_to_f32_slice(&mut out);
            } else {
                for (o, b) in out.iter_mut().zip(bits) {
                    *o = bf16::from_bits(b).to_f32();
                }
            }
        }
        Elem::F32 => {
            for (o, c) in out.iter_mut().zip(chunks) {
                let b = [c[0], c[1], c[2], c[3]];
                *o = if little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
            }
        }
        Elem::F64 => {
            for (o, c) in out.iter_mut().zip(chunks) {
                let b: [u8; 8] = c.try_into().expect("8 bytes");
                *o = if little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                } as f32;
            }
        }
    }
    if fortran && rows > 1 && cols > 1 {
        let mut t = vec![0f32; count];
        for c in 0..cols {
            for r in 0..rows {
                t[r * cols + c] = out[c * rows + r];
            }
        }
        out = t;
    }
    Ok((out, cols))
}

/// Reads a 2-D `.npy` file of float16, bfloat16 (descr `'bfloat16'`),
/// float32 or float64, in either byte order and C or Fortran order, into a
/// row-major f32 buffer; returns `(data, dim)`.
///
/// Errors: [`Error::Io`] if the file cannot be read; [`Error::Npy`] naming
/// the problem for anything else (not `.npy`, not 2-D, another element type,
/// truncated data). A 2-byte void array (`'<V2'`, what `np.save` writes for
/// `ml_dtypes.bfloat16`) is refused here: read it with [`read_npy_bf16`].
/// Values are not checked for NaN/Inf here; the quantizers do that.
pub fn read_npy(path: impl AsRef<Path>) -> Result<(Vec<f32>, usize)> {
    read_npy_as(path.as_ref(), Void2::Refuse)
}

/// [`read_npy`] that also reads 2-byte void elements (`'<V2'`) as bfloat16,
/// for arrays saved from `ml_dtypes.bfloat16` with `np.save`.
pub fn read_npy_bf16(path: impl AsRef<Path>) -> Result<(Vec<f32>, usize)> {
    read_npy_as(path.as_ref(), Void2::Bf16)
}

fn read_npy_as(path: &Path, void2: Void2) -> Result<(Vec<f32>, usize)> {
    let bytes = std::fs::read(path).map_err(crate::error::io_at(path))?;
    parse(&bytes, void2).map_err(|e| match e {
        Error::Npy(m) => Error::Npy(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Writes a row-major `n × dim` f32 buffer as a 2-D `.npy` file.
pub fn write_npy(path: impl AsRef<Path>, data: &[f32], dim: usize) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(Error::Shape {
            what: "data length (multiple of dim)",
            expected: data.len().div_ceil(dim.max(1)) * dim.max(1),
            got: data.len(),
        });
    }
    let a = ndarray::ArrayView2::from_shape((data.len() / dim, dim), data)
        .map_err(|e| Error::Npy(e.to_string()))?;
    let mut bytes = Vec::new();
    a.write_npy(&mut bytes)
        .map_err(|e| Error::Npy(e.to_string()))?;
    crate::format::write_atomic(path.as_ref(), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            { if fortran { "True" } else { "False" } }
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn every_float_type_and_order() {
        let vals = [1.0f32, -2.5, 0.25, 3.0, 0.0, -0.125];
        let f2: Vec<u8> = vals
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf: Vec<u8> = vals
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect();
        let f4be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let f8: Vec<u8> = vals
            .iter()
            .flat_map(|v| (*v as f64).to_le_bytes())
            .collect();
        for (descr, body) in [
            ("<f2", &f2),
            ("bfloat16", &bf),
            (">f4", &f4be),
            ("<f8", &f8),
        ] {
            let (v, d) = parse(&file(descr, false, "(2, 3)", body), Void2::Refuse).unwrap();
            assert_eq!((v.as_slice(), d), (&vals[..], 3), "{descr}");
        }
        let (v, _) = parse(&file("<V2", false, "(2, 3)", &bf), Void2::Bf16).unwrap();
        assert_eq!(v, vals);
        assert!(parse(&file("<V2", false, "(2, 3)", &bf), Void2::Refuse).is_err());
        // Fortran order: the body is column-major.
        let (v, d) = parse(&file("<f8", true, "(3, 2)", &f8), Void2::Refuse).unwrap();
        assert_eq!(d, 2);
        assert_eq!(v, [1.0, 3.0, -2.5, 0.0, 0.25, -0.125]);
    }

    #[test]
    fn malformed_files_are_errors() {
        let body = [0u8; 24];
        let ok = file("<f4", false, "(2, 3)", &body);
        assert!(parse(&ok, Void2::Refuse).is_ok());
        for cut in 0..ok.len() {
            assert!(parse(&ok[..cut], Void2::Refuse).is_err(), "cut {cut}");
        }
        for bad in [
            file("<i4", false, "(2, 3)", &body),
            file("<f4", false, "(6,)", &body),
            file("<f4", false, "(1, 2, 3)", &body),
            file("<f4", false, "(2, x)", &body),
            file("<f4", false, "(2, 0)", &[]),
            file("<f4", false, "(18446744073709551615, 2)", &body),
            file("<f4", false, "(2, 4)", &body),
        ] {
            assert!(matches!(parse(&bad, Void2::Refuse), Err(Error::Npy(_))));
        }
    }
}
