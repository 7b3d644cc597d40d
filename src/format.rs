//! Versioned model files: the container every model is stored in.
//!
//! Every model file is a 32-byte header followed by a bincode payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"SEMIDMF\0"` |
//! | 8 | 4 | format version, u32 LE (this build reads 1 and 2, and 3 for a [`SemanticIndex`](crate::SemanticIndex); it writes 1 unless the model needs 2, and an index as 3) |
//! | 12 | 4 | model kind, u32 LE (see [`ModelKind`]) |
//! | 16 | 8 | payload length in bytes, u64 LE |
//! | 24 | 8 | FNV-1a 64 checksum of the payload, u64 LE |
//! | 32 | len | payload |
//!
//! `docs/FORMAT.md` gives each kind's payload. Loading checks the header,
//! the exact length, the checksum, decodes with a size limit, then validates
//! every model invariant before returning the model. bincode is called only
//! from one private encode/decode pair: a codec change is a format
//! version bump.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, FormatError, Result, in_file, io_at};

/// Magic bytes at the start of every semid model file.
pub const MAGIC: [u8; 8] = *b"SEMIDMF\0";
/// The newest format version this build reads. Files are written in the
/// oldest version that holds the model: version 1 for everything but a
/// [`SidMap`](crate::sid::SidMap) (or an index holding one) under
/// [`CollisionPolicy::Sinkhorn`](crate::sid::CollisionPolicy::Sinkhorn),
/// which needs version 2; so files an older semid could read stay
/// byte-identical.
pub const FORMAT_VERSION: u32 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 32;
/// Largest payload accepted (1 GiB).
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// The kinds of model a file can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelKind {
    /// [`crate::KMeans`].
    KMeans,
    /// [`crate::RqKMeans`].
    RqKMeans,
    /// [`crate::sid::SidMap`].
    SidMap,
    /// [`crate::sid::Trie`].
    Trie,
    /// [`crate::quantize::RqVae`].
    RqVae,
    /// [`crate::quantize::FsqAutoencoder`].
    FsqAutoencoder,
    /// [`crate::quantize::Fsq`].
    Fsq,
    /// [`crate::quantize::ResidualFsq`].
    ResidualFsq,
    /// [`crate::SemanticIndex`].
    SemanticIndex,
    /// [`crate::quantize::ProductQuantizer`] (PQ or OPQ).
    ProductQuantizer,
}

impl ModelKind {
    /// The tag stored in the header.
    #[must_use]
    pub fn tag(self) -> u32 {
        match self {
            ModelKind::KMeans => 1,
            ModelKind::RqKMeans => 2,
            ModelKind::SidMap => 3,
            ModelKind::Trie => 4,
            ModelKind::RqVae => 5,
            ModelKind::FsqAutoencoder => 6,
            ModelKind::Fsq => 7,
            ModelKind::ResidualFsq => 8,
            ModelKind::SemanticIndex => 9,
            ModelKind::ProductQuantizer => 10,
        }
    }

    /// The kind for a header tag, if known.
    #[must_use]
    pub fn from_tag(tag: u32) -> Option<ModelKind> {
        match tag {
            1 => Some(ModelKind::KMeans),
            2 => Some(ModelKind::RqKMeans),
            3 => Some(ModelKind::SidMap),
            4 => Some(ModelKind::Trie),
            5 => Some(ModelKind::RqVae),
            6 => Some(ModelKind::FsqAutoencoder),
            7 => Some(ModelKind::Fsq),
            8 => Some(ModelKind::ResidualFsq),
            9 => Some(ModelKind::SemanticIndex),
            10 => Some(ModelKind::ProductQuantizer),
            _ => None,
        }
    }

    /// The kind's type name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::KMeans => "KMeans",
            ModelKind::RqKMeans => "RqKMeans",
            ModelKind::SidMap => "SidMap",
            ModelKind::Trie => "Trie",
            ModelKind::RqVae => "RqVae",
            ModelKind::FsqAutoencoder => "FsqAutoencoder",
            ModelKind::Fsq => "Fsq",
            ModelKind::ResidualFsq => "ResidualFsq",
            ModelKind::SemanticIndex => "SemanticIndex",
            ModelKind::ProductQuantizer => "ProductQuantizer",
        }
    }
}

/// A parsed, checked model-file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// Model kind.
    pub kind: ModelKind,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// Reads and checks the header and checksum of model-file bytes, without
/// decoding the payload.
///
/// For a version-3 file (a [`SemanticIndex`](crate::SemanticIndex) laid
/// out for memory mapping) this checks the header and the directory's
/// checksum; the arrays are checked when the file is opened.
pub fn inspect(bytes: &[u8]) -> Result<Header> {
    if is_laid_out(bytes) {
        check_header(bytes, ModelKind::SemanticIndex)?;
        return Ok(Header {
            version: LAYOUT_VERSION,
            kind: ModelKind::SemanticIndex,
            payload_len: (bytes.len() - HEADER_LEN) as u64,
        });
    }
    let (h, _) = split(bytes)?;
    Ok(h)
}

/// FNV-1a 64-bit hash. Any single changed byte changes the result.
pub(crate) fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a 64 over 8-byte little-endian words (the last one zero-padded),
/// then the length: the section checksum of format version 3, about eight
/// times faster than [`fnv1a64`]. Each step `h ← (h ⊕ w)·p` is a bijection
/// of the state for a fixed word, so any change within one word changes
/// the result.
pub(crate) fn fnv1a64_words(data: &[u8]) -> u64 {
    const P: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(P);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(P);
    }
    (h ^ data.len() as u64).wrapping_mul(P)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) fn split(bytes: &[u8]) -> Result<(Header, &[u8])> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        if bytes.len() < 8 && MAGIC.starts_with(bytes) {
            return Err(FormatError::Truncated {
                expected: HEADER_LEN as u64,
                got: bytes.len() as u64,
            }
            .into());
        }
        return Err(FormatError::BadMagic.into());
    }
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            expected: HEADER_LEN as u64,
            got: bytes.len() as u64,
        }
        .into());
    }
    let version = u32_at(bytes, 8);
    if version == 0 || version > FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        }
        .into());
    }
    let tag = u32_at(bytes, 12);
    let kind = ModelKind::from_tag(tag).ok_or(FormatError::WrongKind {
        expected: "known model kind",
        found: tag,
    })?;
    let payload_len = u64_at(bytes, 16);
    let stored = u64_at(bytes, 24);
    if payload_len > MAX_PAYLOAD {
        return Err(FormatError::Payload(format!(
            "declared payload of {payload_len} bytes exceeds the {MAX_PAYLOAD}-byte limit"
        ))
        .into());
    }
    check_payload_len(payload_len, bytes.len())?;
    let payload = &bytes[HEADER_LEN..];
    let computed = fnv1a64(payload);
    if computed != stored {
        return Err(FormatError::Checksum { stored, computed }.into());
    }
    Ok((
        Header {
            version,
            kind,
            payload_len,
        },
        payload,
    ))
}

/// The format version of a [`SemanticIndex`](crate::SemanticIndex) laid
/// out for memory mapping (`src/layout.rs`).
pub(crate) const LAYOUT_VERSION: u32 = 3;
/// True for bytes that start as a version-3 (laid-out) file.
pub(crate) fn is_laid_out(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes[..8] == MAGIC && u32_at(bytes, 8) == LAYOUT_VERSION
}

/// Where a version-3 file's directory starts (after the header and its
/// length).
pub(crate) const DIR_AT: usize = HEADER_LEN + 8;

/// Checks the 32-byte header and the directory checksum of a version-3
/// file; returns the directory's length.
pub(crate) fn check_header(bytes: &[u8], kind: ModelKind) -> Result<usize> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    if bytes.len() < DIR_AT {
        return Err(FormatError::Truncated {
            expected: DIR_AT as u64,
            got: bytes.len() as u64,
        }
        .into());
    }
    if bytes[..8] != MAGIC {
        return Err(FormatError::BadMagic.into());
    }
    if u32_at(8) != LAYOUT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            found: u32_at(8),
            supported: LAYOUT_VERSION,
        }
        .into());
    }
    let tag = u32_at(12);
    if tag != kind.tag() {
        return Err(FormatError::WrongKind {
            expected: kind.name(),
            found: tag,
        }
        .into());
    }
    check_payload_len(u64_at(16), bytes.len())?;
    let dir_len = u64_at(HEADER_LEN);
    let Some(dir_len) = usize::try_from(dir_len)
        .ok()
        .filter(|&d| d <= bytes.len() - DIR_AT)
    else {
        return Err(FormatError::Truncated {
            expected: (DIR_AT as u64).saturating_add(dir_len),
            got: bytes.len() as u64,
        }
        .into());
    };
    let stored = u64_at(24);
    let computed = fnv1a64(&bytes[HEADER_LEN..DIR_AT + dir_len]);
    if computed != stored {
        return Err(FormatError::Checksum { stored, computed }.into());
    }
    Ok(dir_len)
}

/// The header's payload length is what follows the header in a file of
/// `file_len` bytes (at least [`HEADER_LEN`]); else `Truncated` or
/// `TrailingBytes`.
pub(crate) fn check_payload_len(declared: u64, file_len: usize) -> Result<()> {
    let have = (file_len - HEADER_LEN) as u64;
    if declared > have {
        return Err(FormatError::Truncated {
            expected: (HEADER_LEN as u64).saturating_add(declared),
            got: file_len as u64,
        }
        .into());
    }
    if declared < have {
        return Err(FormatError::TrailingBytes {
            extra: have - declared,
        }
        .into());
    }
    Ok(())
}

/// Frames `payload` with a valid version-1 header of `kind`.
pub(crate) fn frame(kind: ModelKind, payload: &[u8]) -> Vec<u8> {
    frame_version(kind, 1, payload)
}

/// Frames `payload` with a valid header of `kind` and format `version`.
pub(crate) fn frame_version(kind: ModelKind, version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&kind.tag().to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

// The single place bincode is called. Fixed-width little-endian integers;
// decoding is capped at MAX_PAYLOAD so a hostile length cannot allocate more.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<{ MAX_PAYLOAD as usize }>()
}

pub(crate) fn encode_payload<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    encode_payload_within(v, MAX_PAYLOAD as usize)
}

/// [`encode_payload`], refusing a payload above `limit` bytes: a file that
/// no build could load is never written (at [`MAX_PAYLOAD`], a
/// `SemanticIndex` of about 90M items). Stops writing at the limit.
fn encode_payload_within<T: Serialize>(v: &T, limit: usize) -> Result<Vec<u8>> {
    /// A `Vec` that refuses to grow past `limit`.
    struct Capped {
        buf: Vec<u8>,
        limit: usize,
        over: bool,
    }
    impl bincode::enc::write::Writer for Capped {
        #[inline]
        fn write(&mut self, data: &[u8]) -> std::result::Result<(), bincode::error::EncodeError> {
            if self.buf.len() + data.len() > self.limit {
                self.over = true;
                return Err(bincode::error::EncodeError::Other("payload limit"));
            }
            self.buf.extend_from_slice(data);
            Ok(())
        }
    }
    let mut w = Capped {
        buf: Vec::new(),
        limit,
        over: false,
    };
    match bincode::serde::encode_into_writer(v, &mut w, bincode_config()) {
        Ok(()) => Ok(w.buf),
        Err(_) if w.over => Err(FormatError::Payload(format!(
            "the payload is larger than the {limit}-byte limit of a model file, so it could not be loaded; split the catalog (docs/SCALE.md)"
        ))
        .into()),
        Err(e) => Err(FormatError::Payload(e.to_string()).into()),
    }
}

pub(crate) fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T> {
    let (v, used) = bincode::serde::decode_from_slice(payload, bincode_config())
        .map_err(|e| Error::Format(FormatError::Payload(e.to_string())))?;
    if used != payload.len() {
        return Err(FormatError::TrailingBytes {
            extra: (payload.len() - used) as u64,
        }
        .into());
    }
    Ok(v)
}

/// The private half of [`ModelFile`]. Sealed: only semid's types implement
/// it.
pub(crate) mod sealed {
    use super::{ModelKind, Result};

    /// A model type stored under one kind: its payload.
    pub trait Payload: Sized {
        /// The header's kind.
        const KIND: ModelKind;
        /// The serialised form (format version 1).
        type V: serde::Serialize + serde::de::DeserializeOwned;
        /// The payload of `self`.
        fn to_payload(&self) -> Self::V;
        /// Rebuilds the model, validating every invariant.
        fn from_payload(p: Self::V) -> Result<Self>;
    }

    /// Whole model files: every [`Payload`] type, and
    /// [`AnyQuantizer`](crate::quantize::AnyQuantizer), which reads any
    /// quantizer kind.
    pub trait Codec: Sized {
        /// The model as model-file bytes.
        fn encode_file(&self) -> Result<Vec<u8>>;
        /// The model in checked model-file bytes.
        fn decode_file(bytes: &[u8]) -> Result<Self>;
        /// The file as pieces to write one after the other (a large
        /// model's arrays are not copied into one buffer first).
        fn file_parts(&self) -> Result<Vec<std::borrow::Cow<'_, [u8]>>> {
            Ok(vec![std::borrow::Cow::Owned(self.encode_file()?)])
        }
        /// Reads the model file at `path` (errors not yet naming the file).
        fn read_path(path: &std::path::Path) -> Result<Self> {
            super::read_whole(path).and_then(|b| Self::decode_file(&b))
        }
    }
}

impl<T: sealed::Payload> sealed::Codec for T {
    fn encode_file(&self) -> Result<Vec<u8>> {
        encode_file(T::KIND, &self.to_payload())
    }

    fn decode_file(bytes: &[u8]) -> Result<Self> {
        T::from_payload(decode_file(T::KIND, bytes)?)
    }
}

/// `payload` of `kind`, framed as a model file.
pub(crate) fn encode_file<V: Serialize>(kind: ModelKind, payload: &V) -> Result<Vec<u8>> {
    Ok(frame(kind, &encode_payload(payload)?))
}

/// The payload of a model file of `kind`, checked and decoded. Errors with
/// [`FormatError::WrongKind`] when the file holds another kind.
pub(crate) fn decode_file<V: DeserializeOwned>(kind: ModelKind, bytes: &[u8]) -> Result<V> {
    let (h, payload) = split(bytes)?;
    if h.kind != kind {
        return Err(FormatError::WrongKind {
            expected: kind.name(),
            found: h.kind.tag(),
        }
        .into());
    }
    decode_payload(payload)
}

/// A model stored as one versioned, checksummed file: every quantizer (and
/// [`AnyQuantizer`](crate::quantize::AnyQuantizer)),
/// [`SidMap`](crate::sid::SidMap), [`Trie`](crate::sid::Trie) and
/// [`SemanticIndex`](crate::SemanticIndex). Sealed: the payloads are
/// semid's to define (`docs/FORMAT.md`).
///
/// Loading checks the header, the exact length, the checksum, decodes with a
/// size limit, then validates every model invariant: truncated, corrupted or
/// hostile bytes give [`Error::Format`], never a panic.
pub trait ModelFile: sealed::Codec {
    /// The model as model-file bytes.
    fn to_bytes(&self) -> Result<Vec<u8>> {
        self.encode_file()
    }

    /// Reads a model from model-file bytes. Errors with
    /// [`FormatError::WrongKind`] when the file holds another kind.
    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode_file(bytes)
    }

    /// Writes the model to `path` atomically (a temporary file in the same
    /// directory, synced, then renamed over `path`).
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.file_parts()?)
    }

    /// Reads a model file from `path`. Files larger than the payload limit
    /// are refused before they are read. A file that is not a valid model
    /// gives [`Error::File`] naming it, around the [`Error::Format`] that
    /// [`ModelFile::from_bytes`] gives ([`Error::root`] reaches it).
    fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::read_path(path).map_err(in_file(path))
    }
}

/// The bytes of a model file of at most the payload limit (larger files
/// are refused before they are read).
pub(crate) fn read_whole(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).map_err(io_at(path))?.len();
    if len > MAX_PAYLOAD + HEADER_LEN as u64 {
        return Err(FormatError::Payload(format!(
            "file of {len} bytes exceeds the {MAX_PAYLOAD}-byte payload limit"
        ))
        .into());
    }
    std::fs::read(path).map_err(io_at(path))
}

impl<T: sealed::Codec> ModelFile for T {}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, parts: &[std::borrow::Cow<'_, [u8]>]) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path
        .file_name()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_at(path))
}

/// A [`FormatError::Invalid`] with `msg`.
pub(crate) fn invalid_payload(msg: impl Into<String>) -> Error {
    Error::Format(FormatError::Invalid(msg.into()))
}

/// A model validator's error as a format error (a file that decodes but
/// breaks an invariant is an invalid file).
pub(crate) fn to_invalid(e: Error) -> Error {
    match e {
        Error::Format(_) => e,
        other => invalid_payload(other.to_string()),
    }
}

/// A stored size as `usize`, or an invalid-payload error naming `what`.
pub(crate) fn stored_usize(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| invalid_payload(format!("{what} {v} does not fit usize")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_above_the_limit_are_refused_when_written() {
        let v: Vec<u32> = (0..100).collect();
        let bytes = encode_payload_within(&v, 1 << 20).unwrap();
        assert_eq!(decode_payload::<Vec<u32>>(&bytes).unwrap(), v);
        // One byte short of what the payload needs: a typed error.
        match encode_payload_within(&v, bytes.len() - 1) {
            Err(Error::Format(FormatError::Payload(m))) => {
                assert!(m.contains("could not be loaded"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(encode_payload_within(&v, bytes.len()).unwrap(), bytes);
    }
}
