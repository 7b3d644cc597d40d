//! The CUDA kernels' logic on the CPU: each `.cu` source in src/gpu/kernels
//! runs as C++ (gpu-emu/, the grid emulated by loops) and must equal its
//! CPU twin. Edge cases: n = 0 and 1, row counts that are not a multiple of
//! the block, ties, NaN rejected before launch, several launches. This
//! checks the kernel logic, not the device plumbing (tests/gpu.rs).

use proptest::prelude::*;
use semid::Error;
use semid::Par;
use semid::gpu::{self, BLOCK, FsqTables};
use semid::quantize::{Fsq, FsqMode, Labels};
use semid_gpu_emu::{self as emu, Launch};

/// splitmix64: the tests' own seeded numbers.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn launch(rows: usize) -> Launch {
    Launch {
        grid: gpu::grid(rows),
        block: BLOCK,
    }
}

/// FSQ indices through the kernel, in launches of at most `max` rows.
fn fsq_kernel(fsq: &Fsq, z: &[f32], max: usize) -> Result<Vec<u16>, Error> {
    let d = fsq.levels_per_dim().len();
    let n = gpu::check_rows(z, d)?;
    let t = FsqTables::new(fsq);
    let mut out = vec![0u16; n];
    for (row0, rows) in gpu::launches(n, max) {
        emu::fsq_indices(
            launch(rows),
            &z[row0 * d..(row0 + rows) * d],
            rows,
            d,
            &t.thresholds,
            &t.offsets,
            &t.base,
            &t.basis,
            &mut out[row0..row0 + rows],
        );
    }
    Ok(out)
}

fn fsq_cpu(fsq: &Fsq, z: &[f32]) -> Vec<u16> {
    let d = fsq.levels_per_dim().len();
    let mut out = vec![0u16; z.len() / d];
    if !out.is_empty() {
        fsq.indices_into(z, &mut out, Par::Seq).unwrap();
    }
    out
}

/// Values around and exactly at every rounding threshold of `fsq`, plus
/// large and tiny ones.
fn hard_values(fsq: &Fsq, rng: &mut Rng, n: usize) -> Vec<f32> {
    let d = fsq.levels_per_dim().len();
    let mut v = Vec::with_capacity(n * d);
    for i in 0..n * d {
        let j = i % d;
        let t = fsq.thresholds(j);
        let x = match i % 5 {
            0 => t[rng.below(t.len() as u64) as usize],
            1 => f32::from_bits(t[rng.below(t.len() as u64) as usize].to_bits() + 1),
            2 => f32::from_bits(
                t[rng.below(t.len() as u64) as usize]
                    .to_bits()
                    .wrapping_sub(1),
            ),
            3 => (rng.next_f32() - 0.5) * 1e4,
            _ => rng.next_f32() * 4.0 - 2.0,
        };
        v.push(x);
    }
    v
}

#[test]
fn fsq_kernel_equals_the_cpu_bit_for_bit() {
    let mut rng = Rng::new(7);
    for (levels, mode) in [
        (vec![8u32, 5, 5, 5], FsqMode::Default),
        (vec![8, 8, 8, 6, 5], FsqMode::Default),
        (vec![7, 5, 5, 5], FsqMode::Symmetric),
        (vec![2, 2, 4, 4, 4], FsqMode::SymmetricHardClamp),
    ] {
        let fsq = Fsq::with_mode(&levels, mode).unwrap();
        for n in [0usize, 1, 2, BLOCK as usize - 1, BLOCK as usize + 1, 1000] {
            let z = hard_values(&fsq, &mut rng, n);
            let want = fsq_cpu(&fsq, &z);
            assert_eq!(
                fsq_kernel(&fsq, &z, usize::MAX).unwrap(),
                want,
                "{levels:?} n={n}"
            );
            // The same rows over several launches.
            assert_eq!(
                fsq_kernel(&fsq, &z, 300).unwrap(),
                want,
                "{levels:?} n={n} split"
            );
        }
    }
}

#[test]
fn non_finite_input_is_rejected_before_launch() {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let mut z = vec![0.1f32; 40];
    z[13] = f32::NAN;
    match fsq_kernel(&fsq, &z, usize::MAX) {
        Err(Error::NonFinite { row, col, .. }) => assert_eq!((row, col), (3, 1)),
        other => panic!("{other:?}"),
    }
    z[13] = f32::INFINITY;
    assert!(fsq_kernel(&fsq, &z, usize::MAX).is_err());
    assert!(matches!(
        fsq_kernel(&fsq, &z[..7], usize::MAX),
        Err(Error::Shape { .. })
    ));
}

/// The fused argmin over GEMM products, scalar, in Rust: the kernel's twin.
fn assign_cpu(dots: &[f32], cnorm: &[f32], xnorm: &[f32], k: usize) -> (Vec<u32>, Vec<f32>) {
    let mut labels = Vec::new();
    let mut dist = Vec::new();
    for (i, row) in dots.chunks_exact(k).enumerate() {
        let (mut best, mut arg) = (f32::INFINITY, 0u32);
        for (j, (&c, &p)) in cnorm.iter().zip(row).enumerate() {
            let v = c - 2.0 * p;
            if v < best {
                best = v;
                arg = j as u32;
            }
        }
        labels.push(arg);
        dist.push((xnorm[i] + best).max(0.0));
    }
    (labels, dist)
}

/// GEMM inputs of `x` (n × d) against `c` (k × d), in f64 then rounded, so
/// the products are the same for the kernel and its twin.
fn gemm_inputs(x: &[f32], c: &[f32], d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dot = |a: &[f32], b: &[f32]| -> f32 {
        a.iter()
            .zip(b)
            .map(|(&p, &q)| p as f64 * q as f64)
            .sum::<f64>() as f32
    };
    let dots = x
        .chunks_exact(d)
        .flat_map(|r| c.chunks_exact(d).map(move |cc| dot(r, cc)))
        .collect();
    let cnorm = c.chunks_exact(d).map(|r| dot(r, r)).collect();
    let xnorm = x.chunks_exact(d).map(|r| dot(r, r)).collect();
    (dots, cnorm, xnorm)
}

fn assign_kernel(
    dots: &[f32],
    cnorm: &[f32],
    xnorm: &[f32],
    k: usize,
    max: usize,
) -> (Vec<u32>, Vec<f32>) {
    let n = xnorm.len();
    let (mut labels, mut dist) = (vec![u32::MAX; n], vec![f32::NAN; n]);
    for (row0, rows) in gpu::launches(n, max) {
        // Each batch's products column-major, as cuBLAS writes them.
        let mut cols = vec![0f32; rows * k];
        for i in 0..rows {
            for j in 0..k {
                cols[j * rows + i] = dots[(row0 + i) * k + j];
            }
        }
        emu::assign(
            launch(rows),
            &cols,
            cnorm,
            &xnorm[row0..row0 + rows],
            rows,
            k,
            &mut labels[row0..row0 + rows],
            &mut dist[row0..row0 + rows],
        );
    }
    (labels, dist)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn assign_kernel_equals_its_twin(
        n in 0usize..600,
        k in 1usize..300,
        d in 1usize..9,
        seed in any::<u64>(),
        dup in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let x: Vec<f32> = (0..n * d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let mut c: Vec<f32> = (0..k * d).map(|_| (rng.next_f32() * 8.0).round() / 4.0 - 1.0).collect();
        if dup && k > 1 {
            // Exact ties: centroid k-1 repeats centroid 0.
            let first = c[..d].to_vec();
            c[(k - 1) * d..].copy_from_slice(&first);
        }
        let (dots, cnorm, xnorm) = gemm_inputs(&x, &c, d);
        let want = assign_cpu(&dots, &cnorm, &xnorm, k);
        let got = assign_kernel(&dots, &cnorm, &xnorm, k, 257);
        prop_assert_eq!(&got.0, &want.0);
        prop_assert!(got.1.iter().zip(&want.1).all(|(a, b)| a.to_bits() == b.to_bits()));
        if dup && k > 1 {
            prop_assert!(!got.0.contains(&((k - 1) as u32)), "a tie went to the higher index");
        }
    }
}

#[test]
fn assign_kernel_agrees_with_the_crate_assignment() {
    // Well separated centroids: no near ties, so the kernel's labels equal
    // semid's CPU nearest-centroid assignment.
    let mut rng = Rng::new(3);
    let (k, d, n) = (40usize, 16usize, 2000usize);
    let c: Vec<f32> = (0..k * d).map(|_| rng.next_f32() * 20.0 - 10.0).collect();
    let x: Vec<f32> = (0..n)
        .flat_map(|i| {
            let j = i % k;
            c[j * d..(j + 1) * d].to_vec()
        })
        .map(|v| v + (rng.next_f32() - 0.5) * 0.1)
        .collect();
    let (dots, cnorm, xnorm) = gemm_inputs(&x, &c, d);
    let (labels, dist) = assign_kernel(&dots, &cnorm, &xnorm, k, usize::MAX);
    let (want, want_d) = semid::kernels::nearest(&x, &c, d, Par::Seq).unwrap();
    assert_eq!(labels, want);
    for (a, b) in dist.iter().zip(&want_d) {
        assert!((a - b).abs() <= 1e-3 * b.max(1.0), "{a} vs {b}");
    }
}

/// The emulated beam-step kernel as a `search_with_step` executor.
fn emulated_step(inp: &gpu::StepInput<'_>, out: &mut gpu::StepOutput) -> semid::Result<()> {
    let s = emu::BeamStep {
        n_queries: inp.n_queries,
        cap: inp.cap,
        qbeg: inp.qbeg,
        order: inp.order,
        node: inp.node,
        bscore: inp.bscore,
        scores: inp.scores,
        vocab: inp.vocab,
        coff: inp.coff,
        ctok: inp.ctok,
        dchild: inp.dense,
    };
    emu::beam_step(
        launch(inp.n_queries as usize),
        &s,
        &mut out.key,
        &mut out.parent,
        &mut out.child,
        &mut out.token,
        &mut out.count,
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn beam_step_kernel_equals_beam_search(
        len in 1usize..4,
        vocab in 1usize..7,
        raw in proptest::collection::vec(0u16..7, 1..200),
        seed in any::<u64>(),
        beam in 1usize..12,
        k in 1usize..15,
        queries in 1usize..5,
        coarse in any::<bool>(),
    ) {
        use semid::decode::{BeamSearch, FnScorer};
        use semid::sid::Trie;
        prop_assume!(raw.len() >= len);
        let n = raw.len() / len;
        let ids: Vec<u16> = raw[..n * len].iter().map(|&t| t % vocab as u16).collect();
        let trie = Trie::from_ids(&ids, len, &vec![vocab; len]).unwrap();
        // Coarse scores make many exact ties; some are -inf or NaN.
        let score = move |q: usize, p: &[u16], out: &mut [f32]| -> semid::Result<()> {
            for (t, o) in out.iter_mut().enumerate() {
                let mut h = seed ^ (q as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for &x in p.iter().chain([t as u16].iter()) {
                    h = (h ^ u64::from(x)).wrapping_mul(0x1000_0000_01b3);
                }
                h ^= h >> 29;
                *o = match h % 23 {
                    0 => f32::NEG_INFINITY,
                    1 => f32::NAN,
                    r if coarse => -((r % 3) as f32),
                    _ => -(((h >> 8) % 1000) as f32) / 97.0,
                };
            }
            Ok(())
        };
        let want = BeamSearch::new(beam, k).unwrap().search(&trie, &mut FnScorer(score), queries).unwrap();
        // Dense everywhere, dense for the first depths only, CSR everywhere.
        for budget in [usize::MAX, vocab * 2, 0] {
            let tables = gpu::TrieTables::with_dense_budget(&trie, budget);
            let got = gpu::search_with_step(&trie, &tables, &mut FnScorer(score), queries, beam, k, &mut emulated_step).unwrap();
            prop_assert_eq!(got.n_queries(), want.n_queries());
            for q in 0..queries {
                let (a, b) = (got.query(q), want.query(q));
                prop_assert_eq!(a.items, b.items, "query {} budget {}", q, budget);
                prop_assert_eq!(a.ids, b.ids);
                prop_assert!(a.scores.iter().zip(b.scores).all(|(x, y)| x.to_bits() == y.to_bits()));
            }
        }
    }
}

#[test]
fn beam_search_with_step_rejects_bad_arguments() {
    use semid::decode::FnScorer;
    use semid::sid::Trie;
    let trie = Trie::from_ids(&[1, 2, 3, 4], 2, &[5, 5]).unwrap();
    let tables = gpu::TrieTables::new(&trie);
    let mut ok = FnScorer(
        |_: usize, _: &[u16], out: &mut [f32]| -> semid::Result<()> {
            out.fill(0.0);
            Ok(())
        },
    );
    for (nq, beam, k) in [(0, 2, 2), (1, 0, 2), (1, 2, 0)] {
        assert!(
            gpu::search_with_step(&trie, &tables, &mut ok, nq, beam, k, &mut emulated_step)
                .is_err()
        );
    }
    // An executor that points outside the beams is an error, not a panic.
    let mut liar = |_: &gpu::StepInput<'_>, out: &mut gpu::StepOutput| -> semid::Result<()> {
        out.count.fill(1);
        out.parent.fill(99);
        Ok(())
    };
    assert!(gpu::search_with_step(&trie, &tables, &mut ok, 1, 2, 2, &mut liar).is_err());
    let other = Trie::from_ids(&[1, 2, 3], 3, &[5, 5, 5]).unwrap();
    assert!(gpu::search_with_step(&other, &tables, &mut ok, 1, 2, 2, &mut emulated_step).is_err());
}

#[test]
fn greedy_rq_encode_through_the_kernels_equals_the_cpu() {
    // Per level: products, the argmin kernel, the codes and residual
    // kernels, as Device::rq_encode chains them; on separated data the codes equal
    // RqKMeans's greedy encoding and the residuals are bit-exact.
    use semid::{Embeddings, Quantizer, RqKMeans, RqKMeansConfig};
    let mut rng = Rng::new(11);
    let (n, d) = (3000usize, 12usize);
    let centers: Vec<f32> = (0..30 * d).map(|_| rng.next_f32() * 40.0 - 20.0).collect();
    let x: Vec<f32> = (0..n)
        .flat_map(|i| centers[(i % 30) * d..(i % 30 + 1) * d].to_vec())
        .map(|v| v + rng.next_f32() - 0.5)
        .collect();
    let (rq, _) = RqKMeans::fit(
        &RqKMeansConfig::new(2, 16).seed(1),
        Embeddings::new(&x, d).unwrap(),
    )
    .unwrap();
    let want = rq.encode(Embeddings::new(&x, d).unwrap()).unwrap();
    let mut resid = x.clone();
    let mut codes = vec![0u16; n * 2];
    let mut cpu_resid = x.clone();
    for l in 0..2 {
        let c = rq.codebook(l);
        let (dots, cnorm, _) = gemm_inputs(&resid, c, d);
        let zeros = vec![0f32; n];
        let (labels, _) = assign_kernel(&dots, &cnorm, &zeros, 16, usize::MAX);
        emu::residual(
            Launch {
                grid: gpu::grid(n * d),
                block: BLOCK,
            },
            &mut resid,
            c,
            &labels,
            n,
            d,
        );
        emu::store_codes(launch(n), &labels, n, 2, l, &mut codes);
        for i in 0..n {
            let t = want.row(i)[l] as usize;
            for j in 0..d {
                cpu_resid[i * d + j] -= c[t * d + j];
            }
        }
    }
    assert_eq!(codes, want.as_slice());
    assert!(
        resid
            .iter()
            .zip(&cpu_resid)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

/// CPU assignment (the crate's own) and the emulated `means.cu` for the
/// centroid update: Lloyd through these must give the CPU's fit bit for bit.
struct EmuSteps {
    cpu: semid::quantize::CpuSteps,
    updates: usize,
}

impl semid::quantize::LloydSteps for EmuSteps {
    fn begin(&mut self, x: &[f32], d: usize) -> semid::Result<()> {
        self.cpu.begin(x, d)
    }

    fn assign(
        &mut self,
        x: &[f32],
        d: usize,
        centroids: &[f32],
        labels: &mut [u32],
        dists: &mut [f32],
    ) -> semid::Result<()> {
        self.cpu.assign(x, d, centroids, labels, dists)
    }

    fn update(
        &mut self,
        x: &[f32],
        d: usize,
        labels: Labels<'_>,
        centroids: &mut [f32],
    ) -> semid::Result<()> {
        let k = centroids.len() / d;
        let plan = gpu::CentroidPlan::new(labels, d)?;
        emu::centroid_means(
            launch(k * d),
            x,
            d,
            &plan.perm,
            &plan.start,
            k,
            plan.chunk as usize,
            centroids,
        );
        self.updates += 1;
        Ok(())
    }
}

fn emu_steps() -> EmuSteps {
    EmuSteps {
        cpu: semid::quantize::CpuSteps::new(Par::Seq),
        updates: 0,
    }
}

/// Rows around `centers` cluster centres, with spread noise.
fn clustered(rng: &mut Rng, n: usize, d: usize, centers: usize) -> Vec<f32> {
    let c: Vec<f32> = (0..centers * d)
        .map(|_| rng.next_f32() * 8.0 - 4.0)
        .collect();
    let mut x = Vec::with_capacity(n * d);
    for _ in 0..n {
        let j = rng.below(centers as u64) as usize;
        for &v in &c[j * d..(j + 1) * d] {
            x.push(v + rng.next_f32() - 0.5);
        }
    }
    x
}

#[test]
fn kmeans_with_the_means_kernel_equals_the_cpu_fit_bit_for_bit() {
    use semid::quantize::Init;
    use semid::{Embeddings, KMeans, KMeansConfig};
    let mut rng = Rng::new(21);
    // 10 000 rows: three summation chunks of 4096 (the last partial); d and
    // k not multiples of the block; every initialisation.
    let (n, d) = (10_000usize, 13usize);
    let x = clustered(&mut rng, n, d, 40);
    for init in [Init::PROGRESSIVE_DIM, Init::KMeansPlusPlus, Init::Random] {
        for k in [1usize, 37] {
            let cfg = KMeansConfig::new(k)
                .seed(5)
                .init(init)
                .max_iter(8)
                .max_points_per_centroid(None);
            let e = Embeddings::new(&x, d).unwrap();
            let want = KMeans::fit(&cfg, e).unwrap();
            let mut steps = emu_steps();
            let got = KMeans::fit_with_steps(&cfg, e, &mut steps).unwrap();
            assert!(
                steps.updates >= 1,
                "{init:?} k={k}: the steps were not used"
            );
            let bits = |c: &[f32]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(got.0.centroids()),
                bits(want.0.centroids()),
                "{init:?} k={k}"
            );
            assert_eq!(got.1, want.1, "{init:?} k={k}");
        }
    }
}

#[test]
fn rq_kmeans_with_the_means_kernel_equals_the_cpu_fit_bit_for_bit() {
    use semid::{Embeddings, RqKMeans, RqKMeansConfig};
    let mut rng = Rng::new(22);
    let (n, d) = (6000usize, 24usize);
    let x = clustered(&mut rng, n, d, 64);
    let cfg = RqKMeansConfig::new(3, 16).seed(3);
    let e = Embeddings::new(&x, d).unwrap();
    let want = RqKMeans::fit(&cfg, e).unwrap();
    let got = RqKMeans::fit_with_steps(&cfg, e, &mut emu_steps()).unwrap();
    assert_eq!(got.0, want.0);
    assert_eq!(got.1, want.1);
}

#[test]
fn means_kernel_edge_cases() {
    // n = 0: every cluster is empty and keeps its centroid; n = 1; a
    // cluster with no rows between full ones; k × d not a multiple of the
    // block; one launch grid larger than the work.
    let d = 3;
    let old: Vec<f32> = (0..5 * d).map(|i| i as f32 + 0.25).collect();
    let plan = gpu::CentroidPlan::new(Labels::new(&[], 5).unwrap(), d).unwrap();
    assert_eq!(plan.start, vec![0; 6]);
    let mut c = old.clone();
    emu::centroid_means(
        launch(5 * d),
        &[],
        d,
        &plan.perm,
        &plan.start,
        5,
        4096,
        &mut c,
    );
    assert_eq!(c, old);

    let x = [1.0f32, 2.0, 3.0];
    let plan = gpu::CentroidPlan::new(Labels::new(&[4], 5).unwrap(), d).unwrap();
    let mut c = old.clone();
    emu::centroid_means(launch(5 * d), &x, d, &plan.perm, &plan.start, 5, 1, &mut c);
    assert_eq!(&c[..4 * d], &old[..4 * d]);
    assert_eq!(&c[4 * d..], &x);

    // Rows 0..6 with labels 2,0,2,0,4,2; chunk 2: cluster 2 = rows 0,2,5,
    // summed as (x0) + (x2) + (x5) over chunks 0, 1, 2.
    let x: Vec<f32> = (0..6 * d).map(|i| (i as f32).sqrt()).collect();
    let labels = [2u32, 0, 2, 0, 4, 2];
    let plan = gpu::CentroidPlan::new(Labels::new(&labels, 5).unwrap(), d).unwrap();
    assert_eq!(plan.perm, vec![1, 3, 0, 2, 5, 4]);
    assert_eq!(plan.start, vec![0, 2, 2, 5, 5, 6]);
    let mut c = old.clone();
    emu::centroid_means(launch(5 * d), &x, d, &plan.perm, &plan.start, 5, 2, &mut c);
    for t in 0..d {
        let col = |r: usize| f64::from(x[r * d + t]);
        let c2 = ((col(0) + col(2) + col(5)) * (1.0 / 3.0)) as f32;
        assert_eq!(c[2 * d + t].to_bits(), c2.to_bits());
        let c0 = (((0.0 + col(1)) + col(3)) * 0.5) as f32;
        assert_eq!(c[t].to_bits(), c0.to_bits());
        assert_eq!(c[d + t], old[d + t]);
        assert_eq!(c[3 * d + t], old[3 * d + t]);
        assert_eq!(c[4 * d + t], x[4 * d + t]);
    }
}

#[test]
fn bad_labels_never_reach_the_centroid_plan() {
    // Labels are checked once, where they are made; a plan takes only them.
    match Labels::new(&[0, 3, 1], 3) {
        Err(Error::InvalidConfig { reason, .. }) => assert!(reason.contains("row 1"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trie_tables_are_dense_for_the_first_depths_then_csr() {
    use semid::sid::Trie;
    // 3 levels of 256 tokens, 20 000 ids: 1 root, ≤ 256 nodes at depth 1,
    // thousands at depth 2 (beyond the default budget at 256 entries each).
    let ids: Vec<u16> = (0..20_000u32)
        .flat_map(|i| {
            let h = i.wrapping_mul(2_654_435_761) >> 16;
            [(i % 256) as u16, (h % 256) as u16, (i / 3 % 256) as u16]
        })
        .collect();
    let trie = Trie::from_ids(&ids, 3, &[256, 256, 256]).unwrap();
    let nodes = trie.stats().nodes_per_depth;
    let t = gpu::TrieTables::new(&trie);
    assert_eq!(t.levels[0].dense.len(), 256);
    assert_eq!(t.levels[1].dense.len(), nodes[1] * 256);
    assert!(nodes[2] * 256 > gpu::TrieTables::DENSE_BUDGET);
    assert!(t.levels[2].dense.is_empty());
    // Every dense entry agrees with the CSR lists.
    for lt in &t.levels[..2] {
        for n in 0..lt.first.len() {
            let toks = &lt.tokens[lt.offsets[n] as usize..lt.offsets[n + 1] as usize];
            for tok in 0..256usize {
                let want = toks
                    .iter()
                    .position(|&x| x as usize == tok)
                    .map_or(gpu::NOT_ALLOWED, |i| i as u32);
                assert_eq!(lt.dense[n * 256 + tok], want);
            }
        }
    }
    let csr = gpu::TrieTables::with_dense_budget(&trie, 0);
    assert!(csr.levels.iter().all(|l| l.dense.is_empty()));
    // Tables of another trie with the same depth are refused.
    let other = Trie::from_ids(&ids[..300], 3, &[256, 256, 256]).unwrap();
    let mut ok = semid::decode::FnScorer(
        |_q: usize, _p: &[u16], o: &mut [f32]| -> semid::Result<()> {
            o.fill(0.0);
            Ok(())
        },
    );
    assert!(gpu::search_with_step(&other, &t, &mut ok, 1, 2, 2, &mut emulated_step).is_err());
}
