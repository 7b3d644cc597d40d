//! One part of a [`SidMap`](super::SidMap): items, their IDs, the rows in
//! ID order and an item → row lookup.
//!
//! A map is an immutable, shared base part (behind an `Arc`, so a clone of
//! the map copies only the delta) plus a small delta part that inserts go
//! to; the delta is merged into a new base when it passes a threshold
//! ([`SidMap::compact`](super::SidMap::compact)).

use std::collections::HashMap;

use super::super::sort::merge_sorted;
use crate::mapped::Buf;

/// Items, IDs and orders of one part. Rows are numbered from 0 within the
/// part.
#[derive(Clone, Debug, Default)]
pub(super) struct Part {
    /// External item of every row.
    pub(super) items: Buf<u32>,
    /// IDs, row-major `rows × id_len`.
    pub(super) ids: Buf<u16>,
    /// Rows sorted by (ID, row).
    pub(super) sorted: Buf<u32>,
    /// Item → row.
    pub(super) lookup: Lookup,
}

/// Item → row of a part.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lookup {
    /// `items[r] == first + r`: a dense catalog needs no table.
    Dense {
        /// Item of row 0.
        first: u32,
    },
    /// `item << 32 | row`, ascending (8 bytes per item): the base of a map
    /// whose items are not one consecutive run.
    Sorted(Buf<u64>),
    /// A hash table: the delta, which grows one batch at a time.
    Hash(HashMap<u32, u32>),
}

impl Default for Lookup {
    fn default() -> Lookup {
        Lookup::Dense { first: 0 }
    }
}

impl Part {
    /// An empty delta part.
    pub(super) fn delta() -> Part {
        Part {
            lookup: Lookup::Hash(HashMap::new()),
            ..Part::default()
        }
    }

    /// A base part of `items` with `ids` and `sorted` (rows in ID order):
    /// builds the lookup. [`Part::duplicate`] tells whether an item is
    /// listed twice.
    pub(super) fn base(items: Vec<u32>, ids: Vec<u16>, sorted: Vec<u32>) -> Part {
        let dense = items.first().is_none_or(|&f| {
            items
                .iter()
                .enumerate()
                .all(|(r, &it)| it as u64 == f as u64 + r as u64)
        });
        let lookup = if dense {
            Lookup::Dense {
                first: items.first().copied().unwrap_or(0),
            }
        } else {
            let mut pairs: Vec<u64> = items
                .iter()
                .enumerate()
                .map(|(r, &it)| u64::from(it) << 32 | r as u64)
                .collect();
            pairs.sort_unstable();
            Lookup::Sorted(pairs.into())
        };
        Part {
            items: items.into(),
            ids: ids.into(),
            sorted: sorted.into(),
            lookup,
        }
    }

    /// An item listed twice in a base part, if any.
    pub(super) fn duplicate(&self) -> Option<u32> {
        match &self.lookup {
            Lookup::Sorted(p) => p
                .windows(2)
                .find(|w| w[0] >> 32 == w[1] >> 32)
                .map(|w| (w[0] >> 32) as u32),
            Lookup::Dense { .. } | Lookup::Hash(_) => None,
        }
    }

    /// Rows.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// The ID of row `r`: empty for a row out of range, which only a
    /// damaged file opened without [`SidMap::verify`](super::SidMap::verify)
    /// can give.
    #[inline]
    pub(super) fn id(&self, r: u32, id_len: usize) -> &[u16] {
        let at = r as usize * id_len;
        // A branch to a cold call, not a select: a select on the address
        // makes every later load wait for this one (inserts and builds ran
        // 30–40% slower with `unwrap_or`).
        match self.ids.get(at..at + id_len) {
            Some(id) => id,
            None => no_row(),
        }
    }

    /// The item of row `r` (`u32::MAX` for a row out of range, as
    /// [`Part::id`]).
    #[inline]
    pub(super) fn item(&self, r: u32) -> u32 {
        match self.items.get(r as usize) {
            Some(&it) => it,
            None => no_item(),
        }
    }

    /// The row of `item`, if it is in this part.
    pub(super) fn row_of(&self, item: u32) -> Option<u32> {
        match &self.lookup {
            Lookup::Dense { first } => {
                let r = item.checked_sub(*first)?;
                ((r as usize) < self.items.len()).then_some(r)
            }
            Lookup::Sorted(p) => {
                let i = p.partition_point(|&e| ((e >> 32) as u32) < item);
                let e = *p.get(i)?;
                ((e >> 32) as u32 == item).then_some(e as u32)
            }
            Lookup::Hash(h) => h.get(&item).copied(),
        }
    }

    /// The range of `sorted` whose IDs start with `prefix`.
    pub(super) fn prefix_range(&self, prefix: &[u16], id_len: usize) -> (usize, usize) {
        let p = prefix.len();
        let id = |r: u32| self.id(r, id_len).get(..p).unwrap_or(&[]);
        let lo = self.sorted.partition_point(|&r| id(r) < prefix);
        let hi = lo + self.sorted[lo..].partition_point(|&r| id(r) == prefix);
        (lo, hi)
    }

    /// Adds to `counts[i]` the rows whose ID starts with `keys[i]` (all of
    /// one length), for keys in ascending order: each search gallops on
    /// from where the previous one ended, so a sorted batch of m keys costs
    /// O(m log(n / m)) comparisons instead of m full binary searches.
    pub(super) fn count_sorted(&self, keys: &[&[u16]], id_len: usize, counts: &mut [usize]) {
        // Only inserts count, and they run on a verified map, whose rows
        // are all in range: index directly (the bounds checks are
        // predicted branches, which keep many probes in flight).
        let (sorted, ids) = (&*self.sorted, &*self.ids);
        let mut at = 0;
        for (key, c) in keys.iter().zip(counts.iter_mut()) {
            let p = key.len();
            let id = |i: usize| {
                let r = sorted[i] as usize * id_len;
                &ids[r..r + p]
            };
            let rest = sorted.len() - at;
            let lo = at + gallop(rest, |i| id(at + i) < *key);
            let hi = lo + gallop(sorted.len() - lo, |i| id(lo + i) == *key);
            *c += hi - lo;
            at = lo;
        }
    }

    /// Appends a batch to the delta: `items` with `ids`, and `order`, the
    /// batch's rows sorted by (ID, row). `index`: update the item lookup
    /// (not needed when the delta is compacted right after).
    pub(super) fn append(
        &mut self,
        items: &[u32],
        ids: &[u16],
        order: &[u32],
        id_len: usize,
        index: bool,
    ) {
        let old = self.items.len() as u32;
        self.items.to_mut().extend_from_slice(items);
        self.ids.to_mut().extend_from_slice(ids);
        if let (true, Lookup::Hash(h)) = (index, &mut self.lookup) {
            h.reserve(items.len());
            for (i, &it) in items.iter().enumerate() {
                h.insert(it, old + i as u32);
            }
        }
        if self.sorted.is_empty() {
            self.sorted = order.to_vec().into();
        } else {
            let new: Vec<u32> = order.iter().map(|&r| r + old).collect();
            self.sorted = merge_sorted(&self.sorted, &new, &self.ids, id_len).into();
        }
    }

    /// This part followed by `delta` as one base part.
    pub(super) fn merged(&self, delta: &Part, id_len: usize) -> Part {
        let n = self.items.len();
        let mut items = Vec::with_capacity(n + delta.items.len());
        items.extend_from_slice(&self.items);
        items.extend_from_slice(&delta.items);
        let mut ids = Vec::with_capacity(self.ids.len() + delta.ids.len());
        ids.extend_from_slice(&self.ids);
        ids.extend_from_slice(&delta.ids);
        let shifted: Vec<u32> = delta.sorted.iter().map(|&r| r + n as u32).collect();
        let sorted = merge_sorted(&self.sorted, &shifted, &ids, id_len);
        Part::base(items, ids, sorted)
    }

    /// Bytes held on the heap (the lookup counted at its capacity; arrays
    /// in a mapped file count 0).
    pub(super) fn bytes(&self) -> usize {
        let lookup = match &self.lookup {
            Lookup::Dense { .. } => 0,
            Lookup::Sorted(p) => p.heap_bytes(),
            // hashbrown: 8 bytes per bucket plus one control byte.
            Lookup::Hash(h) => h.capacity() * 9,
        };
        self.items.heap_bytes() + self.ids.heap_bytes() + self.sorted.heap_bytes() + lookup
    }
}

/// The ID of a row out of range: none.
#[cold]
#[inline(never)]
fn no_row() -> &'static [u16] {
    &[]
}

/// The item of a row out of range.
#[cold]
#[inline(never)]
fn no_item() -> u32 {
    u32::MAX
}

/// The first `i` in `0..n` where `pred` turns false (`pred` holds on a
/// prefix), probing 1, 2, 4, … ahead before a binary search: cheap when the
/// answer is near the start.
fn gallop(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut step) = (0usize, 1usize);
    while lo + step <= n && pred(lo + step - 1) {
        lo += step;
        step *= 2;
    }
    // pred holds below `lo`; it fails at lo + step - 1 (or that is past n).
    let hi = (lo + step - 1).min(n);
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a) / 2;
        if pred(mid) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::gallop;

    #[test]
    fn gallop_finds_the_partition_point() {
        for n in 0..70 {
            for p in 0..=n {
                assert_eq!(gallop(n, |i| i < p), p, "n {n} p {p}");
            }
        }
    }
}
