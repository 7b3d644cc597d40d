//! [`SharedIndex`]: one [`SemanticIndex`] searched by many threads while a
//! writer replaces it.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::error::Result;
use crate::index::SemanticIndex;

/// A [`SemanticIndex`] for services: any number of threads search the
/// current version while one writer at a time builds the next and swaps it
/// in.
///
/// Searches never see a half-updated index and never wait for an update to
/// finish: [`SharedIndex::load`] hands out an `Arc` of the current version
/// (a lock is held only to clone the pointer), and a search keeps using the
/// version it loaded even if a swap happens meanwhile; the old version is
/// freed when its last search drops it. [`SharedIndex::update`] changes a
/// *copy* (copy-on-write) and swaps it in only if the change succeeded, so
/// a failed insert leaves the served index untouched. The copy is cheap:
/// an index's compacted map and trie are shared between copies (`Arc`), so
/// cloning costs the inserts pending since the last compaction, not the
/// catalog. Writers are serialised; a swap is one pointer store.
///
/// This is how inserting during a search is ruled out: a search holds a
/// `&SemanticIndex` through its `Arc`, and [`SemanticIndex::insert`] needs
/// `&mut`, which the type system grants only to the writer's private copy.
///
/// ```
/// use std::sync::Arc;
/// use semid::{Embeddings, Par, RqKMeans, RqKMeansConfig, SemanticIndex, SharedIndex};
/// use semid::decode::BeamSearch;
/// use semid::sid::CollisionPolicy;
///
/// let cfg = semid::synthetic::MixtureConfig { n: 1_000, dim: 8, ..Default::default() };
/// let data = semid::synthetic::hierarchical_mixture(&cfg);
/// let (first, second) = data.split_at(900 * 8);
/// let (index, _, _) = SemanticIndex::fit::<RqKMeans>(
///     &RqKMeansConfig::new(2, 16).seed(1),
///     Embeddings::new(first, 8)?,
///     CollisionPolicy::AppendSuffix,
///     Par::Seq,
/// )?;
/// let shared = Arc::new(SharedIndex::new(index));
///
/// // A searching thread loads the current version for each batch.
/// let reader = {
///     let shared = Arc::clone(&shared);
///     let q = second[..8].to_vec();
///     std::thread::spawn(move || -> semid::Result<usize> {
///         let mut bs = BeamSearch::new(8, 5)?;
///         let index = shared.load();
///         Ok(index.search_embeddings(Embeddings::new(&q, 8)?, &mut bs)?.query(0).items.len())
///     })
/// };
/// // Meanwhile the writer adds items 900..1000 and swaps them in.
/// let items: Vec<u32> = (900..1000).collect();
/// shared.update(|index| index.insert(&items, Embeddings::new(second, 8)?, Par::Seq))?;
/// assert_eq!(reader.join().unwrap()?, 5);
/// assert_eq!(shared.load().len(), 1_000);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedIndex {
    current: RwLock<Arc<SemanticIndex>>,
    writer: Mutex<()>,
}

impl SharedIndex {
    /// Serves `index`.
    #[must_use]
    pub fn new(index: SemanticIndex) -> SharedIndex {
        SharedIndex {
            current: RwLock::new(Arc::new(index)),
            writer: Mutex::new(()),
        }
    }

    /// The current version. Searches through it are unaffected by later
    /// swaps; load again to see them.
    #[must_use]
    pub fn load(&self) -> Arc<SemanticIndex> {
        // A panic elsewhere cannot leave the pointer half-written (it is
        // replaced whole), so a poisoned lock is still usable.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `index` from now on and returns the version it replaces.
    /// Waits for a running [`SharedIndex::update`] to finish.
    pub fn store(&self, index: SemanticIndex) -> Arc<SemanticIndex> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.swap(Arc::new(index))
    }

    /// Applies `change` to a copy of the current version and, if it returns
    /// `Ok`, serves the copy. On `Err` (or a panic in `change`) the served
    /// version is unchanged. Writers run one at a time, so no update is
    /// lost; searches keep running on the old version meanwhile.
    ///
    /// Errors: whatever `change` returns.
    pub fn update<R>(&self, change: impl FnOnce(&mut SemanticIndex) -> Result<R>) -> Result<R> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = SemanticIndex::clone(&self.load());
        let r = change(&mut next)?;
        self.swap(Arc::new(next));
        Ok(r)
    }

    fn swap(&self, next: Arc<SemanticIndex>) -> Arc<SemanticIndex> {
        let mut cur = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *cur, next)
    }
}

impl From<SemanticIndex> for SharedIndex {
    fn from(index: SemanticIndex) -> SharedIndex {
        SharedIndex::new(index)
    }
}

// The index, and everything a search borrows from it, is shared across
// threads by reference.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<SemanticIndex>();
    send_sync::<SharedIndex>();
    send_sync::<crate::sid::Trie>();
    send_sync::<crate::sid::SidMap>();
    send_sync::<crate::quantize::AnyQuantizer>();
};
