//! Semantic-ID prefix n-grams (Zheng et al. 2025, arXiv 2504.02137; after
//! Singh et al. 2023): a ranking model embeds an item as the sum of one
//! embedding per prefix of its ID, so items that share a coarse prefix share
//! parameters ("semantically meaningful collisions") while the full ID
//! stays distinct.

use crate::error::{Error, Result, invalid};

/// The prefix tokens of `id` (one per prefix length `1..=L`) into `out`
/// (cleared first).
///
/// Prefix `(c_1, …, c_l)` is numbered in mixed radix,
/// `v_l = v_{l−1} · K_l + c_l`, after the prefixes of every shorter length
/// (offset `Σ_{j<l} Π_{m≤j} K_m`): every prefix of every length gets its
/// own token, `0..Σ_l Π_{m≤l} K_m`. With `table_size`, tokens beyond it are
/// hashed into `0..table_size` (SplitMix64 of the exact token, modulo the
/// size), as an embedding table of fixed size needs; the short prefixes
/// keep their exact tokens while they fit.
///
/// ```
/// use semid::sid::prefix_ngrams;
/// let mut t = Vec::new();
/// prefix_ngrams(&[2, 1, 3], &[4, 4, 4], None, &mut t)?;
/// assert_eq!(t, vec![2, 4 + 2 * 4 + 1, 4 + 16 + (2 * 4 + 1) * 4 + 3]);
/// # Ok::<(), semid::Error>(())
/// ```
///
/// Errors: `id` and `codebook_sizes` of different lengths, or empty; a code
/// not below its size; a size of 0 or above 65 536; `table_size` of 0.
pub fn prefix_ngrams(
    id: &[u16],
    codebook_sizes: &[usize],
    table_size: Option<u64>,
    out: &mut Vec<u64>,
) -> Result<()> {
    out.clear();
    if id.is_empty() {
        return Err(Error::Empty { what: "ID" });
    }
    crate::error::expect_len(
        "codebook sizes (one per ID token)",
        id.len(),
        codebook_sizes.len(),
    )?;
    crate::data::check_vocab("codebook_sizes", codebook_sizes, 1)?;
    crate::data::check_tokens(id, id.len(), codebook_sizes)?;
    if table_size == Some(0) {
        return Err(invalid("table_size", "is 0; an embedding table needs rows"));
    }
    // u128: 64 levels of 65 536 codes overflow even this, so saturate and
    // hash (every exact token below the table size is still exact).
    let (mut v, mut offset, mut count) = (0u128, 0u128, 1u128);
    for (&c, &k) in id.iter().zip(codebook_sizes) {
        v = v.saturating_mul(k as u128).saturating_add(c as u128);
        count = count.saturating_mul(k as u128);
        let exact = offset.saturating_add(v);
        let token = match table_size {
            Some(t) if exact >= t as u128 => splitmix(exact) % t,
            _ => u64::try_from(exact).unwrap_or_else(|_| splitmix(exact)),
        };
        out.push(token);
        offset = offset.saturating_add(count);
    }
    Ok(())
}

/// SplitMix64's finaliser over both halves of `x`.
fn splitmix(x: u128) -> u64 {
    let mut z = (x as u64) ^ ((x >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_of_every_length_is_distinct() {
        let sizes = [3usize, 4, 2];
        let mut seen = std::collections::HashSet::new();
        let mut t = Vec::new();
        let mut per_len = [0usize; 3];
        for a in 0..3u16 {
            for b in 0..4u16 {
                for c in 0..2u16 {
                    prefix_ngrams(&[a, b, c], &sizes, None, &mut t).unwrap();
                    for (l, &tok) in t.iter().enumerate() {
                        if seen.insert(tok) {
                            per_len[l] += 1;
                        }
                    }
                }
            }
        }
        // 3 + 12 + 24 prefixes, tokens exactly 0..39.
        assert_eq!(per_len, [3, 12, 24]);
        assert_eq!(seen.len(), 39);
        assert!(seen.iter().all(|&x| x < 39));
        // A table of 10: short prefixes exact, the rest hashed into range.
        prefix_ngrams(&[2, 3, 1], &sizes, Some(10), &mut t).unwrap();
        assert_eq!(t[0], 2);
        assert!(t.iter().all(|&x| x < 10));
        // Deterministic.
        let mut u = Vec::new();
        prefix_ngrams(&[2, 3, 1], &sizes, Some(10), &mut u).unwrap();
        assert_eq!(t, u);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut t = Vec::new();
        assert!(prefix_ngrams(&[], &[], None, &mut t).is_err());
        assert!(prefix_ngrams(&[1, 2], &[4], None, &mut t).is_err());
        assert!(prefix_ngrams(&[4], &[4], None, &mut t).is_err());
        assert!(prefix_ngrams(&[1], &[0], None, &mut t).is_err());
        assert!(prefix_ngrams(&[1], &[4], Some(0), &mut t).is_err());
        // Huge IDs saturate and hash instead of overflowing.
        let id = vec![65_535u16; 64];
        prefix_ngrams(&id, &[65_536; 64], Some(1 << 20), &mut t).unwrap();
        assert_eq!(t.len(), 64);
        assert!(t.iter().all(|&x| x < 1 << 20));
    }
}
