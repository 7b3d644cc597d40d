//! Dense retrieval baselines with the same result type as SID retrieval
//! ([`Hits`]): exact k-nearest neighbours by blocked GEMM ([`ExactKnn`],
//! always available) and an HNSW index over `hnsw_rs` (`Hnsw`, feature
//! `ann`).
//!
//! Scores are `−‖q − x‖²` (higher is better), so dense and SID hits rank
//! the same way and feed the same metrics.

use crate::data::Embeddings;
use crate::error::{Error, Result, invalid};
use crate::hits::Hits;
use crate::kernels::{BLOCK_ROWS, TopK, dots_packed, pack_panels_into, row_norms_into};
use crate::par::Par;
use crate::par::for_each_block2;

/// Items scanned per GEMM chunk (bounds scratch to 256 × 4096 floats).
const ITEM_CHUNK: usize = 4096;

/// Exact k-nearest-neighbour search by squared L2 distance.
///
/// Cost per query: `2·n·d` flops through faer GEMM, in blocks of 256
/// queries × 4096 items. Ties go to the lower item index. Results do not
/// depend on the thread count.
#[derive(Clone, Debug)]
pub struct ExactKnn {
    data: Vec<f32>,
    norms: Vec<f32>,
    dim: usize,
}

impl ExactKnn {
    /// Indexes `items` (item `i` is row `i`); copies them as f32.
    ///
    /// Errors: no rows, NaN/Inf values, more than `u32::MAX` rows.
    pub fn new(items: Embeddings<'_>) -> Result<ExactKnn> {
        if items.rows() == 0 {
            return Err(Error::Empty { what: "items" });
        }
        if items.rows() > u32::MAX as usize {
            return Err(Error::Shape {
                what: "items (at most u32::MAX)",
                expected: u32::MAX as usize,
                got: items.rows(),
            });
        }
        let mut buf = Vec::new();
        let data = items.block(0, items.rows(), &mut buf)?.to_vec();
        let mut norms = vec![0f32; items.rows()];
        row_norms_into(&data, items.dim(), &mut norms);
        Ok(ExactKnn {
            data,
            norms,
            dim: items.dim(),
        })
    }

    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// True when there is no item (never, for a built index).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// The `k` nearest items of every query, nearest first.
    ///
    /// Errors: `k == 0`, `k > len()`, no query, wrong dimension, NaN/Inf in
    /// a query.
    pub fn search(&self, queries: Embeddings<'_>, k: usize, par: Par) -> Result<Hits> {
        check_search(queries, self.dim, k, self.len())?;
        let nq = queries.rows();
        let mut buf = Vec::new();
        let q = queries.block(0, nq, &mut buf)?;
        let mut items = vec![0u32; nq * k];
        let mut scores = vec![0f32; nq * k];
        for_each_block2(
            par,
            nq,
            BLOCK_ROWS,
            &mut items,
            k,
            &mut scores,
            k,
            || (Vec::new(), Vec::new(), TopK::new(k)),
            |(dots, packed, top), q0, it, sc| {
                let rows = it.len() / k;
                let qb = &q[q0 * self.dim..(q0 + rows) * self.dim];
                let mut tops: Vec<TopK> = vec![top.clone(); rows];
                for t in &mut tops {
                    t.clear();
                }
                for c0 in (0..self.len()).step_by(ITEM_CHUNK) {
                    let c1 = (c0 + ITEM_CHUNK).min(self.len());
                    let w = c1 - c0;
                    pack_panels_into(&self.data[c0 * self.dim..c1 * self.dim], self.dim, packed);
                    dots.resize(rows * w, 0.0);
                    dots_packed(qb, self.dim, packed, w, -2.0, &mut dots[..rows * w]);
                    for (r, t) in tops.iter_mut().enumerate() {
                        let row = &dots[r * w..(r + 1) * w];
                        let mut thr = t.threshold();
                        for (j, (&g, &n)) in row.iter().zip(&self.norms[c0..c1]).enumerate() {
                            let v = g + n;
                            if v < thr {
                                t.push(v, (c0 + j) as u32);
                                thr = t.threshold();
                            }
                        }
                    }
                }
                for (r, t) in tops.iter().enumerate() {
                    let qv = &qb[r * self.dim..(r + 1) * self.dim];
                    let qn: f32 = qv.iter().map(|v| v * v).sum();
                    for (j, &(v, id)) in t.items().iter().enumerate() {
                        it[r * k + j] = id;
                        sc[r * k + j] = -(v + qn).max(0.0);
                    }
                }
            },
        );
        Ok(hits_from(nq, k, &items, &scores))
    }
}

fn check_search(queries: Embeddings<'_>, dim: usize, k: usize, n: usize) -> Result<()> {
    queries.expect_dim(dim)?;
    if queries.rows() == 0 {
        return Err(Error::Empty { what: "queries" });
    }
    if k == 0 {
        return Err(invalid("k", "is 0; ask for at least 1 neighbour"));
    }
    if k > n {
        return Err(invalid(
            "k",
            format!("is {k}, more than the {n} indexed items"),
        ));
    }
    Ok(())
}

fn hits_from(nq: usize, k: usize, items: &[u32], scores: &[f32]) -> Hits {
    let mut h = Hits::new();
    h.clear(0);
    for q in 0..nq {
        for j in 0..k {
            h.push(items[q * k + j], scores[q * k + j], &[]);
        }
        h.end_query();
    }
    h
}

#[cfg(feature = "ann")]
pub use hnsw::{Hnsw, HnswConfig};

#[cfg(feature = "ann")]
mod hnsw {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use hnsw_rs::prelude::{DistL2, Hnsw as Inner};

    use super::check_search;
    use crate::data::Embeddings;
    use crate::error::{Error, Result, invalid};
    use crate::hits::Hits;
    use crate::par::Par;

    /// HNSW parameters.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HnswConfig {
        /// Links per node and layer (`M`), 2..=256. Default 16.
        pub m: usize,
        /// Candidate list size while building. Default 200.
        pub ef_construction: usize,
        /// Candidate list size while searching (raised to `k` if smaller).
        /// Default 64.
        pub ef_search: usize,
        /// Insert in parallel (faster; the graph then depends on thread
        /// timing). Default false: sequential insertion gives the same graph
        /// on every run.
        pub parallel: bool,
    }

    impl Default for HnswConfig {
        fn default() -> Self {
            HnswConfig {
                m: 16,
                ef_construction: 200,
                ef_search: 64,
                parallel: false,
            }
        }
    }

    /// An HNSW index over `hnsw_rs` (L2). Every input is checked before it
    /// reaches `hnsw_rs` (it panics on NaN and exits the process on
    /// `M > 256`), and any panic left is caught and returned as an error.
    pub struct Hnsw {
        inner: Inner<'static, f32, DistL2>,
        dim: usize,
        n: usize,
        ef_search: usize,
    }

    impl std::fmt::Debug for Hnsw {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Hnsw")
                .field("dim", &self.dim)
                .field("n", &self.n)
                .field("ef_search", &self.ef_search)
                .finish()
        }
    }

    fn caught(what: &str) -> Error {
        invalid("hnsw", format!("hnsw_rs panicked during {what}"))
    }

    impl Hnsw {
        /// Builds the index over `items` (item `i` is row `i`).
        ///
        /// Errors: no rows, NaN/Inf, `m` outside 2..=256, `ef_construction`
        /// or `ef_search` of 0.
        pub fn build(items: Embeddings<'_>, config: &HnswConfig) -> Result<Hnsw> {
            if !(2..=256).contains(&config.m) {
                return Err(invalid("m", format!("is {}; use 2..=256", config.m)));
            }
            if config.ef_construction == 0 || config.ef_search == 0 {
                return Err(invalid("ef_construction", "and ef_search must be ≥ 1"));
            }
            let n = items.rows();
            if n == 0 {
                return Err(Error::Empty { what: "items" });
            }
            if n > u32::MAX as usize {
                return Err(Error::Shape {
                    what: "items (at most u32::MAX)",
                    expected: u32::MAX as usize,
                    got: n,
                });
            }
            let mut buf = Vec::new();
            let data = items.block(0, n, &mut buf)?;
            let d = items.dim();
            let layers = 16.min(((n as f64).ln().ceil() as usize).max(1));
            let cfg = *config;
            let inner = catch_unwind(AssertUnwindSafe(|| {
                let h = Inner::<f32, DistL2>::new(cfg.m, n, layers, cfg.ef_construction, DistL2 {});
                if cfg.parallel {
                    let rows: Vec<(&[f32], usize)> = data
                        .chunks_exact(d)
                        .enumerate()
                        .map(|(i, r)| (r, i))
                        .collect();
                    h.parallel_insert_slice(&rows);
                } else {
                    for (i, r) in data.chunks_exact(d).enumerate() {
                        h.insert_slice((r, i));
                    }
                }
                h
            }))
            .map_err(|_| caught("build"))?;
            let mut inner = inner;
            inner.set_searching_mode(true);
            Ok(Hnsw {
                inner,
                dim: d,
                n,
                ef_search: config.ef_search,
            })
        }

        /// Number of items.
        #[must_use]
        pub fn len(&self) -> usize {
            self.n
        }

        /// True when there is no item (never, for a built index).
        #[must_use]
        pub fn is_empty(&self) -> bool {
            self.n == 0
        }

        /// Approximate `k` nearest items of every query, nearest first;
        /// scores are `−‖q − x‖²`. A query may get fewer than `k` hits
        /// when the graph search finds fewer.
        ///
        /// Queries run on up to `par.threads()` threads; the hits do not
        /// depend on the thread count.
        ///
        /// Errors: as [`super::ExactKnn::search`].
        pub fn search(&self, queries: Embeddings<'_>, k: usize, par: Par) -> Result<Hits> {
            check_search(queries, self.dim, k, self.n)?;
            let nq = queries.rows();
            let mut buf = Vec::new();
            let q = queries.block(0, nq, &mut buf)?;
            let ef = self.ef_search.max(k);
            // Each query's neighbours, searched in parallel (the graph is
            // read-only, so a query's result does not depend on the thread).
            let mut found: Vec<Option<Vec<(u32, f32)>>> = vec![None; nq];
            crate::par::for_each_item(par, &mut found, |i, out| {
                let qv = &q[i * self.dim..(i + 1) * self.dim];
                *out = catch_unwind(AssertUnwindSafe(|| self.inner.search(qv, k, ef)))
                    .ok()
                    .map(|res| {
                        res.iter()
                            .take(k)
                            .map(|nb| (nb.d_id as u32, -(nb.distance * nb.distance)))
                            .collect()
                    });
            });
            let mut h = Hits::new();
            h.clear(0);
            for res in found {
                for (item, score) in res.ok_or_else(|| caught("search"))? {
                    h.push(item, score, &[]);
                }
                h.end_query();
            }
            Ok(h)
        }
    }
}
