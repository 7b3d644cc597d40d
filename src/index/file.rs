//! [`SemanticIndex`] files.
//!
//! Version 3 (written): the quantizer's model file, the map's settings and
//! the trie's shape in a checksummed directory, then every array of the
//! map and the trie, aligned, so that [`SemanticIndex::open`] searches the
//! file where it lies (a memory map) instead of decoding it. Version 1
//! (read only): the quantizer's and the map's model files; the trie is
//! rebuilt. docs/FORMAT.md has both.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use super::SemanticIndex;
use crate::error::{Result, in_file, io_at};
use crate::format::{
    ModelFile, ModelKind, decode_file, invalid_payload, is_laid_out, read_whole, sealed::Codec,
    to_invalid,
};
use crate::layout::{self, SectionWriter};
use crate::mapped::Region;
use crate::quantize::{AnyQuantizer, Quantizer};
use crate::sid::{SidMap, SidMapV3, Trie, TrieV3};

/// How much of an index file [`SemanticIndex::open_with`] and
/// [`SemanticIndex::from_bytes_with`] check before they hand the index
/// out.
///
/// Either way a file that is truncated, or damaged in its header, its
/// directory or the trie's offsets and tokens, is refused, and no later
/// call reads out of bounds or panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Check {
    /// The header, the directory (its checksum, the settings, every
    /// array's place and length), and the trie's structure: offsets
    /// monotone and in range, child tokens ascending and within their
    /// vocabulary. That is what every search walks; the map's arrays and
    /// the trie's item list are not read, so opening costs about one pass
    /// over the trie's structure (2–5 bytes per ID) and resident memory
    /// grows only with what searches and lookups touch.
    ///
    /// A file changed after it was written, in an array this does not
    /// read, can give wrong items or IDs (never a panic or an
    /// out-of-bounds read; [`SemanticIndex::id_of`] returns no ID that
    /// breaks the vocabulary). [`SemanticIndex::verify`] checks the rest;
    /// the first insert runs it.
    #[default]
    Structure,
    /// Every byte (each array's checksum, the padding) and every
    /// invariant of the map and the trie, and that the trie holds exactly
    /// the map's IDs: what [`ModelFile::load`] and
    /// [`ModelFile::from_bytes`] do. Costs a pass over the whole file and a
    /// trie build.
    Full,
}

/// The directory of a version-3 index file.
#[derive(serde::Serialize, serde::Deserialize)]
struct IndexV3 {
    /// The quantizer's own model file.
    quantizer: Vec<u8>,
    map: SidMapV3,
    trie: TrieV3,
}

impl SemanticIndex {
    /// Opens an index file in place: the file is memory-mapped and checked
    /// as [`Check::Structure`] says, and searches read its arrays where
    /// they lie. Opening a 10M-item index takes milliseconds, not the
    /// seconds of [`ModelFile::load`] (docs/SCALE.md).
    ///
    /// The file must not be changed while the index (or a clone of it)
    /// is alive: semid's own [`ModelFile::save`] writes a new file and
    /// renames it over the old one, which is safe; rewriting the file in
    /// place, or truncating it, is not (as for every memory-mapped
    /// reader: fst, ripgrep). Inserts go to memory; the file is never
    /// written through.
    ///
    /// Index files of format version 1 (written by earlier builds) are read and decoded
    /// as [`ModelFile::load`] does.
    ///
    /// ```
    /// use semid::{Check, ModelFile, SemanticIndex};
    /// # use semid::{Embeddings, Par, RqKMeans, RqKMeansConfig, synthetic};
    /// # use semid::sid::CollisionPolicy;
    /// # let cfg = synthetic::MixtureConfig { n: 500, dim: 8, ..Default::default() };
    /// # let data = synthetic::hierarchical_mixture(&cfg);
    /// # let x = Embeddings::new(&data, 8)?;
    /// # let (index, _, _) = SemanticIndex::fit::<RqKMeans>(
    /// #     &RqKMeansConfig::new(2, 16).seed(1), x, CollisionPolicy::AppendSuffix, Par::Seq)?;
    /// let path = std::env::temp_dir().join(format!("semid-open-{}.semid", std::process::id()));
    /// index.save(&path)?;
    /// let opened = SemanticIndex::open(&path)?;
    /// assert_eq!(opened, index);
    /// // Everything else, when you want it checked:
    /// opened.verify()?;
    /// # drop(opened);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), semid::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<SemanticIndex> {
        SemanticIndex::open_with(path, Check::Structure)
    }

    /// [`SemanticIndex::open`] with the [`Check`] to run.
    pub fn open_with(path: impl AsRef<Path>, check: Check) -> Result<SemanticIndex> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(io_at(path))?;
        let region = Region::map(&file).map_err(io_at(path))?;
        let bytes = region.bytes();
        if !is_laid_out(bytes) {
            return SemanticIndex::decode_file(bytes).map_err(in_file(path));
        }
        SemanticIndex::from_region(Arc::new(region), check).map_err(in_file(path))
    }

    /// Reads an index from model-file bytes, checked as `check` says. The
    /// bytes are copied once into an aligned buffer that the index's
    /// arrays then live in; nothing is decoded.
    /// ([`ModelFile::from_bytes`] is this with [`Check::Full`].)
    pub fn from_bytes_with(bytes: &[u8], check: Check) -> Result<SemanticIndex> {
        if !is_laid_out(bytes) {
            return SemanticIndex::decode_file(bytes);
        }
        SemanticIndex::from_region(Arc::new(Region::copy(bytes)), check)
    }

    fn from_region(region: Arc<Region>, check: Check) -> Result<SemanticIndex> {
        let full = check == Check::Full;
        let (d, r): (IndexV3, _) = layout::open(region, ModelKind::SemanticIndex, full)?;
        let quantizer = AnyQuantizer::from_bytes(&d.quantizer)?;
        let map = SidMap::read_v3(&d.map, &r, full)?;
        check_vocab_prefix(&quantizer, &map)?;
        let trie = Trie::read_v3(&d.trie, &r, full)?;
        if trie.codebook_sizes() != map.codebook_sizes() {
            return Err(invalid_payload(format!(
                "the trie's vocabulary {:?} is not the map's {:?}",
                trie.codebook_sizes(),
                map.codebook_sizes()
            )));
        }
        if trie.stats().items != map.len() {
            return Err(invalid_payload(format!(
                "the trie holds {} items, the map {}",
                trie.stats().items,
                map.len()
            )));
        }
        let index = SemanticIndex {
            quantizer,
            map,
            trie,
        };
        if full {
            index.check_trie()?;
        }
        Ok(index)
    }

    /// Checks every invariant of the index: the map's ([`SidMap::verify`]),
    /// the trie's ([`Trie::validate`]), and that the trie holds exactly the
    /// map's IDs and items. What [`Check::Full`] adds to
    /// [`Check::Structure`] (but for the checksums, which belong to the
    /// file: open it again with [`Check::Full`] to check those). Cost: a
    /// pass over every array and a trie build. The first insert into an
    /// index opened with [`Check::Structure`] runs it.
    pub fn verify(&self) -> Result<()> {
        self.map.check()?;
        self.trie.validate()?;
        self.check_trie()?;
        self.map.mark_verified();
        Ok(())
    }

    /// The trie is the one the map builds (the map checked).
    fn check_trie(&self) -> Result<()> {
        if self.map.is_empty() || Trie::build_checked(&self.map) != self.trie {
            return Err(invalid_payload("the trie does not hold the map's IDs"));
        }
        Ok(())
    }
}

/// The map's first vocabularies are the quantizer's codebook sizes.
fn check_vocab_prefix(quantizer: &AnyQuantizer, map: &SidMap) -> Result<()> {
    let sizes = quantizer.codebook_sizes();
    if map.codebook_sizes().get(..sizes.len()) != Some(&sizes[..]) {
        return Err(invalid_payload(format!(
            "the map's vocabulary {:?} does not start with the quantizer's codebook sizes {sizes:?}",
            map.codebook_sizes()
        )));
    }
    Ok(())
}

/// Version 1's payload: two whole model files.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SemanticIndexV1 {
    /// The quantizer's model file (any quantizer kind).
    quantizer: Vec<u8>,
    /// The [`SidMap`]'s model file.
    map: Vec<u8>,
}

impl Codec for SemanticIndex {
    fn encode_file(&self) -> Result<Vec<u8>> {
        Ok(self.file_parts()?.concat())
    }

    fn file_parts(&self) -> Result<Vec<Cow<'_, [u8]>>> {
        if self.pending() > 0 || self.trie.pending() > 0 {
            // Written compacted; the copy is dropped once written out.
            let mut c = self.clone();
            c.compact()?;
            let parts = c.file_parts()?;
            return Ok(parts
                .into_iter()
                .map(|p| Cow::Owned(p.into_owned()))
                .collect());
        }
        let mut w = SectionWriter::default();
        let map = self.map.write_v3(&mut w);
        let trie = self.trie.write_v3(&mut w);
        let dir = IndexV3 {
            quantizer: self.quantizer.to_bytes()?,
            map,
            trie,
        };
        w.finish(ModelKind::SemanticIndex, dir)
    }

    fn decode_file(bytes: &[u8]) -> Result<Self> {
        if is_laid_out(bytes) {
            return SemanticIndex::from_bytes_with(bytes, Check::Full);
        }
        let p: SemanticIndexV1 = decode_file(ModelKind::SemanticIndex, bytes)?;
        let quantizer = AnyQuantizer::from_bytes(&p.quantizer)?;
        let map = SidMap::from_bytes(&p.map)?;
        check_vocab_prefix(&quantizer, &map)?;
        let trie = Trie::build(&map).map_err(to_invalid)?;
        Ok(SemanticIndex {
            quantizer,
            map,
            trie,
        })
    }

    fn read_path(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(io_at(path))?;
        let mut head = [0u8; 12];
        let n = file.read(&mut head).map_err(io_at(path))?;
        if !is_laid_out(&head[..n]) {
            return SemanticIndex::decode_file(&read_whole(path)?);
        }
        // A laid-out file has no payload limit: its arrays are read as they
        // are, into one aligned buffer of the file's size.
        let len = file.metadata().map_err(io_at(path))?.len();
        let len = usize::try_from(len)
            .map_err(|_| invalid_payload(format!("a file of {len} bytes does not fit memory")))?;
        let region = std::io::Seek::rewind(&mut file)
            .and_then(|()| Region::read(&mut file, len))
            .map_err(io_at(path))?;
        SemanticIndex::from_region(Arc::new(region), Check::Full)
    }
}
