//! The device path on a real GPU: each GPU twin against its CPU twin. Runs
//! where `Device::open(0)` succeeds; elsewhere each test prints why it
//! skipped.

use semid::gpu::Device;
use semid::quantize::Fsq;
use semid::{Error, Par};

fn device() -> Option<Device> {
    match Device::open(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no usable GPU ({e})");
            None
        }
    }
}

#[test]
fn fsq_indices_on_the_device_equal_the_cpu() {
    let Some(dev) = device() else { return };
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    for n in [0usize, 1, 255, 257, 100_000] {
        let z: Vec<f32> = (0..n * 4)
            .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 6.0)
            .collect();
        let mut want = vec![0u16; n];
        if n > 0 {
            fsq.indices_into(&z, &mut want, Par::Seq).unwrap();
        }
        assert_eq!(dev.fsq_indices(&fsq, &z).unwrap(), want, "n={n}");
    }
    let bad = vec![f32::NAN; 4];
    assert!(matches!(
        dev.fsq_indices(&fsq, &bad),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn nearest_on_the_device_equals_the_cpu() {
    let Some(dev) = device() else { return };
    let (k, d) = (300usize, 64usize);
    let c: Vec<f32> = (0..k * d)
        .map(|i| ((i as f32 * 0.754_877_7).fract() - 0.5) * 40.0)
        .collect();
    for n in [0usize, 1, 257, 50_000] {
        // Rows near centroid i % k: no near ties.
        let x: Vec<f32> = (0..n * d)
            .map(|i| c[((i / d) % k) * d + i % d] + ((i as f32 * 0.618_034).fract() - 0.5) * 0.1)
            .collect();
        let (labels, dists) = dev.nearest(&x, &c, d).unwrap();
        let (want, want_d) = semid::kernels::nearest(&x, &c, d, Par::Seq).unwrap();
        assert_eq!(labels, want, "n={n}");
        for (a, b) in dists.iter().zip(&want_d) {
            assert!((a - b).abs() <= 1e-3 * b.max(1.0), "{a} vs {b}");
        }
    }
    // Exact ties go to the lower index.
    let twin = [c[..d].to_vec(), c[..d].to_vec()].concat();
    let (labels, _) = dev.nearest(&c[..d], &twin, d).unwrap();
    assert_eq!(labels, vec![0]);
    let mut bad = c[..d].to_vec();
    bad[5] = f32::NAN;
    assert!(matches!(
        dev.nearest(&bad, &c, d),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        dev.nearest(&c[..d], &[], d),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn beam_search_on_the_device_equals_the_cpu() {
    use semid::decode::{BeamSearch, FnScorer};
    use semid::gpu::TrieTables;
    use semid::sid::Trie;
    let Some(dev) = device() else { return };
    let ids: Vec<u16> = (0..3000u32)
        .flat_map(|i| [(i % 17) as u16, (i * 7 % 31) as u16, (i % 5) as u16])
        .collect();
    let trie = Trie::from_ids(&ids, 3, &[17, 31, 5]).unwrap();
    let tables = TrieTables::new(&trie);
    let score = |q: usize, p: &[u16], out: &mut [f32]| -> semid::Result<()> {
        for (t, o) in out.iter_mut().enumerate() {
            let h = (q * 131 + p.iter().map(|&x| x as usize * 17).sum::<usize>() + t * 7) % 11;
            *o = -(h as f32) / 3.0;
        }
        Ok(())
    };
    for (nq, beam, k) in [(1usize, 1usize, 1usize), (300, 8, 10), (1000, 20, 5)] {
        let want = BeamSearch::new(beam, k)
            .unwrap()
            .search(&trie, &mut FnScorer(score), nq)
            .unwrap();
        let got = dev
            .search(&trie, &tables, &mut FnScorer(score), nq, beam, k)
            .unwrap();
        assert_eq!(got, want, "nq={nq} beam={beam}");
    }
}

#[test]
fn rq_encode_on_the_device_equals_the_cpu() {
    use semid::{Embeddings, Quantizer, RqKMeans, RqKMeansConfig};
    let Some(dev) = device() else { return };
    let (n, d) = (20_000usize, 32usize);
    let x: Vec<f32> = (0..n * d)
        .map(|i| {
            ((i / d % 50) as f32 * 3.1 + (i % d) as f32).sin() * 10.0
                + ((i as f32 * 0.618_034).fract() - 0.5) * 0.2
        })
        .collect();
    let e = Embeddings::new(&x, d).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 64).seed(0), e).unwrap();
    let want = rq.encode(e).unwrap();
    let got = dev.rq_encode(&rq, &x).unwrap();
    let same = got
        .iter()
        .zip(want.as_slice())
        .filter(|(a, b)| a == b)
        .count();
    // Near-ties may differ (products summed in another order): almost all equal.
    assert!(
        same as f64 >= 0.999 * got.len() as f64,
        "{same} of {}",
        got.len()
    );
    assert!(dev.rq_encode(&rq, &[]).unwrap().is_empty());
}

/// Rows around 50 centres, with small noise (few near ties).
fn clustered(n: usize, d: usize) -> Vec<f32> {
    (0..n * d)
        .map(|i| {
            ((i / d % 50) as f32 * 3.1 + (i % d) as f32).sin() * 10.0
                + ((i as f32 * 0.618_034).fract() - 0.5) * 0.2
        })
        .collect()
}

#[test]
fn rq_encode_streaming_and_device_resident_equal_the_cpu() {
    use semid::{Embeddings, Quantizer, RqKMeans, RqKMeansConfig};
    let Some(dev) = device() else { return };
    let (n, d) = (20_000usize, 32usize);
    let x = clustered(n, d);
    let e = Embeddings::new(&x, d).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 64).seed(0), e).unwrap();
    let want = rq.encode(e).unwrap();
    let whole = dev.rq_encode(&rq, &x).unwrap();
    // 26 batches through the two staging buffers and streams, the last
    // one partial.
    let batched = dev.rq_encode_batches(&rq, &x, 777).unwrap();
    assert_eq!(batched, whole);
    let rows = dev.upload_rows(&x, d).unwrap();
    let resident = dev.rq_encode_device(&rq, &rows).unwrap();
    assert_eq!((resident.rows(), resident.cols()), (n, 3));
    assert_eq!(resident.to_host().unwrap(), whole);
    // The input rows are unchanged on the device.
    let back = rows.data().stream().clone_dtoh(rows.data()).unwrap();
    assert_eq!(back, x);
    let same = whole
        .iter()
        .zip(want.as_slice())
        .filter(|(a, b)| a == b)
        .count();
    assert!(same as f64 >= 0.999 * whole.len() as f64, "{same}");
    assert!(dev.rq_encode_batches(&rq, &x, 0).is_err());
    let empty = dev.upload_rows(&[], d).unwrap();
    assert!(
        dev.rq_encode_device(&rq, &empty)
            .unwrap()
            .to_host()
            .unwrap()
            .is_empty()
    );
    let wrong = dev.upload_rows(&x[..d * 4], 8).unwrap();
    assert!(matches!(
        dev.rq_encode_device(&rq, &wrong),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn kmeans_and_rq_kmeans_fit_on_the_device_match_the_cpu() {
    use semid::gpu::DeviceSteps;
    use semid::{Embeddings, KMeans, KMeansConfig, RqKMeans, RqKMeansConfig};
    let Some(dev) = device() else { return };
    let (n, d) = (30_000usize, 48usize);
    let x = clustered(n, d);
    let e = Embeddings::new(&x, d).unwrap();
    let cfg = KMeansConfig::new(100).seed(2);
    let (cpu, cpu_r) = KMeans::fit(&cfg, e).unwrap();
    let mut steps = DeviceSteps::new(&dev).unwrap();
    let (gpu, gpu_r) = KMeans::fit_with_steps(&cfg, e, &mut steps).unwrap();
    // SGEMM may break near ties differently; the fits end at the same
    // inertia within 1% (usually bit-identical).
    let rel = (gpu_r.inertia - cpu_r.inertia).abs() / cpu_r.inertia.max(1e-12);
    assert!(rel < 0.01, "inertia {} vs {}", gpu_r.inertia, cpu_r.inertia);
    assert_eq!(gpu.k(), cpu.k());
    let rcfg = RqKMeansConfig::new(2, 32).seed(4);
    let (_, cpu_rq) = RqKMeans::fit(&rcfg, e).unwrap();
    let (_, gpu_rq) = RqKMeans::fit_with_steps(&rcfg, e, &mut steps).unwrap();
    let rel = (gpu_rq.mse - cpu_rq.mse).abs() / cpu_rq.mse.max(1e-12);
    assert!(rel < 0.01, "mse {} vs {}", gpu_rq.mse, cpu_rq.mse);
}
