//! Compressed child offsets: 2 bytes per node plus 4 per 64 nodes.

use crate::error::Result;
use crate::layout::{SectionReader, SectionWriter};
use crate::mapped::Shared;

/// Where a file keeps one [`Offsets`]: narrow (`base` and `rel`
/// sections) or wide (the `u32` offsets in `base`).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct OffsetsV3 {
    narrow: bool,
    base: u32,
    rel: u32,
}

/// Nodes per block of narrow offsets.
pub(super) const OFF_BLOCK: usize = 64;

/// Monotone offsets `o[0..=n]`, stored as a `u32` base per 64 entries plus
/// `u16` deltas when every delta fits (2 bytes per node), else as `u32`.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Offsets {
    Narrow { base: Shared<u32>, rel: Shared<u16> },
    Wide(Shared<u32>),
}

impl Offsets {
    pub(super) fn new(o: Vec<u32>) -> Offsets {
        let narrow = o
            .chunks(OFF_BLOCK)
            .all(|c| c[c.len() - 1] - c[0] <= u16::MAX as u32);
        if !narrow {
            return Offsets::Wide(Shared::from_vec(o));
        }
        let base: Vec<u32> = o.chunks(OFF_BLOCK).map(|c| c[0]).collect();
        let rel = o
            .iter()
            .enumerate()
            .map(|(i, &v)| (v - base[i / OFF_BLOCK]) as u16)
            .collect();
        Offsets::Narrow {
            base: Shared::from_vec(base),
            rel: Shared::from_vec(rel),
        }
    }

    #[inline(always)]
    pub(super) fn get(&self, i: usize) -> usize {
        match self {
            Offsets::Narrow { base, rel } => {
                base[i / OFF_BLOCK].wrapping_add(rel[i] as u32) as usize
            }
            Offsets::Wide(o) => o[i] as usize,
        }
    }

    /// Prefetches what [`Offsets::get`] reads for entries `i` and `i + 1`
    /// (`i` must be below [`Offsets::len`]).
    #[inline(always)]
    pub(super) fn prefetch(&self, i: usize) {
        match self {
            Offsets::Narrow { base, rel } => {
                crate::kernels::prefetch(&base[i / OFF_BLOCK]);
                crate::kernels::prefetch(&rel[i]);
            }
            Offsets::Wide(o) => crate::kernels::prefetch(&o[i]),
        }
    }

    /// Whether a narrow form has one base per block (a file could say
    /// otherwise); [`Offsets::get`] relies on it.
    pub(super) fn blocks_ok(&self) -> bool {
        match self {
            Offsets::Narrow { base, rel } => base.len() == rel.len().div_ceil(OFF_BLOCK),
            Offsets::Wide(_) => true,
        }
    }

    /// Calls `f` with entries `from..len()` in order, reading each block's
    /// base once ([`Offsets::blocks_ok`] must hold).
    #[inline(always)]
    pub(super) fn for_each_from(&self, from: usize, mut f: impl FnMut(usize)) {
        match self {
            Offsets::Narrow { base, rel } => {
                for (b, chunk) in rel.chunks(OFF_BLOCK).enumerate() {
                    let skip = from.saturating_sub(b * OFF_BLOCK).min(chunk.len());
                    let base = base[b];
                    for &r in &chunk[skip..] {
                        f(base.wrapping_add(u32::from(r)) as usize);
                    }
                }
            }
            Offsets::Wide(o) => o.iter().skip(from).for_each(|&v| f(v as usize)),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Offsets::Narrow { rel, .. } => rel.len(),
            Offsets::Wide(o) => o.len(),
        }
    }

    pub(super) fn to_vec(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.get(i) as u32).collect()
    }

    /// Adds the arrays to a file.
    pub(super) fn write<'a>(&'a self, w: &mut SectionWriter<'a>) -> OffsetsV3 {
        match self {
            Offsets::Narrow { base, rel } => OffsetsV3 {
                narrow: true,
                base: w.push(base),
                rel: w.push(rel),
            },
            Offsets::Wide(o) => OffsetsV3 {
                narrow: false,
                base: w.push(o),
                rel: u32::MAX,
            },
        }
    }

    /// The offsets a file holds, their checksums checked (lengths are
    /// checked by the trie's structure check).
    pub(super) fn read(m: OffsetsV3, r: &SectionReader, what: &str) -> Result<Offsets> {
        Ok(if m.narrow {
            Offsets::Narrow {
                base: r.get_summed(m.base, None, what)?,
                rel: r.get_summed(m.rel, None, what)?,
            }
        } else {
            Offsets::Wide(r.get_summed(m.base, None, what)?)
        })
    }

    pub(super) fn bytes(&self) -> usize {
        match self {
            Offsets::Narrow { base, rel } => base.len() * 4 + rel.len() * 2,
            Offsets::Wide(o) => o.len() * 4,
        }
    }
}
