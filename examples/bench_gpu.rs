//! GPU against CPU on the same data, one JSON line per workload (feature
//! `cuda`): nearest-centroid assignment rows/s, k-means fit seconds,
//! RQ-KMeans 3 × k greedy encode vectors/s (from host memory, and
//! device-resident), FSQ vectors/s and trie-constrained beam-search
//! queries/s. Without a usable GPU it prints one line saying why and the
//! CPU figures alone.
//!
//! `cargo run --release --features cuda --example bench_gpu -- [--rows N]
//! [--k K] [--dim D] [--fit-rows N] [--fit-k K] [--skip-cpu-fit]`

use std::time::Instant;

use semid::decode::{BeamSearch, FnScorer};
use semid::gpu::{Device, DeviceSteps, TrieTables};
use semid::quantize::Fsq;
use semid::sid::Trie;
use semid::{Embeddings, KMeans, KMeansConfig, Par, Quantizer, RqKMeans, RqKMeansConfig, kernels};

mod common;
use common::{Args, Flag};

const ABOUT: &str = "GPU against CPU on the same data (feature cuda), one JSON line per workload";

const FLAGS: &[Flag] = &[
    ("--rows", true, "200000", "rows assigned and encoded"),
    ("--k", true, "256", "centroids"),
    ("--dim", true, "256", "dimension"),
    (
        "--fit-rows",
        true,
        "",
        "rows of the k-means fit (default: --rows)",
    ),
    ("--fit-k", true, "1024", "centroids of the k-means fit"),
    ("--skip-cpu-fit", false, "", "leave out the CPU k-means fit"),
    ("--items", true, "100000", "beam search: catalog items"),
    ("--queries", true, "1024", "beam search: queries"),
];

/// Seeded values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("runs >= 1"))
}

fn main() -> std::process::ExitCode {
    common::run("bench_gpu", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_gpu", ABOUT, FLAGS);
    let rows: usize = args.num("--rows")?;
    let (k, d): (usize, usize) = (args.num("--k")?, args.num("--dim")?);
    let dev = match Device::open(0) {
        Ok(d) => Some(d),
        Err(e) => {
            println!(
                "{{\"bench\":\"gpu\",\"device\":null,\"skipped\":{:?}}}",
                e.to_string()
            );
            None
        }
    };
    let x = values(rows * d, 1);
    let c = values(k * d, 2);
    let (cpu_s, (want, _)) = best_of(3, || kernels::nearest(&x, &c, d, Par::default()).unwrap());
    let mut line = format!(
        "{{\"workload\":\"assign\",\"rows\":{rows},\"k\":{k},\"d\":{d},\"cpu_rows_per_s\":{:.0}",
        rows as f64 / cpu_s
    );
    if let Some(dev) = &dev {
        dev.nearest(&x[..d], &c, d)?; // warm-up
        let (gpu_s, (labels, _)) = best_of(3, || dev.nearest(&x, &c, d).unwrap());
        let same = labels.iter().zip(&want).filter(|(a, b)| a == b).count();
        line += &format!(
            ",\"gpu_rows_per_s\":{:.0},\"labels_equal_fraction\":{:.6}",
            rows as f64 / gpu_s,
            same as f64 / rows as f64
        );
    }
    println!("{line}}}");

    // k-means fit (default initialisation, default iterations) on
    // `--fit-rows` rows with `--fit-k` centroids.
    let (fit_rows, fit_k) = (
        args.opt("--fit-rows")?.unwrap_or(rows).min(rows),
        args.num::<usize>("--fit-k")?,
    );
    let fe = Embeddings::new(&x[..fit_rows * d], d)?;
    let cfg = KMeansConfig::new(fit_k).seed(0);
    let mut line =
        format!("{{\"workload\":\"kmeans_fit\",\"rows\":{fit_rows},\"k\":{fit_k},\"d\":{d}");
    let mut cpu_inertia = None;
    if !args.on("--skip-cpu-fit") {
        let (cpu_s, (_, r)) = best_of(1, || KMeans::fit(&cfg, fe).unwrap());
        line += &format!(
            ",\"cpu_seconds\":{cpu_s:.3},\"cpu_inertia\":{:.6e}",
            r.inertia
        );
        cpu_inertia = Some(r.inertia);
    }
    if let Some(dev) = &dev {
        let mut steps = DeviceSteps::new(dev)?;
        let (gpu_s, (_, r)) = best_of(2, || KMeans::fit_with_steps(&cfg, fe, &mut steps).unwrap());
        line += &format!(
            ",\"gpu_seconds\":{gpu_s:.3},\"gpu_inertia\":{:.6e},\"iterations\":{}",
            r.inertia, r.iterations
        );
        if let Some(c) = cpu_inertia {
            line += &format!(",\"inertia_ratio\":{:.6}", r.inertia / c);
        }
    }
    println!("{line}}}");

    // RQ-KMeans 3 × k greedy encode from host memory.
    let sample = rows.min(20_000);
    let (rq, _) = RqKMeans::fit(
        &RqKMeansConfig::new(3, k).seed(0),
        Embeddings::new(&x[..sample * d], d)?,
    )?;
    let e = Embeddings::new(&x, d)?;
    let (cpu_s, want) = best_of(3, || rq.encode(e).unwrap());
    let mut line = format!(
        "{{\"workload\":\"rq_encode_host\",\"rows\":{rows},\"levels\":3,\"k\":{k},\"d\":{d},\"cpu_vectors_per_s\":{:.0}",
        rows as f64 / cpu_s
    );
    if let Some(dev) = &dev {
        let (gpu_s, got) = best_of(3, || dev.rq_encode(&rq, &x).unwrap());
        let same = got
            .iter()
            .zip(want.as_slice())
            .filter(|(a, b)| a == b)
            .count();
        line += &format!(
            ",\"gpu_vectors_per_s\":{:.0},\"codes_equal_fraction\":{:.6}",
            rows as f64 / gpu_s,
            same as f64 / got.len() as f64
        );
    }
    println!("{line}}}");

    // The same encode with rows and codes resident on the device (the
    // upload is not timed; the codes' copy back, 6 bytes a row, is).
    if let Some(dev) = &dev {
        let rows_dev = dev.upload_rows(&x, d)?;
        let host = dev.rq_encode(&rq, &x)?;
        let (gpu_s, got) = best_of(3, || {
            dev.rq_encode_device(&rq, &rows_dev)
                .and_then(|c| c.to_host())
                .unwrap()
        });
        println!(
            "{{\"workload\":\"rq_encode_device\",\"rows\":{rows},\"levels\":3,\"k\":{k},\"d\":{d},\"gpu_vectors_per_s\":{:.0},\"equal_to_host_path\":{}}}",
            rows as f64 / gpu_s,
            got == host
        );
    }

    let fsq = Fsq::new(&[8, 5, 5, 5])?;
    let z = values(rows * 4, 3);
    let (cpu_s, want) = best_of(3, || {
        let mut o = vec![0u16; rows];
        fsq.indices_into(&z, &mut o, Par::default()).unwrap();
        o
    });
    let mut line = format!(
        "{{\"workload\":\"fsq\",\"rows\":{rows},\"levels\":[8,5,5,5],\"cpu_vectors_per_s\":{:.0}",
        rows as f64 / cpu_s
    );
    if let Some(dev) = &dev {
        let (gpu_s, got) = best_of(3, || dev.fsq_indices(&fsq, &z).unwrap());
        line += &format!(
            ",\"gpu_vectors_per_s\":{:.0},\"identical\":{}",
            rows as f64 / gpu_s,
            got == want
        );
    }
    println!("{line}}}");

    let (items, nq, beam) = (
        args.num::<usize>("--items")?,
        args.num::<usize>("--queries")?,
        20,
    );
    let ids: Vec<u16> = values(items * 3, 4)
        .iter()
        .map(|&v| ((v + 1.0) * 128.0) as u16 % 256)
        .collect();
    let trie = Trie::from_ids(&ids, 3, &[256, 256, 256])?;
    let tables = TrieTables::new(&trie);
    let score = |q: usize, p: &[u16], out: &mut [f32]| -> semid::Result<()> {
        let h = q as u32
            ^ p.iter()
                .fold(7u32, |a, &x| a.wrapping_mul(31) ^ u32::from(x));
        for (t, o) in out.iter_mut().enumerate() {
            *o = -(((h ^ t as u32).wrapping_mul(2_654_435_761) >> 20) as f32) / 4096.0;
        }
        Ok(())
    };
    let (cpu_s, want) = best_of(3, || {
        BeamSearch::new(beam, 10)
            .unwrap()
            .search(&trie, &mut FnScorer(score), nq)
            .unwrap()
    });
    let mut line = format!(
        "{{\"workload\":\"beam_search\",\"ids\":{},\"queries\":{nq},\"beam\":{beam},\"cpu_queries_per_s\":{:.0}",
        trie.len(),
        nq as f64 / cpu_s
    );
    if let Some(dev) = &dev {
        let (gpu_s, got) = best_of(3, || {
            dev.search(&trie, &tables, &mut FnScorer(score), nq, beam, 10)
                .unwrap()
        });
        line += &format!(
            ",\"gpu_queries_per_s\":{:.0},\"identical\":{}",
            nq as f64 / gpu_s,
            got == want
        );
    }
    println!("{line}}}");
    Ok(())
}
