//! Compressed child offsets: 2 bytes per node plus 4 per 64 nodes.

/// Nodes per block of narrow offsets.
pub(super) const OFF_BLOCK: usize = 64;

/// Monotone offsets `o[0..=n]`, stored as a `u32` base per 64 entries plus
/// `u16` deltas when every delta fits (2 bytes per node), else as `u32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Offsets {
    Narrow { base: Vec<u32>, rel: Vec<u16> },
    Wide(Vec<u32>),
}

impl Offsets {
    pub(super) fn new(o: Vec<u32>) -> Offsets {
        let narrow = o
            .chunks(OFF_BLOCK)
            .all(|c| c[c.len() - 1] - c[0] <= u16::MAX as u32);
        if !narrow {
            return Offsets::Wide(o);
        }
        let base: Vec<u32> = o.chunks(OFF_BLOCK).map(|c| c[0]).collect();
        let rel = o
            .iter()
            .enumerate()
            .map(|(i, &v)| (v - base[i / OFF_BLOCK]) as u16)
            .collect();
        Offsets::Narrow { base, rel }
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> usize {
        match self {
            Offsets::Narrow { base, rel } => (base[i / OFF_BLOCK] + rel[i] as u32) as usize,
            Offsets::Wide(o) => o[i] as usize,
        }
    }

    /// Prefetches what [`Offsets::get`] reads for entries `i` and `i + 1`
    /// (`i` must be below [`Offsets::len`]).
    #[inline]
    pub(super) fn prefetch(&self, i: usize) {
        match self {
            Offsets::Narrow { base, rel } => {
                crate::kernels::prefetch(&base[i / OFF_BLOCK]);
                crate::kernels::prefetch(&rel[i]);
            }
            Offsets::Wide(o) => crate::kernels::prefetch(&o[i]),
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

    pub(super) fn bytes(&self) -> usize {
        match self {
            Offsets::Narrow { base, rel } => base.len() * 4 + rel.len() * 2,
            Offsets::Wide(o) => o.len() * 4,
        }
    }
}
