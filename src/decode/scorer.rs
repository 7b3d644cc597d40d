//! The scorer contract: next-token log-scores for the live beams.

use crate::error::{Error, Result};

/// The live beams of one decoding step, handed to a [`Scorer`].
///
/// A scorer sees the query side (a user's history, a query embedding)
/// through its own fields, indexed by `queries[b]`; `Beams` carries only
/// what the search decides: the prefixes, and where each beam came from.
#[derive(Clone, Copy, Debug)]
pub struct Beams<'a> {
    /// Position being decoded (0 = first token).
    pub level: usize,
    /// Scores to write per beam: the codebook size at `level`.
    pub codebook_size: usize,
    /// Number of queries in the batch.
    pub n_queries: usize,
    /// Prefix of every beam, row-major `n_beams × level` (empty at level 0).
    pub prefixes: &'a [u16],
    /// Query (index within the batch) of every beam; beams of one query are
    /// contiguous and queries ascend.
    pub queries: &'a [u32],
    /// Parent of every beam: its index among the previous step's beams
    /// (empty at level 0, where beam `b` is query `b`'s root). A scorer with
    /// per-beam state (a transformer's KV cache) reorders that state by
    /// `parents`, then appends each beam's last token.
    pub parents: &'a [u32],
}

impl Beams<'_> {
    /// Number of live beams.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queries.len()
    }
    /// True when no beam is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
    /// Checks the fields agree (prefix and parent lengths, query indices
    /// below `n_queries`): the built-in scorers call it so that a hand-made
    /// `Beams` gives an error, not a panic.
    pub fn check(&self) -> Result<()> {
        let want = self.queries.len().saturating_mul(self.level);
        if self.prefixes.len() != want {
            return Err(Error::Shape {
                what: "beam prefixes (beams × level)",
                expected: want,
                got: self.prefixes.len(),
            });
        }
        let want = if self.level == 0 {
            0
        } else {
            self.queries.len()
        };
        if self.parents.len() != want {
            return Err(Error::Shape {
                what: "beam parents (one per beam; none at level 0)",
                expected: want,
                got: self.parents.len(),
            });
        }
        if let Some(&q) = self.queries.iter().find(|&&q| q as usize >= self.n_queries) {
            return Err(Error::Shape {
                what: "beam query index (below n_queries)",
                expected: self.n_queries,
                got: q as usize,
            });
        }
        Ok(())
    }

    /// Prefix of beam `b`.
    ///
    /// # Panics
    /// If `b >= len()` or the prefixes are shorter than `len() × level`.
    #[must_use]
    pub fn prefix(&self, b: usize) -> &[u16] {
        &self.prefixes[b * self.level..(b + 1) * self.level]
    }
}

/// Next-token log-scores for a batch of beams.
pub trait Scorer {
    /// Appends `beams.len() × beams.codebook_size` log-scores to `out` (empty on
    /// entry; the decoder owns it and keeps its capacity): row `b` holds the
    /// score of every token after beam `b`'s prefix. Higher is better; NaN
    /// and −∞ mean "never".
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()>;
}

impl<S: Scorer + ?Sized> Scorer for &mut S {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        (**self).score(beams, out)
    }
}
