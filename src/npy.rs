//! Reading 2-D `.npy` arrays of floats: float16, bfloat16, float32 and
//! float64, either byte order, C or Fortran order, converted to row-major
//! f32. Headers are parsed by hand (format versions 1, 2 and 3) so that every
//! malformed or hostile file is an [`Error::Npy`] naming what is wrong,
//! never a panic or a huge allocation. [`NpyReader`] reads a block of rows
//! at a time, in bounded memory. [`write_npy`] writes f32 arrays.

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

    fn name(self) -> &'static str {
        match self {
            Elem::F16 => "float16",
            Elem::Bf16 => "bfloat16",
            Elem::F32 => "float32",
            Elem::F64 => "float64",
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

/// What a `.npy` header says about the data that follows it.
#[derive(Clone, Copy, Debug)]
struct Header {
    elem: Elem,
    little: bool,
    fortran: bool,
    rows: usize,
    cols: usize,
    /// Byte offset of the data.
    data_start: usize,
}

impl Header {
    /// Bytes of data the shape needs.
    fn data_len(&self) -> usize {
        // Checked in `parse_header`.
        self.rows * self.cols * self.elem.size()
    }
}

/// Bytes needed to know the header's length (magic, version, length).
const PREAMBLE: usize = 12;

/// The header's end offset from the first bytes of a file (at least 10,
/// or [`PREAMBLE`] for versions 2 and 3).
fn header_end(bytes: &[u8]) -> Result<usize> {
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
    hstart
        .checked_add(hlen)
        .ok_or_else(|| bad("truncated header"))
}

/// Parses the header at the start of `bytes` (which must hold all of it).
fn parse_header(bytes: &[u8], void2: Void2) -> Result<Header> {
    let hend = header_end(bytes)?;
    if hend > bytes.len() {
        return Err(bad("truncated header"));
    }
    let hstart = if bytes[6] == 1 { 10 } else { 12 };
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
    rows.checked_mul(cols)
        .and_then(|c| c.checked_mul(elem.size()))
        .ok_or_else(|| bad(format!("shape {shape} overflows")))?;
    Ok(Header {
        elem,
        little,
        fortran,
        rows,
        cols,
        data_start: hend,
    })
}

/// The error for a data section of `got` bytes where `h` needs another size.
fn wrong_length(h: &Header, got: u64) -> Error {
    bad(format!(
        "data holds {got} bytes, shape ({}, {}) of {} needs {} (truncated or padded file)",
        h.rows,
        h.cols,
        h.elem.name(),
        h.data_len()
    ))
}

/// Converts raw elements to f32, `out.len()` of them from `body`.
fn convert(body: &[u8], elem: Elem, little: bool, out: &mut [f32]) {
    let chunks = body.chunks_exact(elem.size());
    match elem {
        Elem::F16 | Elem::Bf16 => {
            let bits = chunks.map(|c| {
                let b = [c[0], c[1]];
                if little {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                }
            });
            if elem == Elem::F16 {
                // F16C at run time where the CPU has it, through a small
                // buffer that stays in cache (no allocation per block).
                const STEP: usize = 1024;
                let mut h = [f16::ZERO; STEP];
                let mut bits = bits;
                for o in out.chunks_mut(STEP) {
                    let h = &mut h[..o.len()];
                    for (v, b) in h.iter_mut().zip(&mut bits) {
                        *v = f16::from_bits(b);
                    }
                    h.convert_to_f32_slice(o);
                }
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
}

/// Row-major from column-major.
fn transpose(col_major: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; col_major.len()];
    for c in 0..cols {
        for r in 0..rows {
            t[r * cols + c] = col_major[c * rows + r];
        }
    }
    t
}

/// Parses a whole `.npy` file into `(row-major f32 data, columns)`.
pub(crate) fn parse(bytes: &[u8], void2: Void2) -> Result<(Vec<f32>, usize)> {
    let h = parse_header(bytes, void2)?;
    let body = &bytes[h.data_start..];
    if body.len() != h.data_len() {
        return Err(wrong_length(&h, body.len() as u64));
    }
    let mut out = vec![0f32; h.rows * h.cols];
    convert(body, h.elem, h.little, &mut out);
    if h.fortran && h.rows > 1 && h.cols > 1 {
        out = transpose(&out, h.rows, h.cols);
    }
    Ok((out, h.cols))
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
    parse(&bytes, void2).map_err(naming(path))
}

/// Puts the file's path in front of an [`Error::Npy`] message.
fn naming(path: &Path) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Npy(m) => Error::Npy(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// A 2-D `.npy` file read a block of rows at a time, so that memory stays
/// bounded by the block whatever the file's size: what `semid encode`
/// streams through.
///
/// [`NpyReader::open`] reads and checks the header and the file's length
/// (the same checks as [`read_npy`]); [`NpyReader::read_rows`] then converts
/// the next rows to f32. A Fortran-order file is read and transposed whole
/// at open (numpy writes C order unless asked otherwise).
///
/// ```
/// # let path = std::env::temp_dir().join("semid-doc-npyreader.npy");
/// semid::npy::write_npy(&path, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2)?;
/// let mut r = semid::npy::NpyReader::open(&path)?;
/// assert_eq!((r.rows(), r.dim()), (3, 2));
/// let mut block = Vec::new();
/// assert_eq!(r.read_rows(2, &mut block)?, 2);
/// assert_eq!(block, [1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(r.read_rows(2, &mut block)?, 1);
/// assert_eq!(r.read_rows(2, &mut block)?, 0);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Debug)]
pub struct NpyReader {
    path: std::path::PathBuf,
    file: std::io::BufReader<std::fs::File>,
    header: Header,
    /// Rows handed out so far.
    next: usize,
    /// A Fortran-order file, row-major.
    whole: Option<Vec<f32>>,
    /// Raw bytes of one block.
    raw: Vec<u8>,
}

impl NpyReader {
    /// Opens `path` and checks its header and length; bfloat16 saved as
    /// 2-byte voids is refused, as by [`read_npy`].
    ///
    /// Errors: [`Error::Io`] naming the file; [`Error::Npy`] naming the
    /// file and what is wrong with it.
    pub fn open(path: impl AsRef<Path>) -> Result<NpyReader> {
        NpyReader::open_as(path.as_ref(), Void2::Refuse)
    }

    /// [`NpyReader::open`] that reads 2-byte voids as bfloat16, as
    /// [`read_npy_bf16`].
    pub fn open_bf16(path: impl AsRef<Path>) -> Result<NpyReader> {
        NpyReader::open_as(path.as_ref(), Void2::Bf16)
    }

    fn open_as(path: &Path, void2: Void2) -> Result<NpyReader> {
        use std::io::{Read, Seek, SeekFrom};
        let io = crate::error::io_at(path);
        let f = std::fs::File::open(path).map_err(&io)?;
        let meta = f.metadata().map_err(&io)?;
        if meta.is_dir() {
            return Err(bad(format!(
                "{} is a directory; give a .npy file",
                path.display()
            )));
        }
        let len = meta.len();
        let mut file = std::io::BufReader::new(f);
        let mut head = vec![0u8; (len as usize).min(PREAMBLE)];
        file.read_exact(&mut head).map_err(&io)?;
        let hend = header_end(&head).map_err(naming(path))?;
        if hend as u64 > len {
            return Err(naming(path)(bad("truncated header")));
        }
        head.resize(hend, 0);
        file.read_exact(&mut head[PREAMBLE.min(hend)..])
            .map_err(&io)?;
        let header = parse_header(&head, void2).map_err(naming(path))?;
        let data = len - hend as u64;
        if data != header.data_len() as u64 {
            return Err(naming(path)(wrong_length(&header, data)));
        }
        file.seek(SeekFrom::Start(hend as u64)).map_err(&io)?;
        let mut r = NpyReader {
            path: path.to_path_buf(),
            file,
            header,
            next: 0,
            whole: None,
            raw: Vec::new(),
        };
        if header.fortran && header.rows > 1 && header.cols > 1 {
            let mut all = Vec::new();
            r.read_raw(header.rows, &mut all)?;
            r.whole = Some(transpose(&all, header.rows, header.cols));
            r.next = 0;
        }
        Ok(r)
    }

    /// Rows in the file.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.header.rows
    }

    /// Values per row.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.header.cols
    }

    /// The element type as numpy names it (`"float16"`, …).
    #[must_use]
    pub fn dtype(&self) -> &'static str {
        self.header.elem.name()
    }

    /// Rows not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.header.rows - self.next
    }

    /// Replaces `out` with the next `min(max_rows, remaining())` rows as
    /// row-major f32 and returns how many; 0 at the end of the file.
    ///
    /// Errors: [`Error::Io`] naming the file (it changed or vanished since
    /// [`NpyReader::open`]).
    pub fn read_rows(&mut self, max_rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        let n = max_rows.min(self.remaining());
        let d = self.header.cols;
        if let Some(all) = &self.whole {
            out.clear();
            out.extend_from_slice(&all[self.next * d..(self.next + n) * d]);
            self.next += n;
            return Ok(n);
        }
        self.read_raw(n, out)?;
        Ok(n)
    }

    /// Converts the next `n` stored rows into `out` (stored order).
    fn read_raw(&mut self, n: usize, out: &mut Vec<f32>) -> Result<()> {
        use std::io::Read;
        let count = n * self.header.cols;
        self.raw.resize(count * self.header.elem.size(), 0);
        self.file
            .read_exact(&mut self.raw)
            .map_err(crate::error::io_at(&self.path))?;
        // Every value is overwritten: a reused buffer of the same size is
        // not cleared first.
        out.resize(count, 0.0);
        convert(&self.raw, self.header.elem, self.header.little, out);
        self.next += n;
        Ok(())
    }
}

/// The bytes of a `.npy` (version 1) header for a C-order array of
/// `descr` elements (numpy's type string: `"<f4"`, `"<u2"`, …) and `shape`,
/// padded as numpy pads it; the data follows it. For writers that stream
/// their rows (`semid encode` writes its `uint16` codes this way).
///
/// ```
/// let h = semid::npy::header("<u2", &[1000, 3]);
/// assert_eq!(h.len() % 64, 0);
/// assert!(String::from_utf8_lossy(&h).contains("'shape': (1000, 3)"));
/// ```
#[must_use]
pub fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    header_text(descr, false, &shape)
}

/// [`header`] with the order and the shape as text (any text, for tests of
/// malformed files).
fn header_text(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b
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
    crate::format::write_atomic(path.as_ref(), &[std::borrow::Cow::Borrowed(&bytes[..])])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut b = header_text(descr, fortran, shape);
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

    /// `NpyReader` gives `parse`'s rows, in blocks of any size, for every
    /// element type and both orders; refuses at open what `parse` refuses.
    #[test]
    fn streaming_equals_whole_reads() {
        let dir = std::env::temp_dir().join(format!("semid-npy-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vals: Vec<f32> = (0..35).map(|i| i as f32 * 0.5 - 3.0).collect();
        let f4: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f2: Vec<u8> = vals
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_be_bytes())
            .collect();
        let f8: Vec<u8> = vals
            .iter()
            .flat_map(|v| (*v as f64).to_le_bytes())
            .collect();
        for (i, bytes) in [
            file("<f4", false, "(7, 5)", &f4),
            file(">f2", false, "(7, 5)", &f2),
            file("<f8", true, "(7, 5)", &f8),
        ]
        .iter()
        .enumerate()
        {
            let path = dir.join(format!("{i}.npy"));
            std::fs::write(&path, bytes).unwrap();
            let (whole, d) = parse(bytes, Void2::Refuse).unwrap();
            for block in [1, 3, 7, 100] {
                let mut r = NpyReader::open(&path).unwrap();
                assert_eq!((r.rows(), r.dim()), (7, d));
                let (mut got, mut buf) = (Vec::new(), Vec::new());
                while r.read_rows(block, &mut buf).unwrap() > 0 {
                    got.extend_from_slice(&buf);
                }
                assert_eq!(got, whole, "file {i}, block {block}");
            }
            // Every truncation is refused at open, naming the file.
            for cut in [0, 5, 11, bytes.len() - 1] {
                std::fs::write(&path, &bytes[..cut]).unwrap();
                match NpyReader::open(&path) {
                    Err(Error::Npy(m)) => assert!(m.contains(&path.display().to_string()), "{m}"),
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
        }
        assert!(matches!(NpyReader::open(&dir), Err(Error::Npy(_))));
        std::fs::remove_dir_all(&dir).ok();
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
