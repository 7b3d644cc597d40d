//! Encoding streams in blocks: the peak extra heap memory of `encode_into`
//! does not grow with the number of rows. Measured with a counting global
//! allocator (this file holds one test so no other test allocates meanwhile).
//!
//! The bounds hold whatever the CPU's cache sizes and whichever rayon worker
//! runs first: assignment uses the crate's own matrix kernel, whose only
//! scratch is per call. (faer's x86 GEMM kept a thread-local buffer of twice
//! the reported L3 per thread, allocated on a worker's first product: 629 MB
//! on a 300 MiB-L3 machine, so this test failed whenever the measured run
//! was some worker's first.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use semid::synthetic::{MixtureConfig, hierarchical_mixture};
use semid::{Embeddings, EncodeSearch, KMeansConfig, Par, Quantizer, RqKMeans, RqKMeansConfig};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), SeqCst) + l.size();
            PEAK.fetch_max(now, SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), SeqCst);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated above the level at the start of `f`.
fn peak_extra(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(SeqCst);
    PEAK.store(base, SeqCst);
    f();
    PEAK.load(SeqCst) - base
}

#[test]
fn encode_peak_memory_does_not_grow_with_n() {
    let d = 64;
    let data = hierarchical_mixture(&MixtureConfig {
        n: 40_000,
        dim: d,
        ..Default::default()
    });
    let small = Embeddings::new(&data[..4_000 * d], d).unwrap();
    let large = Embeddings::new(&data, d).unwrap();
    let km = KMeansConfig::new(64)
        .max_iter(3)
        .max_points_per_centroid(Some(32));
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 64).kmeans(km), small).unwrap();
    let mid = Embeddings::new(&data[..20_000 * d], d).unwrap();
    let mut out_small = vec![0u16; 4_000 * 3];
    let mut out_mid = vec![0u16; 20_000 * 3];
    let mut out_large = vec![0u16; 40_000 * 3];
    for search in [EncodeSearch::Greedy, EncodeSearch::Beam(4)] {
        // Warm up (rayon's pool, lazy statics), then measure.
        rq.encode_search_into(small, search, &mut out_small, Par::Rayon(2))
            .unwrap();
        rq.encode_search_into(small, search, &mut out_small, Par::Seq)
            .unwrap();
        let seq_mid = peak_extra(|| {
            rq.encode_search_into(mid, search, &mut out_mid, Par::Seq)
                .unwrap()
        });
        let seq_large = peak_extra(|| {
            rq.encode_search_into(large, search, &mut out_large, Par::Seq)
                .unwrap()
        });
        let par_large = peak_extra(|| {
            rq.encode_search_into(large, search, &mut out_large, Par::Rayon(2))
                .unwrap()
        });
        eprintln!(
            "{search:?}: peak extra heap seq 20k {seq_mid} B, seq 40k {seq_large} B, 2 threads 40k {par_large} B"
        );
        // Twice the rows (5 MB more f32): a copy or any per-row buffer would
        // show up as megabytes; per-thread block scratch does not.
        assert!(
            seq_large <= seq_mid + 64 * 1024,
            "{search:?}: peak extra {seq_large} bytes for 40k rows vs {seq_mid} for 20k rows"
        );
        assert!(
            par_large <= 2 * seq_mid + 64 * 1024,
            "{search:?}: 2 threads peak {par_large} bytes vs {seq_mid} for one thread"
        );
        assert!(
            par_large < 4 << 20,
            "{search:?}: peak extra {par_large} bytes"
        );
    }
    // k-means encode (one level) streams too.
    let (km, _) = semid::KMeans::fit(&KMeansConfig::new(64).max_iter(2), small).unwrap();
    let mut k_mid = vec![0u16; 20_000];
    let mut k_large = vec![0u16; 40_000];
    km.encode_into(small, &mut out_small[..4_000], Par::Seq)
        .unwrap();
    let seq_mid = peak_extra(|| km.encode_into(mid, &mut k_mid, Par::Seq).unwrap());
    let seq_large = peak_extra(|| km.encode_into(large, &mut k_large, Par::Seq).unwrap());
    assert!(
        seq_large <= seq_mid + 64 * 1024,
        "KMeans: peak extra {seq_large} bytes for 40k rows vs {seq_mid} for 20k rows"
    );

    // Fitting with a training cap: memory bounded by the sample, not n.
    let km = KMeansConfig::new(32)
        .max_iter(2)
        .max_points_per_centroid(Some(50));
    let cfg = RqKMeansConfig::new(2, 32).kmeans(km).par(Par::Seq);
    let a = peak_extra(|| drop(RqKMeans::fit(&cfg, small).unwrap()));
    let b = peak_extra(|| drop(RqKMeans::fit(&cfg, large).unwrap()));
    eprintln!("fit: peak extra heap {a} B for 4k rows, {b} B for 40k rows");
    assert!(
        b <= a + (a / 4),
        "fit peak extra {b} bytes for 40k rows vs {a} for 4k rows"
    );
}
