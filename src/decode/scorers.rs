//! Simple scorers: a per-query score table and a closure.

use super::{Beams, Scorer};
use crate::error::{Error, Result};

/// Prefix-independent scores from a table: query `q`, level `l`, token `t`
/// scores `table[q][l][t]`, whatever the prefix. For tests and benchmarks
/// (and for models whose levels are scored independently).
#[derive(Clone, Debug)]
pub struct TableScorer {
    n_queries: usize,
    vocab: Vec<usize>,
    /// Start of each level's block within one query's row.
    level_off: Vec<usize>,
    row: usize,
    table: Vec<f32>,
}

impl TableScorer {
    /// `table` is row-major `n_queries × Σ vocab`: for each query, level 0's
    /// `vocab[0]` scores, then level 1's, and so on.
    pub fn new(n_queries: usize, vocab: &[usize], table: Vec<f32>) -> Result<TableScorer> {
        if n_queries == 0 || vocab.is_empty() {
            return Err(Error::Empty {
                what: "score table",
            });
        }
        let mut level_off = Vec::with_capacity(vocab.len());
        let mut row = 0usize;
        for &v in vocab {
            level_off.push(row);
            row = row.saturating_add(v);
        }
        let want = row.saturating_mul(n_queries);
        if table.len() != want {
            return Err(Error::Shape {
                what: "score table length (queries × Σ vocab)",
                expected: want,
                got: table.len(),
            });
        }
        Ok(TableScorer {
            n_queries,
            vocab: vocab.to_vec(),
            level_off,
            row,
            table,
        })
    }
}

impl Scorer for TableScorer {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        beams.check()?;
        if beams.n_queries != self.n_queries {
            return Err(Error::Shape {
                what: "queries in the batch (table rows)",
                expected: self.n_queries,
                got: beams.n_queries,
            });
        }
        let l = beams.level;
        if l >= self.vocab.len() || self.vocab[l] != beams.codebook_size {
            return Err(Error::Shape {
                what: "vocabulary at this level (table vs. constraint)",
                expected: self.vocab.get(l).copied().unwrap_or(0),
                got: beams.codebook_size,
            });
        }
        let (v, off) = (self.vocab[l], self.level_off[l]);
        for &q in beams.queries {
            let s = q as usize * self.row + off;
            out.extend_from_slice(&self.table[s..s + v]);
        }
        Ok(())
    }
}

/// Scores from a closure `f(query, prefix, out)` that fills the `vocab`
/// scores of one beam. Handy for tests and for wrapping a model that scores
/// one sequence at a time.
pub struct FnScorer<F>(pub F);

impl<F: FnMut(usize, &[u16], &mut [f32]) -> Result<()>> Scorer for FnScorer<F> {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        beams.check()?;
        let v = beams.codebook_size;
        if v == 0 {
            return Ok(());
        }
        out.resize(beams.len() * v, 0.0);
        for (b, o) in out.chunks_exact_mut(v).enumerate() {
            (self.0)(beams.queries[b] as usize, beams.prefix(b), o)?;
        }
        Ok(())
    }
}

impl<F> std::fmt::Debug for FnScorer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnScorer")
    }
}
