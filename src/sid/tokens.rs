//! [`TokenMap`]: semantic-ID codes ⇄ a sequence model's token ids.
//!
//! A model that emits semantic IDs writes each level's code as one token
//! of its own vocabulary. semid's own models put the levels side by side
//! ([`TokenMap::contiguous`]); a language model given new tokens
//! (`<a_12>`, `<b_34>`, …) has them at some offset
//! ([`TokenMap::with_offsets`]) or scattered ([`TokenMap::from_table`]).
//! Every consumer (training masks, beam-search scorers, HuggingFace logits
//! processors) goes through this one type.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sid::Trie;

/// The special tokens of a model vocabulary, each optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    /// Begins every sequence (the first input of a decoder).
    pub bos: Option<u32>,
    /// Ends a generated ID; the only token allowed after a whole ID.
    pub eos: Option<u32>,
    /// Padding (never predicted).
    pub pad: Option<u32>,
    /// Between the items of a history, where the model uses one.
    pub sep: Option<u32>,
}

impl SpecialTokens {
    fn iter(&self) -> impl Iterator<Item = (&'static str, u32)> {
        [
            ("bos", self.bos),
            ("eos", self.eos),
            ("pad", self.pad),
            ("sep", self.sep),
        ]
        .into_iter()
        .filter_map(|(n, t)| t.map(|t| (n, t)))
    }
}

/// Which tokens may come next after a generated token sequence
/// ([`TokenMap::allowed_next`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Exactly the tokens written to the output (none: the sequence is
    /// not a prefix of any valid ID, so nothing may follow).
    Tokens,
    /// The sequence already spells a whole ID and the map has no EOS
    /// token: the scores are to be left as they are.
    Free,
}

/// Semantic-ID codes ⇄ model tokens: level `l` code `c` is token
/// `table[l][c]`, distinct within a level; plus optional special tokens.
///
/// Memory: `levels × vocab_size` `u32` for the reverse map (4 levels of a
/// 150k-token LLM vocabulary: 2.4 MB), plus the forward table.
///
/// ```
/// use semid::sid::{SpecialTokens, TokenMap};
/// // Three levels of 256 codes and a suffix level of 4, then BOS.
/// let map = TokenMap::contiguous(&[256, 256, 256, 4], true, false)?;
/// assert_eq!(map.encode(&[3, 0, 7, 1])?, vec![3, 256, 519, 769]);
/// assert_eq!(map.decode(&[3, 256, 519])?, vec![3, 0, 7]);
/// assert_eq!(map.specials().bos, Some(772));
/// assert_eq!(map.vocab_size(), 773);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTokenMap")]
pub struct TokenMap {
    /// Model token of every code, per level.
    table: Vec<Vec<u32>>,
    /// Model vocabulary size (every token is below it).
    vocab_size: usize,
    specials: SpecialTokens,
    /// Code + 1 of every model token, per level (0: not a code of that
    /// level). Rebuilt from `table`, never stored.
    #[serde(skip)]
    back: Vec<Vec<u32>>,
}

/// A [`TokenMap`] as stored: checked by [`TokenMap::from_table`] when read.
#[derive(Deserialize)]
struct RawTokenMap {
    table: Vec<Vec<u32>>,
    vocab_size: usize,
    specials: SpecialTokens,
}

impl TryFrom<RawTokenMap> for TokenMap {
    type Error = Error;
    fn try_from(r: RawTokenMap) -> Result<TokenMap> {
        TokenMap::from_table(r.table, r.vocab_size, r.specials)
    }
}

impl TokenMap {
    /// semid's own layout: level `l` code `c` is `Σ sizes[..l] + c`; then
    /// BOS (if `bos`) and EOS (if `eos`) take the next ids. `sizes` may be
    /// larger than a trie's vocabulary (room for items inserted later).
    pub fn contiguous(sizes: &[usize], bos: bool, eos: bool) -> Result<TokenMap> {
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut next = 0usize;
        for &s in sizes {
            offsets.push(u32::try_from(next).map_err(|_| too_big(next))?);
            next += s;
        }
        let mut specials = SpecialTokens::default();
        let mut take = |on: bool| {
            on.then(|| {
                next += 1;
                next as u32 - 1
            })
        };
        specials.bos = take(bos);
        specials.eos = take(eos);
        TokenMap::with_offsets(sizes, &offsets, next, specials)
    }

    /// Level `l` code `c` is token `offsets[l] + c` of a vocabulary of
    /// `vocab_size` tokens (new SID tokens appended to a language model's
    /// vocabulary, for instance).
    pub fn with_offsets(
        sizes: &[usize],
        offsets: &[u32],
        vocab_size: usize,
        specials: SpecialTokens,
    ) -> Result<TokenMap> {
        if offsets.len() != sizes.len() {
            return Err(Error::Shape {
                what: "token map offsets (one per level)",
                expected: sizes.len(),
                got: offsets.len(),
            });
        }
        let table = sizes
            .iter()
            .zip(offsets)
            .map(|(&s, &o)| (0..s as u64).map(move |c| (o as u64 + c).min(u32::MAX as u64) as u32))
            .map(Iterator::collect)
            .collect();
        TokenMap::from_table(table, vocab_size, specials)
    }

    /// Level `l` code `c` is token `table[l][c]`; tokens are distinct
    /// within a level and below `vocab_size`; special tokens are below
    /// `vocab_size`, distinct, and no level's code.
    pub fn from_table(
        table: Vec<Vec<u32>>,
        vocab_size: usize,
        specials: SpecialTokens,
    ) -> Result<TokenMap> {
        let mut map = TokenMap {
            table,
            vocab_size,
            specials,
            back: Vec::new(),
        };
        map.rebuild()?;
        Ok(map)
    }

    /// Checks every invariant and builds the reverse map.
    fn rebuild(&mut self) -> Result<()> {
        let bad = |reason: String| Error::InvalidConfig {
            field: "token map",
            reason,
        };
        if self.table.is_empty() {
            return Err(Error::Empty {
                what: "token map levels",
            });
        }
        if self.vocab_size == 0 || self.vocab_size > u32::MAX as usize {
            return Err(bad(format!(
                "vocab_size is {}; it must be in 1..2^32",
                self.vocab_size
            )));
        }
        let v = self.vocab_size;
        let mut back = Vec::with_capacity(self.table.len());
        for (l, row) in self.table.iter().enumerate() {
            if row.is_empty() || row.len() > u16::MAX as usize + 1 {
                return Err(bad(format!(
                    "level {l} has {} codes; a level holds 1..=65536",
                    row.len()
                )));
            }
            let mut b = vec![0u32; v];
            for (c, &t) in row.iter().enumerate() {
                let slot = b.get_mut(t as usize).ok_or_else(|| {
                    bad(format!(
                        "level {l} code {c} is token {t}, outside the vocabulary 0..{v}"
                    ))
                })?;
                if *slot != 0 {
                    return Err(bad(format!(
                        "level {l}: codes {} and {c} are both token {t}; give each code its own token",
                        *slot - 1
                    )));
                }
                *slot = c as u32 + 1;
            }
            back.push(b);
        }
        let specials: Vec<(&str, u32)> = self.specials.iter().collect();
        for (i, &(name, t)) in specials.iter().enumerate() {
            if t as usize >= v {
                return Err(bad(format!(
                    "the {name} token is {t}, outside the vocabulary 0..{v}"
                )));
            }
            if let Some((other, _)) = specials[..i].iter().find(|s| s.1 == t) {
                return Err(bad(format!("{other} and {name} are both token {t}")));
            }
            if let Some(l) = back.iter().position(|b| b[t as usize] != 0) {
                return Err(bad(format!(
                    "the {name} token {t} is also a code of level {l}; special tokens must be apart from the codes"
                )));
            }
        }
        self.back = back;
        Ok(())
    }

    /// Tokens per ID.
    pub fn levels(&self) -> usize {
        self.table.len()
    }

    /// Codes per level.
    pub fn codebook_sizes(&self) -> Vec<usize> {
        self.table.iter().map(Vec::len).collect()
    }

    /// The model's vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The special tokens.
    pub fn specials(&self) -> SpecialTokens {
        self.specials
    }

    /// The model tokens of level `level`'s codes, in code order; `None`
    /// when `level >= self.levels()`.
    pub fn level_tokens(&self, level: usize) -> Option<&[u32]> {
        self.table.get(level).map(Vec::as_slice)
    }

    /// `Some(o)` when level `level`'s codes are the tokens `o..o + size`
    /// (a slice of the logits then holds the level's scores).
    pub fn level_offset(&self, level: usize) -> Option<u32> {
        let row = self.table.get(level)?;
        let o = row[0];
        row.iter()
            .enumerate()
            .all(|(c, &t)| t as u64 == o as u64 + c as u64)
            .then_some(o)
    }

    /// The token of code `code` at `level`.
    pub fn token(&self, level: usize, code: u16) -> Result<u32> {
        let row = self.table.get(level).ok_or(Error::Shape {
            what: "ID level (token map levels)",
            expected: self.levels(),
            got: level + 1,
        })?;
        row.get(code as usize)
            .copied()
            .ok_or(Error::TokenOutOfRange {
                row: 0,
                level,
                token: code,
                codebook_size: row.len(),
            })
    }

    /// The code of model token `token` at `level`, if it is one.
    pub fn code(&self, level: usize, token: u32) -> Option<u16> {
        let c = *self.back.get(level)?.get(token as usize)?;
        (c != 0).then(|| (c - 1) as u16)
    }

    /// Appends the tokens of an ID or ID prefix (`id.len() ≤ levels`).
    pub fn encode_into(&self, id: &[u16], out: &mut Vec<u32>) -> Result<()> {
        if id.len() > self.levels() {
            return Err(Error::Shape {
                what: "ID length (at most the token map's levels)",
                expected: self.levels(),
                got: id.len(),
            });
        }
        for (l, &c) in id.iter().enumerate() {
            out.push(self.token(l, c)?);
        }
        Ok(())
    }

    /// The tokens of an ID or ID prefix.
    pub fn encode(&self, id: &[u16]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(id.len());
        self.encode_into(id, &mut out)?;
        Ok(out)
    }

    /// The ID prefix spelled by `tokens` (token `l` read at level `l`).
    pub fn decode(&self, tokens: &[u32]) -> Result<Vec<u16>> {
        if tokens.len() > self.levels() {
            return Err(Error::Shape {
                what: "token sequence length (at most the token map's levels)",
                expected: self.levels(),
                got: tokens.len(),
            });
        }
        tokens
            .iter()
            .enumerate()
            .map(|(l, &t)| {
                self.code(l, t).ok_or_else(|| Error::InvalidConfig {
                    field: "tokens",
                    reason: format!("token {t} at position {l} is not a code of level {l}"),
                })
            })
            .collect()
    }

    /// Checks that every code of `trie` has a token: the map has the
    /// trie's levels, each with at least the trie's codes.
    pub fn check_covers(&self, trie: &Trie) -> Result<()> {
        let (ours, theirs) = (self.codebook_sizes(), trie.codebook_sizes());
        if ours.len() != theirs.len() || ours.iter().zip(theirs).any(|(o, t)| o < t) {
            return Err(Error::InvalidConfig {
                field: "token map",
                reason: format!(
                    "its codes per level {ours:?} do not cover the trie's vocabulary {theirs:?}; build the map from the index it serves"
                ),
            });
        }
        Ok(())
    }

    /// Writes to `out` (cleared first) the tokens that may follow
    /// `generated` (the tokens emitted so far for one ID) under `trie`:
    /// the next level's allowed codes; after a whole ID (and anything
    /// after it), EOS, so that a finished row stays finite; nothing if
    /// `generated` is not a prefix of a valid ID. Returns
    /// [`Next::Free`] after a whole ID when the map has no EOS.
    ///
    /// The map must cover the trie ([`TokenMap::check_covers`]); codes the
    /// map lacks are skipped.
    pub fn allowed_next(&self, trie: &Trie, generated: &[u32], out: &mut Vec<u32>) -> Next {
        out.clear();
        let depth = trie.id_len();
        let mut s = trie.start();
        for (l, &t) in generated.iter().take(depth).enumerate() {
            match self.code(l, t).and_then(|c| trie.step(s, c)) {
                Some(n) => s = n,
                None => return Next::Tokens,
            }
        }
        if generated.len() >= depth {
            return match self.specials.eos {
                Some(e) => {
                    out.push(e);
                    Next::Tokens
                }
                None => Next::Free,
            };
        }
        let row = &self.table[generated.len()];
        out.extend(
            trie.allowed(s)
                .iter()
                .filter_map(|&c| row.get(c as usize).copied()),
        );
        Next::Tokens
    }

    /// The valid-ID training mask of one position: fills `row` (one score
    /// per model token, `vocab_size` long) with −∞ and writes 0 at the
    /// tokens of the codes that may follow the ID prefix `prefix` in
    /// `trie` (all −∞ if `prefix` is no valid prefix). Added to the logits
    /// before the softmax, it renormalises the model over valid IDs.
    pub fn mask_into(&self, trie: &Trie, prefix: &[u16], row: &mut [f32]) -> Result<()> {
        if row.len() != self.vocab_size {
            return Err(Error::Shape {
                what: "mask row (the model vocabulary)",
                expected: self.vocab_size,
                got: row.len(),
            });
        }
        if prefix.len() >= self.levels().min(trie.id_len()) {
            return Err(Error::Shape {
                what: "ID prefix length (below the levels)",
                expected: self.levels().min(trie.id_len()).saturating_sub(1),
                got: prefix.len(),
            });
        }
        row.fill(f32::NEG_INFINITY);
        if let Some(s) = trie.walk(prefix) {
            let tokens = &self.table[prefix.len()];
            for &c in trie.allowed(s) {
                if let Some(&t) = tokens.get(c as usize) {
                    row[t as usize] = 0.0;
                }
            }
        }
        Ok(())
    }

    /// Level `level`'s scores out of one row of model scores (`vocab_size`
    /// long): appends `scores[token(level, c)]` for every code `c`.
    pub fn gather_level(&self, level: usize, scores: &[f32], out: &mut Vec<f32>) -> Result<()> {
        if scores.len() < self.vocab_size {
            return Err(Error::Shape {
                what: "score row (the model vocabulary)",
                expected: self.vocab_size,
                got: scores.len(),
            });
        }
        let row = self.table.get(level).ok_or(Error::Shape {
            what: "ID level (token map levels)",
            expected: self.levels(),
            got: level + 1,
        })?;
        match self.level_offset(level) {
            Some(o) => out.extend_from_slice(&scores[o as usize..o as usize + row.len()]),
            None => out.extend(row.iter().map(|&t| scores[t as usize])),
        }
        Ok(())
    }
}

fn too_big(n: usize) -> Error {
    Error::InvalidConfig {
        field: "token map",
        reason: format!("{n} tokens do not fit u32 token ids"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie() -> Trie {
        // IDs (0,1) (0,2) (2,0) over vocab [3, 3].
        Trie::from_ids(&[0, 1, 0, 2, 2, 0], 2, &[3, 3]).unwrap()
    }

    #[test]
    fn contiguous_round_trip_and_specials() {
        let m = TokenMap::contiguous(&[3, 4], true, true).unwrap();
        assert_eq!(m.vocab_size(), 9);
        assert_eq!(m.specials().bos, Some(7));
        assert_eq!(m.specials().eos, Some(8));
        assert_eq!(m.level_offset(1), Some(3));
        assert_eq!(m.level_tokens(1), Some(&[3, 4, 5, 6][..]));
        assert_eq!(m.level_tokens(2), None);
        assert_eq!(m.level_offset(2), None);
        for a in 0..3u16 {
            for b in 0..4u16 {
                let t = m.encode(&[a, b]).unwrap();
                assert_eq!(t, vec![a as u32, 3 + b as u32]);
                assert_eq!(m.decode(&t).unwrap(), vec![a, b]);
            }
        }
        assert!(m.code(0, 3).is_none());
        assert!(m.decode(&[7]).is_err());
        assert!(matches!(
            m.encode(&[0, 4]),
            Err(Error::TokenOutOfRange { level: 1, .. })
        ));
        assert!(m.encode(&[0, 0, 0]).is_err());
    }

    #[test]
    fn bad_tables_are_refused() {
        let sp = SpecialTokens::default();
        assert!(TokenMap::from_table(vec![vec![1, 1]], 4, sp).is_err());
        assert!(TokenMap::from_table(vec![vec![1, 4]], 4, sp).is_err());
        assert!(TokenMap::from_table(vec![], 4, sp).is_err());
        assert!(TokenMap::from_table(vec![vec![]], 4, sp).is_err());
        let eos_is_code = SpecialTokens { eos: Some(1), ..sp };
        assert!(TokenMap::from_table(vec![vec![0, 1]], 4, eos_is_code).is_err());
        let twice = SpecialTokens {
            bos: Some(3),
            pad: Some(3),
            ..sp
        };
        assert!(TokenMap::from_table(vec![vec![0, 1]], 4, twice).is_err());
        assert!(TokenMap::with_offsets(&[2, 2], &[0], 4, sp).is_err());
        // Same token at two levels is allowed (digits shared by levels).
        assert!(TokenMap::from_table(vec![vec![0, 1], vec![1, 0]], 2, sp).is_ok());
    }

    #[test]
    fn allowed_next_follows_the_trie() {
        let t = trie();
        let m = TokenMap::with_offsets(
            &[3, 3],
            &[10, 20],
            30,
            SpecialTokens {
                eos: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        m.check_covers(&t).unwrap();
        let mut out = Vec::new();
        assert_eq!(m.allowed_next(&t, &[], &mut out), Next::Tokens);
        assert_eq!(out, vec![10, 12]);
        m.allowed_next(&t, &[10], &mut out);
        assert_eq!(out, vec![21, 22]);
        m.allowed_next(&t, &[11], &mut out);
        assert!(out.is_empty(), "(1, ..) is no valid prefix");
        m.allowed_next(&t, &[5], &mut out);
        assert!(out.is_empty(), "5 is no level-0 code");
        m.allowed_next(&t, &[12, 20], &mut out);
        assert_eq!(out, vec![2]);
        m.allowed_next(&t, &[12, 20, 2], &mut out);
        assert_eq!(out, vec![2]);
        let free = TokenMap::with_offsets(&[3, 3], &[10, 20], 30, Default::default()).unwrap();
        assert_eq!(free.allowed_next(&t, &[12, 20], &mut out), Next::Free);
    }

    #[test]
    fn mask_and_gather() {
        let t = trie();
        let m = TokenMap::contiguous(&[3, 3], true, false).unwrap();
        let mut row = vec![1.0; m.vocab_size()];
        m.mask_into(&t, &[0], &mut row).unwrap();
        let open: Vec<usize> = (0..row.len()).filter(|&i| row[i] == 0.0).collect();
        assert_eq!(open, vec![4, 5]);
        assert!(row.iter().all(|&x| x == 0.0 || x == f32::NEG_INFINITY));
        m.mask_into(&t, &[1], &mut row).unwrap();
        assert!(row.iter().all(|&x| x == f32::NEG_INFINITY));
        assert!(m.mask_into(&t, &[0, 1], &mut row).is_err());
        assert!(m.mask_into(&t, &[], &mut row[1..]).is_err());
        let scores: Vec<f32> = (0..7).map(|i| i as f32).collect();
        let mut out = Vec::new();
        m.gather_level(1, &scores, &mut out).unwrap();
        assert_eq!(out, vec![3.0, 4.0, 5.0]);
        let scattered =
            TokenMap::from_table(vec![vec![6, 0, 3], vec![1, 2]], 7, Default::default()).unwrap();
        out.clear();
        scattered.gather_level(0, &scores, &mut out).unwrap();
        assert_eq!(out, vec![6.0, 0.0, 3.0]);
        assert!(
            scattered.check_covers(&t).is_err(),
            "level 1 has 2 < 3 codes"
        );
    }
}
