//! [`AnyQuantizer`]: one type for every quantizer, so a quantizer chosen at
//! run time can be stored, loaded and held by a
//! [`SemanticIndex`](crate::SemanticIndex).

use super::{
    Fsq, FsqAutoencoder, KMeans, ProductQuantizer, Quantizer, ResidualFsq, RqKMeans, RqVae,
};
use crate::data::{Codes, Embeddings};
use crate::error::FormatError;
use crate::error::Result;
use crate::format::{ModelKind, sealed::Codec, split};
use crate::par::Par;

/// Any of semid's quantizers.
///
/// It is a [`Quantizer`] (every call goes to the held model) and a
/// [`ModelFile`](crate::ModelFile): [`from_bytes`](crate::ModelFile::from_bytes) and
/// [`load`](crate::ModelFile::load) read a model file of any quantizer kind, and
/// writing one gives exactly the held model's file, so a file saved from a
/// `RqKMeans` loads as an `AnyQuantizer` and back.
///
/// ```
/// use semid::quantize::{AnyQuantizer, Fsq};
/// use semid::{ModelFile, Quantizer};
/// let q: AnyQuantizer = Fsq::new(&[8, 5, 5, 5])?.into();
/// let back = AnyQuantizer::from_bytes(&q.to_bytes()?)?;
/// assert_eq!(back, q);
/// assert_eq!(back.codebook_sizes(), vec![1000]);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AnyQuantizer {
    /// [`KMeans`].
    KMeans(KMeans),
    /// [`RqKMeans`].
    RqKMeans(RqKMeans),
    /// [`RqVae`].
    RqVae(RqVae),
    /// [`Fsq`].
    Fsq(Fsq),
    /// [`ResidualFsq`].
    ResidualFsq(ResidualFsq),
    /// [`FsqAutoencoder`].
    FsqAutoencoder(FsqAutoencoder),
    /// [`ProductQuantizer`] (PQ or OPQ).
    ProductQuantizer(ProductQuantizer),
}

/// Runs `$body` with `$q` bound to the held quantizer.
macro_rules! each {
    ($self:expr, $q:ident => $body:expr) => {
        match $self {
            AnyQuantizer::KMeans($q) => $body,
            AnyQuantizer::RqKMeans($q) => $body,
            AnyQuantizer::RqVae($q) => $body,
            AnyQuantizer::Fsq($q) => $body,
            AnyQuantizer::ResidualFsq($q) => $body,
            AnyQuantizer::FsqAutoencoder($q) => $body,
            AnyQuantizer::ProductQuantizer($q) => $body,
        }
    };
}

impl AnyQuantizer {
    /// The held model's file kind.
    #[must_use]
    pub fn kind(&self) -> ModelKind {
        match self {
            AnyQuantizer::KMeans(_) => ModelKind::KMeans,
            AnyQuantizer::RqKMeans(_) => ModelKind::RqKMeans,
            AnyQuantizer::RqVae(_) => ModelKind::RqVae,
            AnyQuantizer::Fsq(_) => ModelKind::Fsq,
            AnyQuantizer::ResidualFsq(_) => ModelKind::ResidualFsq,
            AnyQuantizer::FsqAutoencoder(_) => ModelKind::FsqAutoencoder,
            AnyQuantizer::ProductQuantizer(_) => ModelKind::ProductQuantizer,
        }
    }

    /// The held quantizer's last-level distances, where it has them
    /// ([`RqKMeans`], [`RqVae`]): what
    /// [`CollisionPolicy::ReassignLastLevel`](crate::sid::CollisionPolicy::ReassignLastLevel)
    /// and [`CollisionPolicy::Sinkhorn`](crate::sid::CollisionPolicy::Sinkhorn)
    /// need.
    #[must_use]
    pub fn last_level(&self) -> Option<&dyn super::LastLevelDistances> {
        match self {
            AnyQuantizer::RqKMeans(q) => Some(q),
            AnyQuantizer::RqVae(q) => Some(q),
            _ => None,
        }
    }

    /// The held [`RqKMeans`], if it is one: codebook scoring and
    /// [`CollisionPolicy::ReassignLastLevel`](crate::sid::CollisionPolicy::ReassignLastLevel)
    /// need its codebooks.
    #[must_use]
    pub fn as_rq_kmeans(&self) -> Option<&RqKMeans> {
        match self {
            AnyQuantizer::RqKMeans(q) => Some(q),
            _ => None,
        }
    }
}

impl Quantizer for AnyQuantizer {
    fn dim(&self) -> usize {
        each!(self, q => Quantizer::dim(q))
    }

    fn levels(&self) -> usize {
        each!(self, q => Quantizer::levels(q))
    }

    fn codebook_size(&self, level: usize) -> usize {
        each!(self, q => Quantizer::codebook_size(q, level))
    }

    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        each!(self, q => q.encode_into(x, out, par))
    }

    fn decode_into(&self, codes: &Codes, out: &mut [f32], par: Par) -> Result<()> {
        each!(self, q => q.decode_into(codes, out, par))
    }
}

impl Codec for AnyQuantizer {
    fn encode_file(&self) -> Result<Vec<u8>> {
        each!(self, q => q.encode_file())
    }

    fn decode_file(bytes: &[u8]) -> Result<Self> {
        let (h, _) = split(bytes)?;
        Ok(match h.kind {
            ModelKind::KMeans => KMeans::decode_file(bytes)?.into(),
            ModelKind::RqKMeans => RqKMeans::decode_file(bytes)?.into(),
            ModelKind::RqVae => RqVae::decode_file(bytes)?.into(),
            ModelKind::Fsq => Fsq::decode_file(bytes)?.into(),
            ModelKind::ResidualFsq => ResidualFsq::decode_file(bytes)?.into(),
            ModelKind::FsqAutoencoder => FsqAutoencoder::decode_file(bytes)?.into(),
            ModelKind::ProductQuantizer => ProductQuantizer::decode_file(bytes)?.into(),
            other => {
                return Err(FormatError::WrongKind {
                    expected: "a quantizer",
                    found: other.tag(),
                }
                .into());
            }
        })
    }
}

macro_rules! from_model {
    ($($t:ident),*) => {$(
        impl From<$t> for AnyQuantizer {
            fn from(q: $t) -> AnyQuantizer {
                AnyQuantizer::$t(q)
            }
        }
    )*};
}
from_model!(
    KMeans,
    RqKMeans,
    RqVae,
    Fsq,
    ResidualFsq,
    FsqAutoencoder,
    ProductQuantizer
);
