//! Format version 3: a header, a checksummed directory, then the arrays
//! themselves, each aligned to 64 bytes, so that a file can be searched
//! where it lies (a memory map) without decoding (docs/FORMAT.md).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 32 | the model-file header, version 3; its checksum is the directory's |
//! | 32 | 8 | directory length `D`, u64 LE |
//! | 40 | D | directory: bincode, as every payload; it ends with the section table |
//! | … | … | zero bytes up to the next multiple of 64 |
//! | | | sections, in table order, each at a multiple of 64, zero-padded between |
//!
//! Opening checks the header, the directory's checksum and every section's
//! place (inside the file, aligned, in order, not overlapping); a full
//! check also hashes every section and the padding, so every byte of the
//! file is covered.

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, FormatError, Result};
use crate::format::{
    DIR_AT, HEADER_LEN, LAYOUT_VERSION, MAGIC, ModelKind, check_header, decode_payload,
    encode_payload, fnv1a64, fnv1a64_words,
};
use crate::mapped::{Plain, Region, Shared, to_le_bytes};

/// Sections start at multiples of this many bytes (a cache line).
pub(crate) const ALIGN: usize = 64;

/// One array of a laid-out file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Section {
    /// Byte offset in the file (a multiple of [`ALIGN`]).
    offset: u64,
    /// Elements.
    len: u64,
    /// Bytes per element: 1, 2, 4 or 8.
    elem: u8,
    /// FNV-1a 64 of the section's bytes, taken 8 bytes at a time
    /// (`fnv1a64_words`).
    checksum: u64,
}

/// A directory: what the model stores (`body`), then the section table.
#[derive(Serialize, Deserialize)]
struct Directory<D> {
    body: D,
    sections: Vec<Section>,
}

/// Collects the arrays of a file to write.
#[derive(Default)]
pub(crate) struct SectionWriter<'a> {
    arrays: Vec<(Cow<'a, [u8]>, u8)>,
}

impl<'a> SectionWriter<'a> {
    /// Adds `v` as the next section; returns its number.
    pub(crate) fn push<T: Plain>(&mut self, v: &'a [T]) -> u32 {
        self.arrays.push((to_le_bytes(v), size_of::<T>() as u8));
        (self.arrays.len() - 1) as u32
    }

    /// The file, as pieces to write one after the other: header,
    /// directory (`body` and the section table), padding and sections.
    /// Sections are borrowed, not copied (on a little-endian host).
    pub(crate) fn finish<D: Serialize>(
        self,
        kind: ModelKind,
        body: D,
    ) -> Result<Vec<Cow<'a, [u8]>>> {
        let mut sections: Vec<Section> = self
            .arrays
            .iter()
            .map(|(b, elem)| Section {
                offset: 0,
                len: (b.len() / *elem as usize) as u64,
                elem: *elem,
                checksum: fnv1a64_words(b),
            })
            .collect();
        // Fixed-width integers: the directory's length does not depend on
        // the offsets, so measure it once, then place the sections.
        let mut dir = Directory { body, sections };
        let dir_len = encode_payload(&dir)?.len();
        let mut at = align(DIR_AT + dir_len);
        for (s, (b, _)) in dir.sections.iter_mut().zip(&self.arrays) {
            s.offset = at as u64;
            at = align(at + b.len());
        }
        let dir_bytes = encode_payload(&dir)?;
        debug_assert_eq!(dir_bytes.len(), dir_len);
        sections = dir.sections;
        let end = sections
            .last()
            .zip(self.arrays.last())
            .map_or(DIR_AT + dir_len, |(s, (b, _))| s.offset as usize + b.len());
        let mut covered = Vec::with_capacity(8 + dir_len);
        covered.extend_from_slice(&(dir_len as u64).to_le_bytes());
        covered.extend_from_slice(&dir_bytes);
        let mut head = Vec::with_capacity(HEADER_LEN);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
        head.extend_from_slice(&kind.tag().to_le_bytes());
        head.extend_from_slice(&((end - HEADER_LEN) as u64).to_le_bytes());
        head.extend_from_slice(&fnv1a64(&covered).to_le_bytes());
        let mut out: Vec<Cow<'a, [u8]>> = vec![Cow::Owned(head), Cow::Owned(covered)];
        let mut pos = DIR_AT + dir_len;
        for (s, (b, _)) in sections.iter().zip(self.arrays) {
            let pad = s.offset as usize - pos;
            if pad > 0 {
                out.push(Cow::Owned(vec![0; pad]));
            }
            pos = s.offset as usize + b.len();
            out.push(b);
        }
        Ok(out)
    }
}

fn align(at: usize) -> usize {
    at.div_ceil(ALIGN) * ALIGN
}

/// The sections of an opened file.
pub(crate) struct SectionReader {
    region: Arc<Region>,
    sections: Vec<Section>,
    /// Every section's checksum was checked when the file was opened.
    summed: bool,
}

/// Checks a section's checksum.
fn check_sum(s: &Section, bytes: &[u8]) -> Result<()> {
    let computed = fnv1a64_words(bytes);
    if computed != s.checksum {
        return Err(FormatError::Checksum {
            stored: s.checksum,
            computed,
        }
        .into());
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Format(FormatError::Invalid(msg.into()))
}

/// Checks the header of a version-3 file of `kind` and its directory
/// checksum, and every section's place; with `full`, also every section's
/// checksum and that the padding is zeros. Returns the directory's body
/// and the sections.
pub(crate) fn open<D: DeserializeOwned>(
    region: Arc<Region>,
    kind: ModelKind,
    full: bool,
) -> Result<(D, SectionReader)> {
    let bytes = region.bytes();
    let dir_len = check_header(bytes, kind)?;
    let covered = &bytes[HEADER_LEN..DIR_AT + dir_len];
    let dir: Directory<D> = decode_payload(&covered[8..])?;
    let mut pos = DIR_AT + dir_len;
    for (i, s) in dir.sections.iter().enumerate() {
        let start = usize::try_from(s.offset).ok();
        let size = usize::try_from(s.len)
            .ok()
            .and_then(|n| n.checked_mul(s.elem as usize));
        let (Some(start), Some(size)) = (start, size) else {
            return Err(bad(format!(
                "section {i} does not fit this machine's address space"
            )));
        };
        if !matches!(s.elem, 1 | 2 | 4 | 8) {
            return Err(bad(format!(
                "section {i}: element size {} (1, 2, 4 or 8)",
                s.elem
            )));
        }
        if start % ALIGN != 0 || start < pos || start - pos >= ALIGN {
            return Err(bad(format!(
                "section {i} at byte {start}: sections follow each other at multiples of {ALIGN}"
            )));
        }
        let Some(end) = start.checked_add(size).filter(|&e| e <= bytes.len()) else {
            return Err(FormatError::Truncated {
                expected: start as u64 + size as u64,
                got: bytes.len() as u64,
            }
            .into());
        };
        if full {
            if bytes[pos..start].iter().any(|&b| b != 0) {
                return Err(bad(format!("non-zero padding before section {i}")));
            }
            check_sum(s, &bytes[start..end])?;
        }
        pos = end;
    }
    if pos != bytes.len() {
        return Err(FormatError::TrailingBytes {
            extra: (bytes.len() - pos) as u64,
        }
        .into());
    }
    Ok((
        dir.body,
        SectionReader {
            region,
            sections: dir.sections,
            summed: full,
        },
    ))
}

impl SectionReader {
    /// [`SectionReader::get`], and the section's checksum checked (if the
    /// opening did not check them all): for the arrays that opening reads
    /// anyway.
    pub(crate) fn get_summed<T: Plain>(
        &self,
        i: u32,
        len: Option<usize>,
        what: &str,
    ) -> Result<Shared<T>> {
        let v = self.get(i, len, what)?;
        if !self.summed {
            check_sum(&self.sections[i as usize], &to_le_bytes(&v))?;
        }
        Ok(v)
    }

    /// Section `i` as `T`s; `len`: the element count it must have, if
    /// known.
    pub(crate) fn get<T: Plain>(
        &self,
        i: u32,
        len: Option<usize>,
        what: &str,
    ) -> Result<Shared<T>> {
        let s = self
            .sections
            .get(i as usize)
            .ok_or_else(|| bad(format!("{what}: no section {i}")))?;
        if s.elem as usize != size_of::<T>() {
            return Err(bad(format!(
                "{what}: section {i} holds {}-byte elements, not {}",
                s.elem,
                size_of::<T>()
            )));
        }
        // `open` checked that the section fits the file and the address
        // space.
        let n = s.len as usize;
        if let Some(want) = len
            && want != n
        {
            return Err(bad(format!(
                "{what}: section {i} holds {n} elements, not {want}"
            )));
        }
        Shared::from_region(&self.region, s.offset as usize, n)
            .ok_or_else(|| bad(format!("{what}: section {i} is out of place")))
    }
}
