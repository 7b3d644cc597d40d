//! Retrieval with no trained model: score prefixes by how well their
//! partial reconstruction matches a query embedding.

use std::borrow::Cow;

use super::{Beams, Scorer};
use crate::data::{Embeddings, check_finite};
use crate::error::{Error, Result};
use crate::kernels::CentroidSet;
use crate::quantize::{Quantizer, RqKMeans};

/// How [`CodebookScorer`] compares a query with a reconstruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScoreMetric {
    /// Squared L2: the level-`l` score of token `t` is
    /// `‖r‖² − ‖r − c_t‖² = 2 r·c_t − ‖c_t‖²`, where `r` is the query minus
    /// the prefix's partial reconstruction. Scores telescope: an ID's total
    /// is `‖q‖² − ‖q − x̂‖²`, so ranking by total ranks by distance to the
    /// reconstruction `x̂` (FAISS's residual beam criterion).
    #[default]
    L2,
    /// Inner product: the score of token `t` is `q·c_t`; an ID's total is
    /// `q·x̂`.
    InnerProduct,
}

/// Scores beams of query embeddings against an [`RqKMeans`]'s codebooks, so
/// semid retrieves items by semantic ID with no trained sequence model.
///
/// Levels beyond the quantizer's (a [`crate::sid::CollisionPolicy::AppendSuffix`]
/// suffix) score 0 for every token: items sharing a code keep catalog order.
#[derive(Debug)]
pub struct CodebookScorer<'a> {
    rq: &'a RqKMeans,
    metric: ScoreMetric,
    /// Row-major queries: borrowed when they are f32 already.
    queries: Cow<'a, [f32]>,
    /// One set per level: norms and the packed copy the kernel reads
    /// (the quantizer's own, packed once).
    sets: &'a [CentroidSet<'static>],
    resid: Vec<f32>,
}

impl<'a> CodebookScorer<'a> {
    /// A scorer for `queries` (one row per query, the quantizer's
    /// dimension). f32 queries are read in place, half-precision ones
    /// converted once.
    ///
    /// Errors: wrong dimension, no query, NaN/Inf in a query.
    pub fn new(
        rq: &'a RqKMeans,
        queries: Embeddings<'a>,
        metric: ScoreMetric,
    ) -> Result<CodebookScorer<'a>> {
        queries.expect_dim(rq.dim())?;
        if queries.rows() == 0 {
            return Err(Error::Empty { what: "queries" });
        }
        let q = match queries.as_f32() {
            Some(s) => {
                check_finite("queries", s, rq.dim(), 0)?;
                Cow::Borrowed(s)
            }
            None => {
                let mut buf = Vec::new();
                queries.block(0, queries.rows(), &mut buf)?;
                Cow::Owned(buf)
            }
        };
        Ok(CodebookScorer {
            rq,
            metric,
            queries: q,
            sets: rq.sets(),
            resid: Vec::new(),
        })
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.queries.len() / self.rq.dim()
    }
}

impl Scorer for CodebookScorer<'_> {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        beams.check()?;
        let n = self.n_queries();
        if beams.n_queries != n {
            return Err(Error::Shape {
                what: "queries in the batch (scorer's queries)",
                expected: n,
                got: beams.n_queries,
            });
        }
        let l = beams.level;
        if l >= self.rq.levels() {
            out.resize(beams.len() * beams.codebook_size, 0.0);
            return Ok(());
        }
        let (d, k) = (self.rq.dim(), self.rq.codebook_size(l));
        if beams.codebook_size != k {
            return Err(Error::Shape {
                what: "vocabulary at this level (codebook size vs. constraint)",
                expected: k,
                got: beams.codebook_size,
            });
        }
        self.resid.clear();
        for b in 0..beams.len() {
            let q = beams.queries[b] as usize;
            let start = self.resid.len();
            self.resid
                .extend_from_slice(&self.queries[q * d..(q + 1) * d]);
            if self.metric == ScoreMetric::L2 {
                let r = &mut self.resid[start..];
                for (i, &t) in beams.prefix(b).iter().enumerate() {
                    let ki = self.rq.codebook_size(i);
                    if t as usize >= ki {
                        return Err(Error::TokenOutOfRange {
                            row: b,
                            level: i,
                            token: t,
                            codebook_size: ki,
                        });
                    }
                    let cw = &self.rq.codebook(i)[t as usize * d..(t as usize + 1) * d];
                    for (a, c) in r.iter_mut().zip(cw) {
                        *a -= c;
                    }
                }
            }
        }
        let alpha = if self.metric == ScoreMetric::L2 {
            2.0
        } else {
            1.0
        };
        self.sets[l].scaled_dots(&self.resid, alpha, out);
        if self.metric == ScoreMetric::L2 {
            for row in out.chunks_exact_mut(k) {
                for (o, &c) in row.iter_mut().zip(&self.sets[l].norms) {
                    *o -= c;
                }
            }
        }
        Ok(())
    }
}
