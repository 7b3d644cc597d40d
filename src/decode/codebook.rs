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

/// Buffers a [`CodebookScorer`] borrows from one search and gives back:
/// its residuals and its converted (non-f32) queries.
pub(crate) type ScorerScratch = (Vec<f32>, Vec<f32>);

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
    /// The query-conversion buffer kept for the next scorer while the
    /// queries are borrowed.
    spare: Vec<f32>,
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
        CodebookScorer::with_scratch(rq, queries, metric, (Vec::new(), Vec::new()))
            .map_err(|(e, _)| e)
    }

    /// [`CodebookScorer::new`] reusing `scratch` (residuals, converted
    /// queries) from an earlier scorer's [`CodebookScorer::into_scratch`];
    /// on error the buffers come back with it.
    pub(crate) fn with_scratch(
        rq: &'a RqKMeans,
        queries: Embeddings<'a>,
        metric: ScoreMetric,
        scratch: ScorerScratch,
    ) -> std::result::Result<CodebookScorer<'a>, (Error, ScorerScratch)> {
        let (resid, mut buf) = scratch;
        let checked = queries.expect_dim(rq.dim()).and_then(|()| {
            if queries.rows() == 0 {
                return Err(Error::Empty { what: "queries" });
            }
            match queries.as_f32() {
                Some(s) => check_finite("queries", s, rq.dim(), 0).map(|()| Some(s)),
                None => queries.block(0, queries.rows(), &mut buf).map(|_| None),
            }
        });
        let (queries, spare) = match checked {
            Ok(Some(s)) => (Cow::Borrowed(s), buf),
            Ok(None) => (Cow::Owned(buf), Vec::new()),
            Err(e) => return Err((e, (resid, buf))),
        };
        Ok(CodebookScorer {
            rq,
            metric,
            queries,
            sets: rq.sets(),
            resid,
            spare,
        })
    }

    /// The buffers to hand to the next [`CodebookScorer::with_scratch`].
    pub(crate) fn into_scratch(self) -> ScorerScratch {
        match self.queries {
            Cow::Owned(v) => (self.resid, v),
            Cow::Borrowed(_) => (self.resid, self.spare),
        }
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
