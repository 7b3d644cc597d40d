//! Scoring and the model-free baselines: popularity and last-item kNN.

use semid::metrics::{EvalOptions, Metric, Qrels, Rankings, evaluate};
use semid::seq::{Example, LeaveOneOut};

use crate::Res;

/// The metrics of every table row.
pub const METRICS: [Metric; 4] = [
    Metric::Recall(5),
    Metric::Recall(10),
    Metric::Ndcg(5),
    Metric::Ndcg(10),
];

/// Recall@5/10 and NDCG@5/10 of `lists` against each example's target.
pub fn score(lists: &[Vec<u32>], ex: &[Example<'_>]) -> Res<[f64; 4]> {
    let rel: Vec<Vec<u32>> = ex.iter().map(|e| vec![e.target]).collect();
    let e = evaluate(
        &Rankings::from_lists(lists),
        &Qrels::from_relevant(&rel)?,
        &METRICS,
        &EvalOptions::default(),
    )?;
    Ok(METRICS.map(|m| e.mean_of(m).unwrap_or(0.0)))
}

/// The 10 most frequent items of the training parts plus validation
/// items (everything before each test target).
pub fn popularity(split: &LeaveOneOut, n_items: usize) -> Vec<u32> {
    let seqs = split.sequences();
    let mut counts = vec![0u64; n_items];
    for u in 0..seqs.len() {
        let s = seqs.items(u);
        for &i in &s[..s.len() - 1] {
            counts[i as usize] += 1;
        }
    }
    let mut pop: Vec<u32> = (0..n_items as u32).collect();
    pop.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    pop.truncate(10);
    pop
}

/// Last-item kNN: for each example, the 10 items of `emb` nearest to its
/// last history item (itself excluded; ties by item id).
pub fn knn(emb: &[f32], dim: usize, ex: &[Example<'_>]) -> Vec<Vec<u32>> {
    let n = emb.len() / dim;
    ex.iter()
        .map(|e| {
            let Some(&last) = e.history.last() else {
                return Vec::new();
            };
            let last = last as usize;
            let q = &emb[last * dim..(last + 1) * dim];
            let mut d: Vec<(f32, u32)> = (0..n)
                .filter(|&j| j != last)
                .map(|j| {
                    (
                        semid::kernels::l2_sq(q, &emb[j * dim..(j + 1) * dim]),
                        j as u32,
                    )
                })
                .collect();
            if d.is_empty() {
                return Vec::new();
            }
            let nth = 9.min(d.len() - 1);
            d.select_nth_unstable_by(nth, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.truncate(10);
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.into_iter().map(|p| p.1).collect()
        })
        .collect()
}

/// Product-quantizer codes (RPG's item IDs, without OPQ's rotation): the
/// embedding split into `m` equal sub-spaces, k-means with `k` centroids in
/// each, every item's nearest centroid per sub-space (`items × m`).
pub fn pq_codes(emb: &[f32], dim: usize, m: usize, k: usize, seed: u64) -> Res<Vec<u16>> {
    if m == 0 || !dim.is_multiple_of(m) {
        return Err(format!("--pq-m {m}: must divide the embedding width {dim}").into());
    }
    let (n, ds) = (emb.len() / dim, dim / m);
    let mut codes = vec![0u16; n * m];
    let mut part = vec![0f32; n * ds];
    for j in 0..m {
        for (r, row) in emb.chunks_exact(dim).enumerate() {
            part[r * ds..(r + 1) * ds].copy_from_slice(&row[j * ds..(j + 1) * ds]);
        }
        let x = semid::Embeddings::new(&part, ds)?;
        let cfg = semid::KMeansConfig::new(k).seed(seed.wrapping_add(j as u64));
        let (km, _) = semid::KMeans::fit(&cfg, x)?;
        let (labels, _) = km.assign(x, semid::Par::default())?;
        for (r, &l) in labels.iter().enumerate() {
            codes[r * m + j] = l as u16;
        }
    }
    Ok(codes)
}
