//! Sorting semantic IDs: LSD radix sorts over token tuples, shared by the
//! map and the trie.

use crate::data::Codes;

/// Rows `0..n` of `tokens` (rows of `len`) in lexicographic order, stable
/// (ties keep row order): an LSD radix sort, one counting pass per position.
pub(crate) fn radix_order(tokens: &[u16], len: usize, vocab: &[usize], n: usize) -> Vec<u32> {
    let bits = position_bits(len, vocab);
    let total: u32 = bits.iter().sum();
    if total <= 64 && n >= 1024 {
        return packed_sorted(tokens, len, &bits, total, n)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    let widest = vocab.iter().copied().max().unwrap_or(1);
    if n.saturating_mul(8) < widest {
        // Few rows over a wide vocabulary: counting passes would cost
        // O(vocab) each; a stable comparison sort is cheaper.
        order.sort_by(|&a, &b| {
            let (a, b) = (a as usize * len, b as usize * len);
            tokens[a..a + len].cmp(&tokens[b..b + len])
        });
        return order;
    }
    let mut next = vec![0u32; n];
    let mut count = Vec::new();
    for p in (0..len).rev() {
        let v = vocab.get(p).copied().unwrap_or(1 << 16).max(1);
        count.clear();
        count.resize(v + 1, 0usize);
        for &r in &order {
            count[tokens[r as usize * len + p] as usize + 1] += 1;
        }
        for i in 0..v {
            count[i + 1] += count[i];
        }
        for &r in &order {
            let t = tokens[r as usize * len + p] as usize;
            next[count[t]] = r;
            count[t] += 1;
        }
        std::mem::swap(&mut order, &mut next);
    }
    order
}

/// Bits per ID position for `vocab` (0 for a vocabulary of 1).
pub(crate) fn position_bits(len: usize, vocab: &[usize]) -> Vec<u32> {
    (0..len)
        .map(|p| {
            let v = vocab.get(p).copied().unwrap_or(1 << 16).max(1);
            usize::BITS - (v - 1).leading_zeros()
        })
        .collect()
}

/// Rows of `tokens` as `(packed ID, row)` sorted by ID then row, for IDs
/// that pack into `total ≤ 64` bits (`bits[p]` per position, position 0
/// most significant): LSD radix over 8-bit digits reading the keys
/// sequentially. When `total ≤ 32` the row rides in the low half of one
/// u64, halving the memory traffic.
pub(crate) fn packed_sorted(
    tokens: &[u16],
    len: usize,
    bits: &[u32],
    total: u32,
    n: usize,
) -> Vec<(u64, u32)> {
    let pack = |id: &[u16]| {
        id.iter().zip(bits).fold(
            0u64,
            |acc, (&t, &b)| if b == 0 { acc } else { (acc << b) | t as u64 },
        )
    };
    let passes = total.div_ceil(8);
    if total <= 32 {
        let mut keys: Vec<u64> = tokens
            .chunks_exact(len)
            .take(n)
            .enumerate()
            .map(|(r, id)| (pack(id) << 32) | r as u64)
            .collect();
        radix_u64(&mut keys, |e| e >> 32, passes);
        return keys.into_iter().map(|e| (e >> 32, e as u32)).collect();
    }
    let mut keys: Vec<(u64, u32)> = tokens
        .chunks_exact(len)
        .take(n)
        .enumerate()
        .map(|(r, id)| (pack(id), r as u32))
        .collect();
    radix_u64(&mut keys, |e| e.0, passes);
    keys
}

/// Stable LSD radix sort of `v` by the low `8 × passes` bits of `key(e)`.
fn radix_u64<T: Copy + Default>(v: &mut Vec<T>, key: impl Fn(T) -> u64, passes: u32) {
    let n = v.len();
    let mut next = vec![T::default(); n];
    let mut count = [0usize; 257];
    for pass in 0..passes {
        let shift = pass * 8;
        count.fill(0);
        for &e in v.iter() {
            count[((key(e) >> shift) & 0xff) as usize + 1] += 1;
        }
        if count[1..].contains(&n) {
            continue; // one digit value for every key: order unchanged
        }
        for i in 0..256 {
            count[i + 1] += count[i];
        }
        for &e in v.iter() {
            let d = ((key(e) >> shift) & 0xff) as usize;
            next[count[d]] = e;
            count[d] += 1;
        }
        std::mem::swap(v, &mut next);
    }
}

/// Calls `f(start, end)` for every run of equal codes in `order` (rows
/// sorted by code).
pub(super) fn for_groups(order: &[u32], codes: &Codes, mut f: impl FnMut(usize, usize)) {
    let mut s = 0;
    while s < order.len() {
        let c = codes.row(order[s] as usize);
        let mut e = s + 1;
        while e < order.len() && codes.row(order[e] as usize) == c {
            e += 1;
        }
        f(s, e);
        s = e;
    }
}

/// Merges two row lists sorted by (ID, row) over `ids` into one.
pub(super) fn merge_sorted(a: &[u32], b: &[u32], ids: &[u16], len: usize) -> Vec<u32> {
    let id = |r: u32| &ids[r as usize * len..(r as usize + 1) * len];
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if (id(b[j]), b[j]) < (id(a[i]), a[i]) {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}
