//! [`SemanticIndex`]: a tokenizer shipped as one artifact — the quantizer,
//! the item ⇄ ID map and the trie of valid IDs, saved and loaded together.
//!
//! [`file`]: its model files, and opening them in place.

mod file;

pub use file::Check;

use crate::data::{Codes, Embeddings};
use crate::decode::{BeamSearch, CodebookScorer, ScoreMetric, Scorer};
use crate::error::{Error, Result, invalid};
use crate::hits::Hits;
use crate::par::Par;
use crate::quantize::{AnyQuantizer, Fit, Quantizer};
use crate::sid::{CollisionPolicy, SidMap, SidReport, Trie};

/// A quantizer, the semantic IDs it gave a catalog ([`SidMap`]) and the trie
/// of those IDs ([`Trie`]), kept consistent and stored as one versioned
/// model file: changing the tokenizer cannot silently change the ID space
/// under a trained model.
///
/// - [`SemanticIndex::fit`] / [`SemanticIndex::build`]: items `0..n` from
///   embeddings;
/// - [`SemanticIndex::insert`]: new items, existing IDs unchanged;
/// - [`SemanticIndex::search`]: trie-constrained beam search over any
///   [`Scorer`] (a model's next-token scores); [`SemanticIndex::search_embeddings`]
///   scores with the codebooks instead (RQ-KMeans);
/// - [`ModelFile`](crate::ModelFile): `save`/`load`/`to_bytes`/`from_bytes`, fully checked;
///   [`SemanticIndex::open`]: the file memory-mapped and searched in place
///   (format version 3: the map's and the trie's arrays, aligned, after a
///   checksummed directory; [`Check`] says what opening checks).
///
/// ```
/// use semid::SemanticIndex;
/// use semid::decode::BeamSearch;
/// use semid::sid::CollisionPolicy;
/// use semid::{Embeddings, ModelFile, Par, RqKMeans, RqKMeansConfig, synthetic};
///
/// let cfg = synthetic::MixtureConfig { n: 2_000, dim: 16, ..Default::default() };
/// let data = synthetic::hierarchical_mixture(&cfg);
/// let x = Embeddings::new(&data, 16)?;
/// let (index, _, ids) = SemanticIndex::fit::<RqKMeans>(
///     &RqKMeansConfig::new(2, 32).seed(7),
///     x,
///     CollisionPolicy::AppendSuffix,
///     Par::default(),
/// )?;
/// assert_eq!(ids.items, 2_000);
///
/// // Item 5 as a query: its own ID scores best under the codebook scorer.
/// let hits = index.search_embeddings(x.slice(5, 6)?, &mut BeamSearch::new(8, 3)?)?;
/// assert!(hits.query(0).items.contains(&5));
///
/// // One file, one artifact.
/// let again = SemanticIndex::from_bytes(&index.to_bytes()?)?;
/// assert_eq!(again, index);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SemanticIndex {
    quantizer: AnyQuantizer,
    map: SidMap,
    trie: Trie,
}

impl SemanticIndex {
    /// Fits a quantizer of type `Q` on `x`, then [`SemanticIndex::build`]s
    /// the index of items `0..n` with it. Returns the fit's report and the
    /// map's report too.
    pub fn fit<Q>(
        config: &Q::Config,
        x: Embeddings<'_>,
        policy: CollisionPolicy,
        par: Par,
    ) -> Result<(SemanticIndex, Q::Report, SidReport)>
    where
        Q: Fit + Into<AnyQuantizer>,
    {
        let (q, report) = Q::fit(config, x)?;
        let (index, ids) = SemanticIndex::build(q, x, policy, par)?;
        Ok((index, report, ids))
    }

    /// Encodes every row of `x` (row `i` is item `i`) with `quantizer`,
    /// gives each item an ID under `policy`, and builds the trie.
    ///
    /// Errors: as [`Quantizer::encode_into`] and [`SidMap::build`];
    /// [`CollisionPolicy::ReassignLastLevel`] or
    /// [`CollisionPolicy::Sinkhorn`] with a quantizer other than
    /// [`RqKMeans`](crate::RqKMeans) or [`RqVae`](crate::RqVae) (they need last-level
    /// distances).
    pub fn build(
        quantizer: impl Into<AnyQuantizer>,
        x: Embeddings<'_>,
        policy: CollisionPolicy,
        par: Par,
    ) -> Result<(SemanticIndex, SidReport)> {
        let quantizer = quantizer.into();
        let codes = encode(&quantizer, x, par)?;
        let (map, report) = if policy.needs_distances() {
            let rq = reassigning(&quantizer, policy)?;
            SidMap::build_with_distances(&codes, rq, x, policy)?
        } else {
            SidMap::build(&codes, &quantizer.codebook_sizes(), policy)?
        };
        Ok((SemanticIndex::assemble(quantizer, map)?, report))
    }

    /// An index of items `0..n` whose codes are already known (row `i` of
    /// `codes` is item `i`'s code under `quantizer`: encoded elsewhere, in
    /// a Spark job or an earlier run), without the embeddings.
    ///
    /// Errors: a level count or a token that does not fit `quantizer`;
    /// [`CollisionPolicy::ReassignLastLevel`] and
    /// [`CollisionPolicy::Sinkhorn`], which need the embeddings (use
    /// [`SemanticIndex::build`]); as [`SidMap::build`].
    ///
    /// ```
    /// use semid::{Codes, Par, Quantizer, RqKMeans, RqKMeansConfig, SemanticIndex, Embeddings};
    /// use semid::sid::CollisionPolicy;
    /// let cfg = semid::synthetic::MixtureConfig { n: 500, dim: 8, ..Default::default() };
    /// let data = semid::synthetic::hierarchical_mixture(&cfg);
    /// let x = Embeddings::new(&data, 8)?;
    /// let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(1), x)?;
    /// let codes = rq.encode(x)?;
    /// let (a, _) = SemanticIndex::from_codes(rq.clone(), &codes, CollisionPolicy::AppendSuffix)?;
    /// let (b, _) = SemanticIndex::build(rq, x, CollisionPolicy::AppendSuffix, Par::Seq)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), semid::Error>(())
    /// ```
    pub fn from_codes(
        quantizer: impl Into<AnyQuantizer>,
        codes: &Codes,
        policy: CollisionPolicy,
    ) -> Result<(SemanticIndex, SidReport)> {
        let quantizer = quantizer.into();
        if codes.levels() != quantizer.levels() {
            return Err(Error::Shape {
                what: "code levels (codes vs. quantizer)",
                expected: quantizer.levels(),
                got: codes.levels(),
            });
        }
        if policy.needs_distances() {
            return Err(invalid(
                "policy",
                format!(
                    "{policy:?} moves items by their last-level distances, which need the embeddings; use SemanticIndex::build"
                ),
            ));
        }
        let (map, report) = SidMap::build(codes, &quantizer.codebook_sizes(), policy)?;
        Ok((SemanticIndex::assemble(quantizer, map)?, report))
    }

    /// The index of a quantizer and the map it gave, with the map's trie.
    fn assemble(quantizer: AnyQuantizer, map: SidMap) -> Result<SemanticIndex> {
        let trie = Trie::build(&map)?;
        Ok(SemanticIndex {
            quantizer,
            map,
            trie,
        })
    }

    /// Adds `items` (row `i` of `x` is `items[i]`): encodes them and gives
    /// them IDs under the index's policy; existing items keep theirs. On
    /// error the index is unchanged.
    ///
    /// Cost: O(m log n) for m items into an index of n, plus the encoding:
    /// the new IDs go beside the compacted map and trie (see [`Trie`]).
    /// Once the pending inserts pass [`COMPACT_MIN_ITEMS`](crate::sid::COMPACT_MIN_ITEMS)
    /// or an eighth of the index, this call also compacts both (one pass
    /// over all IDs, as a build); [`SemanticIndex::compact`] does it when
    /// you choose. Searches see the new items at once, and return what an
    /// index built from the same map returns.
    ///
    /// Existing IDs never move. Under a policy where a fresh fit would
    /// number items differently (suffixes are given in insertion order;
    /// [`CollisionPolicy::ReassignLastLevel`] and
    /// [`CollisionPolicy::Sinkhorn`] move only new items), the IDs already
    /// given win.
    ///
    /// Errors: as [`SidMap::insert`] (an item already present, …) and
    /// [`Quantizer::encode_into`]; a row count other than `items.len()`.
    pub fn insert(&mut self, items: &[u32], x: Embeddings<'_>, par: Par) -> Result<SidReport> {
        if items.len() != x.rows() {
            return Err(Error::Shape {
                what: "embedding rows (one per item)",
                expected: items.len(),
                got: x.rows(),
            });
        }
        self.verify_once()?;
        let codes = encode(&self.quantizer, x, par)?;
        // `SidMap` leaves itself unchanged on error, so no copy is needed.
        let policy = self.map.policy();
        let report = if policy.needs_distances() {
            let q = reassigning(&self.quantizer, policy)?;
            self.map.insert_with_distances(items, &codes, q, x)?
        } else {
            self.map.insert(items, &codes)?
        };
        self.sync_trie(items)?;
        Ok(report)
    }

    /// [`SemanticIndex::insert`] for items whose codes under the index's
    /// quantizer are already known (encoded elsewhere, as for
    /// [`SemanticIndex::from_codes`]): row `i` of `codes` is `items[i]`.
    ///
    /// Errors: [`CollisionPolicy::ReassignLastLevel`] and
    /// [`CollisionPolicy::Sinkhorn`], which need the embeddings; as
    /// [`SidMap::insert`] (a level count or a token that does not fit, an
    /// item already present, …).
    ///
    /// ```
    /// use semid::{Codes, Quantizer, RqKMeans, RqKMeansConfig, SemanticIndex, Embeddings};
    /// use semid::sid::CollisionPolicy;
    /// let cfg = semid::synthetic::MixtureConfig { n: 500, dim: 8, ..Default::default() };
    /// let data = semid::synthetic::hierarchical_mixture(&cfg);
    /// let x = Embeddings::new(&data, 8)?;
    /// let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(1), x)?;
    /// let codes = rq.encode(x)?;
    /// let (mut index, _) = SemanticIndex::from_codes(rq, &codes, CollisionPolicy::AppendSuffix)?;
    /// let more = Codes::new(codes.row(7).to_vec(), 2)?;
    /// index.insert_codes(&[9_000], &more)?;
    /// // Same code as item 7, next suffix.
    /// assert_eq!(index.id_of(9_000).unwrap()[..2], index.id_of(7).unwrap()[..2]);
    /// # Ok::<(), semid::Error>(())
    /// ```
    pub fn insert_codes(&mut self, items: &[u32], codes: &Codes) -> Result<SidReport> {
        self.verify_once()?;
        let report = self.map.insert(items, codes)?;
        self.sync_trie(items)?;
        Ok(report)
    }

    /// An index opened with [`Check::Structure`] is verified before its
    /// first change.
    fn verify_once(&self) -> Result<()> {
        if self.map.is_verified() {
            return Ok(());
        }
        self.verify()
    }

    /// Brings the trie up to the map after `items` were inserted into it.
    fn sync_trie(&mut self, items: &[u32]) -> Result<()> {
        if items.is_empty() {
            // Nothing changed.
        } else if self.map.pending() == 0 {
            // The map compacted: so does the trie (a non-empty map always
            // builds, the map checked every ID).
            self.trie = Trie::build(&self.map)?;
        } else {
            // The batch is the map's newest pending rows, in item order.
            let ids = self.map.pending_ids(items.len());
            self.trie.insert(ids, items, &self.map.codebook_sizes());
        }
        Ok(())
    }

    /// Folds the inserts made since the last compaction into the map's and
    /// the trie's compacted arrays (one pass over all IDs, as a build), so
    /// that searches take the fastest path again. [`SemanticIndex::insert`]
    /// does this by itself once enough inserts are pending; call it at a
    /// quiet moment to choose when the cost is paid. IDs do not change.
    pub fn compact(&mut self) -> Result<()> {
        if self.map.pending() > 0 || self.trie.pending() > 0 {
            self.map.compact();
            self.trie = Trie::build(&self.map)?;
        }
        Ok(())
    }

    /// Items inserted since the last compaction.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.map.pending()
    }

    /// The quantizer's codes for `x` (before collision handling: two items
    /// may share one).
    pub fn encode(&self, x: Embeddings<'_>, par: Par) -> Result<Codes> {
        encode(&self.quantizer, x, par)
    }

    /// Trie-constrained beam search: `scorer` scores the next token of every
    /// live beam of `n_queries` queries; the hits are items with valid IDs.
    /// See [`BeamSearch::search`].
    pub fn search<S: Scorer + ?Sized>(
        &self,
        scorer: &mut S,
        n_queries: usize,
        search: &mut BeamSearch,
    ) -> Result<Hits> {
        search.search(&self.trie, scorer, n_queries)
    }

    /// [`SemanticIndex::search`] into `out`, reusing its buffers.
    pub fn search_into<S: Scorer + ?Sized>(
        &self,
        scorer: &mut S,
        n_queries: usize,
        search: &mut BeamSearch,
        out: &mut Hits,
    ) -> Result<()> {
        search.search_into(&self.trie, scorer, n_queries, out)
    }

    /// [`SemanticIndex::search`] with no trained model: every query row of
    /// `queries` scores ID prefixes by negative squared distance to the
    /// codebooks ([`CodebookScorer`], [`ScoreMetric::L2`]).
    ///
    /// Errors: a quantizer other than [`RqKMeans`](crate::RqKMeans); a
    /// query dimension other than the quantizer's.
    pub fn search_embeddings(
        &self,
        queries: Embeddings<'_>,
        search: &mut BeamSearch,
    ) -> Result<Hits> {
        let mut out = Hits::new();
        self.search_embeddings_into(queries, search, &mut out)?;
        Ok(out)
    }

    /// [`SemanticIndex::search_embeddings`] into `out`.
    pub fn search_embeddings_into(
        &self,
        queries: Embeddings<'_>,
        search: &mut BeamSearch,
        out: &mut Hits,
    ) -> Result<()> {
        let rq = self.quantizer.as_rq_kmeans().ok_or_else(|| {
            invalid(
                "quantizer",
                format!(
                    "is {}; codebook scoring needs RqKMeans: pass a Scorer to search()",
                    self.quantizer.kind().name()
                ),
            )
        })?;
        // The scorer borrows the search's spare buffers and gives them back,
        // so repeated searches allocate nothing (tests/alloc_search.rs).
        let scratch = std::mem::take(&mut search.scorer_scratch);
        let mut scorer = CodebookScorer::with_scratch(rq, queries, ScoreMetric::L2, scratch)
            .map_err(|(e, scratch)| {
                search.scorer_scratch = scratch;
                e
            })?;
        let r = search.search_into(&self.trie, &mut scorer, queries.rows(), out);
        search.scorer_scratch = scorer.into_scratch();
        r
    }

    /// The ID of `item`, if it is in the index.
    #[must_use]
    pub fn id_of(&self, item: u32) -> Option<&[u16]> {
        self.map.id_of(item)
    }

    /// Items in the index.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the index holds no item (never, once built).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The quantizer.
    #[must_use]
    pub fn quantizer(&self) -> &AnyQuantizer {
        &self.quantizer
    }

    /// The item ⇄ ID map.
    #[must_use]
    pub fn map(&self) -> &SidMap {
        &self.map
    }

    /// The trie of valid IDs (a [`Constraint`](crate::decode::Constraint)).
    #[must_use]
    pub fn trie(&self) -> &Trie {
        &self.trie
    }
}

/// Codes of `x` under `q`.
fn encode(q: &AnyQuantizer, x: Embeddings<'_>, par: Par) -> Result<Codes> {
    let mut out = vec![0u16; x.rows() * q.levels()];
    q.encode_into(x, &mut out, par)?;
    Codes::new(out, q.levels())
}

/// The quantizer as last-level distances for `policy`
/// (`ReassignLastLevel`, `Sinkhorn`).
fn reassigning(
    q: &AnyQuantizer,
    policy: CollisionPolicy,
) -> Result<&dyn crate::quantize::LastLevelDistances> {
    q.last_level().ok_or_else(|| {
        invalid(
            "policy",
            format!(
                "{policy:?} needs last-level distances, which {} does not give; use RqKMeans, RqVae or another policy",
                q.kind().name()
            ),
        )
    })
}
