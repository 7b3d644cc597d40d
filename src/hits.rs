//! Ranked results of a batch of queries, shared by SID decoding
//! ([`crate::decode::BeamSearch`]), the dense baselines ([`crate::ann`]) and
//! the retrieval metrics ([`crate::metrics::Rankings`]).

/// `item` value of hits that carry no item ([`crate::decode::Unconstrained`] search).
pub const NO_ITEM: u32 = u32::MAX;

/// Ranked hits of a batch of queries: for each query up to `k` items with
/// their scores (best first) and their IDs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hits {
    offsets: Vec<usize>,
    items: Vec<u32>,
    scores: Vec<f32>,
    ids: Vec<u16>,
    id_len: usize,
}

/// One query's hits, borrowed from [`Hits`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueryHits<'a> {
    /// Items, best first ([`NO_ITEM`] for unconstrained hits).
    pub items: &'a [u32],
    /// Scores (sum of per-level log-scores), non-increasing.
    pub scores: &'a [f32],
    /// IDs of the hits, row-major `items.len() × id_len` (empty for dense
    /// retrieval).
    pub ids: &'a [u16],
}

impl Hits {
    /// Empty hits.
    #[must_use]
    pub fn new() -> Hits {
        Hits {
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Tokens per ID in [`QueryHits::ids`] (0 when hits carry no ID).
    #[must_use]
    pub fn id_len(&self) -> usize {
        self.id_len
    }

    /// Hits of query `q`.
    ///
    /// # Panics
    /// If `q >= n_queries()`, like slice indexing.
    #[must_use]
    pub fn query(&self, q: usize) -> QueryHits<'_> {
        let (lo, hi) = (self.offsets[q], self.offsets[q + 1]);
        QueryHits {
            items: &self.items[lo..hi],
            scores: &self.scores[lo..hi],
            ids: &self.ids[lo * self.id_len..hi * self.id_len],
        }
    }

    /// All items, query after query.
    #[must_use]
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// Start of every query's hits in [`Hits::items`], plus the end.
    #[must_use]
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Items of every query as vectors (for metrics and printing).
    #[must_use]
    pub fn to_lists(&self) -> Vec<Vec<u32>> {
        (0..self.n_queries())
            .map(|q| self.query(q).items.to_vec())
            .collect()
    }

    pub(crate) fn clear(&mut self, id_len: usize) {
        self.offsets.clear();
        self.offsets.push(0);
        self.items.clear();
        self.scores.clear();
        self.ids.clear();
        self.id_len = id_len;
    }

    pub(crate) fn push(&mut self, item: u32, score: f32, id: &[u16]) {
        self.items.push(item);
        self.scores.push(score);
        self.ids.extend_from_slice(id);
    }

    pub(crate) fn end_query(&mut self) {
        self.offsets.push(self.items.len());
    }
}
