//! Versioned model files and `.npy` input.
//!
//! Every model file is a 32-byte header followed by a bincode payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"SEMIDMF\0"` |
//! | 8 | 4 | format version, u32 LE (this build writes and reads 1) |
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

use crate::error::{Error, FormatError, Result};

/// Magic bytes at the start of every semid model file.
pub const MAGIC: [u8; 8] = *b"SEMIDMF\0";
/// The newest format version this build reads (and the one it writes).
pub const FORMAT_VERSION: u32 = 1;
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
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ModelKind::KMeans => "KMeans",
            ModelKind::RqKMeans => "RqKMeans",
            ModelKind::SidMap => "SidMap",
            ModelKind::Trie => "Trie",
            ModelKind::RqVae => "RqVae",
            ModelKind::FsqAutoencoder => "FsqAutoencoder",
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
pub fn inspect(bytes: &[u8]) -> Result<Header> {
    let (h, _) = split(bytes)?;
    Ok(h)
}

/// FNV-1a 64-bit hash. Any single changed byte changes the result.
fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn split(bytes: &[u8]) -> Result<(Header, &[u8])> {
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
    let have = (bytes.len() - HEADER_LEN) as u64;
    if payload_len > MAX_PAYLOAD {
        return Err(FormatError::Payload(format!(
            "declared payload of {payload_len} bytes exceeds the {MAX_PAYLOAD}-byte limit"
        ))
        .into());
    }
    if payload_len > have {
        return Err(FormatError::Truncated {
            expected: HEADER_LEN as u64 + payload_len,
            got: bytes.len() as u64,
        }
        .into());
    }
    if payload_len < have {
        return Err(FormatError::TrailingBytes {
            extra: have - payload_len,
        }
        .into());
    }
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

/// Frames `payload` with a valid header of `kind`.
fn frame(kind: ModelKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
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

fn encode_payload<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(v, bincode_config())
        .map_err(|e| FormatError::Payload(e.to_string()).into())
}

fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T> {
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

/// A model type stored in a model file.
pub(crate) trait ModelFile: Sized {
    const KIND: ModelKind;
    type Payload: Serialize + DeserializeOwned;
    fn to_payload(&self) -> Self::Payload;
    /// Validates every invariant.
    fn from_payload(p: Self::Payload) -> Result<Self>;
}

pub(crate) fn to_bytes<M: ModelFile>(m: &M) -> Result<Vec<u8>> {
    Ok(frame(M::KIND, &encode_payload(&m.to_payload())?))
}

pub(crate) fn from_bytes<M: ModelFile>(bytes: &[u8]) -> Result<M> {
    let (h, payload) = split(bytes)?;
    if h.kind != M::KIND {
        return Err(FormatError::WrongKind {
            expected: M::KIND.name(),
            found: h.kind.tag(),
        }
        .into());
    }
    let p: M::Payload = decode_payload(payload)?;
    M::from_payload(p)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::Io)
}

pub(crate) fn save<M: ModelFile>(m: &M, path: &Path) -> Result<()> {
    write_atomic(path, &to_bytes(m)?)
}

pub(crate) fn load<M: ModelFile>(path: &Path) -> Result<M> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_PAYLOAD + HEADER_LEN as u64 {
        return Err(FormatError::Payload(format!(
            "file of {len} bytes exceeds the {MAX_PAYLOAD}-byte payload limit"
        ))
        .into());
    }
    from_bytes(&std::fs::read(path)?)
}

// ---- payloads (format version 1) ----

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct KMeansV1 {
    dim: u64,
    centroids: Vec<f32>,
}

impl ModelFile for crate::KMeans {
    const KIND: ModelKind = ModelKind::KMeans;
    type Payload = KMeansV1;
    fn to_payload(&self) -> KMeansV1 {
        use crate::Quantizer;
        KMeansV1 {
            dim: self.dim() as u64,
            centroids: self.centroids().to_vec(),
        }
    }
    fn from_payload(p: KMeansV1) -> Result<Self> {
        let dim = usize::try_from(p.dim).map_err(|_| invalid_payload("dim does not fit usize"))?;
        crate::KMeans::from_centroids(p.centroids, dim).map_err(to_invalid)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RqKMeansV1 {
    dim: u64,
    levels: u64,
    k: u64,
    codebooks: Vec<f32>,
}

impl ModelFile for crate::RqKMeans {
    const KIND: ModelKind = ModelKind::RqKMeans;
    type Payload = RqKMeansV1;
    fn to_payload(&self) -> RqKMeansV1 {
        use crate::Quantizer;
        RqKMeansV1 {
            dim: self.dim() as u64,
            levels: self.levels() as u64,
            k: self.k() as u64,
            codebooks: self.codebooks().to_vec(),
        }
    }
    fn from_payload(p: RqKMeansV1) -> Result<Self> {
        let expect = p
            .levels
            .checked_mul(p.k)
            .and_then(|v| v.checked_mul(p.dim))
            .ok_or_else(|| invalid_payload("levels × k × dim overflows"))?;
        if expect != p.codebooks.len() as u64 {
            return Err(invalid_payload(format!(
                "codebooks hold {} values, header fields say levels {} × k {} × dim {}",
                p.codebooks.len(),
                p.levels,
                p.k,
                p.dim
            )));
        }
        let m = crate::RqKMeans::from_codebooks(p.codebooks, p.levels as usize, p.dim as usize)
            .map_err(to_invalid)?;
        Ok(m)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SidMapV1 {
    /// 0 = AppendSuffix, 1 = ReassignLastLevel, 2 = AllowShared.
    policy: u8,
    capacity: u32,
    code_sizes: Vec<u64>,
    suffix_size: u64,
    max_bucket: u64,
    items: Vec<u32>,
    ids: Vec<u16>,
}

impl ModelFile for crate::sid::SidMap {
    const KIND: ModelKind = ModelKind::SidMap;
    type Payload = SidMapV1;
    fn to_payload(&self) -> SidMapV1 {
        use crate::sid::CollisionPolicy as P;
        let (policy, capacity) = match self.policy() {
            P::AppendSuffix => (0, 0),
            P::ReassignLastLevel { capacity } => (1, capacity),
            P::AllowShared => (2, 0),
        };
        SidMapV1 {
            policy,
            capacity,
            code_sizes: self.code_sizes().iter().map(|&v| v as u64).collect(),
            suffix_size: self.suffix_size() as u64,
            max_bucket: self.max_bucket() as u64,
            items: self.items().to_vec(),
            ids: self.ids().to_vec(),
        }
    }
    fn from_payload(p: SidMapV1) -> Result<Self> {
        use crate::sid::CollisionPolicy as P;
        let policy = match p.policy {
            0 => P::AppendSuffix,
            1 => P::ReassignLastLevel {
                capacity: p.capacity,
            },
            2 => P::AllowShared,
            t => return Err(invalid_payload(format!("unknown collision policy tag {t}"))),
        };
        let fit = |v: u64, what: &str| {
            usize::try_from(v)
                .ok()
                .filter(|&v| v <= 1 << 32)
                .ok_or_else(|| invalid_payload(format!("{what} {v} is out of range")))
        };
        let code_sizes = p
            .code_sizes
            .iter()
            .map(|&v| fit(v, "codebook size"))
            .collect::<Result<Vec<_>>>()?;
        crate::sid::SidMap::from_parts(
            policy,
            code_sizes,
            fit(p.suffix_size, "suffix size")?,
            fit(p.max_bucket, "max bucket")?,
            p.items,
            p.ids,
        )
        .map_err(to_invalid)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TrieV1 {
    vocab: Vec<u64>,
    tokens: Vec<Vec<u16>>,
    offsets: Vec<Vec<u32>>,
    leaf_items: Option<Vec<u32>>,
    items: Vec<u32>,
}

impl ModelFile for crate::sid::Trie {
    const KIND: ModelKind = ModelKind::Trie;
    type Payload = TrieV1;
    fn to_payload(&self) -> TrieV1 {
        let (vocab, tokens, offsets, leaf_items, items) = self.to_parts();
        TrieV1 {
            vocab,
            tokens,
            offsets,
            leaf_items,
            items,
        }
    }
    fn from_payload(p: TrieV1) -> Result<Self> {
        crate::sid::Trie::from_parts(p.vocab, p.tokens, p.offsets, p.leaf_items, p.items)
            .map_err(to_invalid)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LayerV1 {
    inputs: u64,
    outputs: u64,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RqVaeV1 {
    /// 0 = ReLU, 1 = SiLU.
    activation: u8,
    levels: u64,
    k: u64,
    encoder: Vec<LayerV1>,
    decoder: Vec<LayerV1>,
    codebooks: Vec<f32>,
}

fn layers_to_v1(m: &crate::nn::Mlp) -> Vec<LayerV1> {
    m.layers
        .iter()
        .map(|l| LayerV1 {
            inputs: l.inputs as u64,
            outputs: l.outputs as u64,
            weight: l.weight.clone(),
            bias: l.bias.clone(),
        })
        .collect()
}

/// Rebuilds an MLP from stored layers; `RqVae::from_parts` validates it.
fn layers_from_v1(v: Vec<LayerV1>, act: crate::nn::Activation) -> Result<crate::nn::Mlp> {
    let size = |x: u64| {
        usize::try_from(x)
            .map_err(|_| invalid_payload(format!("layer size {x} does not fit usize")))
    };
    let layers = v
        .into_iter()
        .map(|l| {
            Ok(crate::nn::Linear {
                inputs: size(l.inputs)?,
                outputs: size(l.outputs)?,
                weight: l.weight,
                bias: l.bias,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::nn::Mlp {
        layers,
        activation: act,
    })
}

impl ModelFile for crate::quantize::RqVae {
    const KIND: ModelKind = ModelKind::RqVae;
    type Payload = RqVaeV1;
    fn to_payload(&self) -> RqVaeV1 {
        use crate::Quantizer;
        let (enc, dec) = self.networks();
        RqVaeV1 {
            activation: activation_tag(enc.activation),
            levels: self.levels() as u64,
            k: self.codebook_size(0) as u64,
            encoder: layers_to_v1(enc),
            decoder: layers_to_v1(dec),
            codebooks: self.codebooks().to_vec(),
        }
    }
    fn from_payload(p: RqVaeV1) -> Result<Self> {
        let act = activation_of(p.activation)?;
        let enc = layers_from_v1(p.encoder, act)?;
        let dec = layers_from_v1(p.decoder, act)?;
        if p.levels == 0 || !(2..=1 << 16).contains(&p.k) {
            return Err(invalid_payload("levels must be ≥ 1 and k in 2..=65536"));
        }
        crate::quantize::RqVae::from_parts(enc, dec, p.codebooks, p.levels as usize, p.k as usize)
            .map_err(to_invalid)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct FsqAutoencoderV1 {
    /// 0 = ReLU, 1 = SiLU.
    activation: u8,
    /// 0 = default, 1 = symmetric, 2 = symmetric with hard clamp.
    mode: u8,
    levels: Vec<u32>,
    encoder: Vec<LayerV1>,
    decoder: Vec<LayerV1>,
}

fn activation_tag(a: crate::nn::Activation) -> u8 {
    match a {
        crate::nn::Activation::Relu => 0,
        crate::nn::Activation::Silu => 1,
    }
}

fn activation_of(tag: u8) -> Result<crate::nn::Activation> {
    match tag {
        0 => Ok(crate::nn::Activation::Relu),
        1 => Ok(crate::nn::Activation::Silu),
        t => Err(invalid_payload(format!("unknown activation tag {t}"))),
    }
}

impl ModelFile for crate::quantize::FsqAutoencoder {
    const KIND: ModelKind = ModelKind::FsqAutoencoder;
    type Payload = FsqAutoencoderV1;
    fn to_payload(&self) -> FsqAutoencoderV1 {
        use crate::quantize::FsqMode;
        let (enc, dec) = self.networks();
        FsqAutoencoderV1 {
            activation: activation_tag(enc.activation),
            mode: match self.fsq().mode() {
                FsqMode::Default => 0,
                FsqMode::Symmetric => 1,
                FsqMode::SymmetricHardClamp => 2,
            },
            levels: self.fsq().levels(),
            encoder: layers_to_v1(enc),
            decoder: layers_to_v1(dec),
        }
    }
    fn from_payload(p: FsqAutoencoderV1) -> Result<Self> {
        use crate::quantize::FsqMode;
        let act = activation_of(p.activation)?;
        let mode = match p.mode {
            0 => FsqMode::Default,
            1 => FsqMode::Symmetric,
            2 => FsqMode::SymmetricHardClamp,
            t => return Err(invalid_payload(format!("unknown FSQ mode tag {t}"))),
        };
        let fsq = crate::quantize::Fsq::with_mode(&p.levels, mode).map_err(to_invalid)?;
        let enc = layers_from_v1(p.encoder, act)?;
        let dec = layers_from_v1(p.decoder, act)?;
        crate::quantize::FsqAutoencoder::from_parts(enc, dec, fsq).map_err(to_invalid)
    }
}

fn invalid_payload(msg: impl Into<String>) -> Error {
    Error::Format(FormatError::Invalid(msg.into()))
}

fn to_invalid(e: Error) -> Error {
    match e {
        Error::Format(_) => e,
        other => invalid_payload(other.to_string()),
    }
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
    read_npy_as(path.as_ref(), crate::npy::Void2::Refuse)
}

/// [`read_npy`] that also reads 2-byte void elements (`'<V2'`) as bfloat16,
/// for arrays saved from `ml_dtypes.bfloat16` with `np.save`.
pub fn read_npy_bf16(path: impl AsRef<Path>) -> Result<(Vec<f32>, usize)> {
    read_npy_as(path.as_ref(), crate::npy::Void2::Bf16)
}

fn read_npy_as(path: &Path, void2: crate::npy::Void2) -> Result<(Vec<f32>, usize)> {
    let bytes = std::fs::read(path).map_err(Error::Io)?;
    crate::npy::parse(&bytes, void2).map_err(|e| match e {
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
    write_atomic(path.as_ref(), &bytes)
}

/// Internals for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    pub use super::ModelKind;
    /// Frames an arbitrary payload with a valid header.
    #[must_use]
    pub fn frame(kind: ModelKind, payload: &[u8]) -> Vec<u8> {
        super::frame(kind, payload)
    }

    /// The `model_file` fuzz target: the first byte picks a kind, the rest
    /// is framed as its payload; the raw bytes are tried too. Must never
    /// panic.
    pub fn model_file(data: &[u8]) {
        use crate::Quantizer;
        let Some((&sel, payload)) = data.split_first() else {
            return;
        };
        let kind = match sel % 6 {
            0 => ModelKind::KMeans,
            1 => ModelKind::RqKMeans,
            2 => ModelKind::SidMap,
            3 => ModelKind::Trie,
            4 => ModelKind::RqVae,
            _ => ModelKind::FsqAutoencoder,
        };
        let framed = frame(kind, payload);
        if let Ok(m) = crate::KMeans::from_bytes(&framed) {
            let _ = m.codebook_sizes();
        }
        if let Ok(m) = crate::RqKMeans::from_bytes(&framed) {
            let _ = m.codebook_sizes();
        }
        if let Ok(m) = crate::sid::SidMap::from_bytes(&framed) {
            let _ = m.stats();
            if let Ok(t) = crate::sid::Trie::build(&m) {
                walk_all(&t);
            }
        }
        if let Ok(t) = crate::sid::Trie::from_bytes(&framed) {
            assert!(t.validate().is_ok());
            walk_all(&t);
        }
        if let Ok(m) = crate::quantize::RqVae::from_bytes(&framed) {
            let _ = m.codebook_sizes();
        }
        if let Ok(m) = crate::quantize::FsqAutoencoder::from_bytes(&framed) {
            // Finite but huge weights may overflow: errors are fine, panics
            // are not.
            let x = vec![0.5f32; m.dim()];
            if let Ok(e) = crate::Embeddings::new(&x, m.dim())
                && let Ok(codes) = m.encode(e)
            {
                let _ = m.decode(&codes);
            }
        }
        let _ = crate::RqKMeans::from_bytes(data);
        let _ = crate::KMeans::from_bytes(data);
        let _ = crate::sid::Trie::from_bytes(data);
    }

    /// Walks every leaf of a valid trie and pokes states around it.
    fn walk_all(t: &crate::sid::Trie) {
        let mut id = vec![0u16; t.depth()];
        for leaf in 0..t.len().min(4096) {
            t.id_of_leaf(leaf, &mut id).expect("leaf in range");
            let s = t.walk(&id).expect("every leaf's ID walks");
            assert!(!t.items(s).is_empty());
            let _ = t.allowed(crate::sid::State {
                depth: s.depth,
                node: s.node.wrapping_add(1),
            });
        }
    }

    /// Reads bytes as a little stream with defaults past the end.
    struct Bytes<'a>(&'a [u8]);
    impl Bytes<'_> {
        fn u8(&mut self) -> u8 {
            match self.0.split_first() {
                Some((&b, rest)) => {
                    self.0 = rest;
                    b
                }
                None => 0,
            }
        }
        fn u16(&mut self) -> u16 {
            u16::from_le_bytes([self.u8(), self.u8()])
        }
    }

    /// The `trie_build` fuzz target: an ID list from bytes (length 1–4,
    /// small or raw vocabularies, repeats), built into a trie and a SidMap
    /// and checked against a `BTreeMap`. Must never panic.
    pub fn trie_build(data: &[u8]) {
        use std::collections::BTreeMap;
        let mut b = Bytes(data);
        let len = 1 + (b.u8() % 4) as usize;
        let v = b.u8();
        let vocab = if v & 0x80 != 0 {
            65_536
        } else {
            1 + (v % 32) as usize
        };
        let raw = v & 0x40 != 0;
        let mut ids = Vec::new();
        while !b.0.is_empty() && ids.len() < 4 * 4096 {
            let t = b.u16();
            ids.push(if raw { t } else { (t as usize % vocab) as u16 });
        }
        let vocabs = vec![vocab; len];
        let Ok(t) = crate::sid::Trie::from_ids(&ids, len, &vocabs) else {
            return;
        };
        assert!(t.validate().is_ok());
        let mut r: BTreeMap<&[u16], Vec<u32>> = BTreeMap::new();
        for (i, id) in ids.chunks_exact(len).enumerate() {
            r.entry(id).or_default().push(i as u32);
        }
        assert_eq!(t.len(), r.len());
        for (id, items) in &r {
            let s = t.walk(id).expect("inserted ID walks");
            assert_eq!(t.items(s), &items[..]);
        }
        walk_all(&t);
        let back = crate::sid::Trie::from_bytes(&t.to_bytes().expect("encode"));
        assert_eq!(back.expect("round trip").stats(), t.stats());
        if let Ok(codes) = crate::Codes::new(ids.clone(), len) {
            for p in [
                crate::sid::CollisionPolicy::AllowShared,
                crate::sid::CollisionPolicy::AppendSuffix,
            ] {
                if let Ok((m, _)) = crate::sid::SidMap::build(&codes, &vocabs, p) {
                    let tm = crate::sid::Trie::build(&m).expect("map builds a trie");
                    assert!(tm.validate().is_ok());
                    let _ = crate::sid::SidMap::from_bytes(&m.to_bytes().expect("encode"))
                        .expect("map round trip");
                }
            }
        }
    }

    /// The `beam_search` fuzz target: IDs, beam width (0, small or huge),
    /// k, batch size and arbitrary scores (NaN, ±Inf, extremes) from bytes,
    /// searched under the trie and unconstrained. Must never panic; every
    /// hit must be a valid ID with non-increasing scores.
    pub fn beam_search(data: &[u8]) {
        use crate::decode::{BeamSearch, FnScorer, Unconstrained};
        let mut b = Bytes(data);
        let len = 1 + (b.u8() % 3) as usize;
        let vocab = 1 + (b.u8() % 8) as usize;
        let beam = match b.u8() {
            255 => 1 << 30,
            x => x as usize,
        };
        let k = (b.u8() % 65) as usize;
        let nq = (b.u8() % 4) as usize;
        let n_ids = 1 + (b.u8() % 64) as usize;
        let ids: Vec<u16> = (0..n_ids * len)
            .map(|_| (b.u8() as usize % vocab) as u16)
            .collect();
        let pool: Vec<f32> =
            b.0.iter()
                .map(|&x| match x {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => f32::NEG_INFINITY,
                    3 => f32::MAX,
                    4 => -f32::MAX,
                    x => (x as f32 - 128.0) / 16.0,
                })
                .collect();
        let Ok(trie) = crate::sid::Trie::from_ids(&ids, len, &vec![vocab; len]) else {
            return;
        };
        let un = Unconstrained::new(&vec![vocab; len]).expect("valid vocab");
        let mut pos = 0usize;
        let mut scorer = FnScorer(|_q: usize, _p: &[u16], out: &mut [f32]| {
            for o in out.iter_mut() {
                *o = if pool.is_empty() {
                    0.0
                } else {
                    pool[pos % pool.len()]
                };
                pos += 1;
            }
            Ok(())
        });
        let Ok(mut bs) = BeamSearch::new(beam, k) else {
            return;
        };
        if let Ok(h) = bs.run(&trie, &mut scorer, nq) {
            for q in 0..h.n_queries() {
                let v = h.query(q);
                for (i, id) in v.ids.chunks_exact(len).enumerate() {
                    let s = trie.walk(id).expect("hits are valid IDs");
                    assert!(trie.items(s).contains(&v.items[i]));
                }
                assert!(v.scores.windows(2).all(|w| w[0] >= w[1]));
                assert!(v.items.len() <= k);
            }
        }
        let _ = bs.run(&un, &mut scorer, nq);
    }
}
