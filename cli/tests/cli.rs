//! The `semid` binary run as a user runs it: round trips on files the
//! tests write (.npy and Parquet), and every bad input of the issue's list,
//! each with its exit code, a message naming the file, and no output left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, Float64Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use semid::{Embeddings, ModelFile, Quantizer, synthetic};

/// A scratch directory of its own per test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("semid-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn p(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    /// Every file name in the directory (to see that nothing is left).
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn semid(args: &[&str]) -> Output {
    semid_env(args, &[])
}

fn semid_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_semid"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the semid binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts success and returns stdout.
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts exit `code`, one line of stderr containing every `needle`, and
/// no panic.
fn fails(o: &Output, code: i32, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "`{n}` not in: {e}");
    }
}

/// 600 × 16 clustered rows.
fn mixture() -> (Vec<f32>, usize) {
    let cfg = synthetic::MixtureConfig {
        n: 600,
        dim: 16,
        topics: 12,
        seed: 3,
        ..Default::default()
    };
    (synthetic::hierarchical_mixture(&cfg), 16)
}

/// The rows as Parquet: `emb` a fixed-size list of f32 (or a variable list
/// of f64), `id` int64 item ids (1000 + row), `name` text.
fn write_parquet(path: &Path, x: &[f32], d: usize, fixed: bool) {
    let n = x.len() / d;
    let emb: ArrayRef = if fixed {
        let mut b = FixedSizeListBuilder::new(Float32Builder::new(), d as i32);
        for row in x.chunks_exact(d) {
            b.values().append_slice(row);
            b.append(true);
        }
        Arc::new(b.finish())
    } else {
        let mut b = ListBuilder::new(Float64Builder::new());
        for row in x.chunks_exact(d) {
            for &v in row {
                b.values().append_value(v as f64);
            }
            b.append(true);
        }
        Arc::new(b.finish())
    };
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..n as i64).map(|i| 1000 + i),
    ));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("item{i}")),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("emb", emb.data_type().clone(), false),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), vec![ids, names, emb]).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    // Two row groups' worth of batches.
    w.write(&batch.slice(0, n / 2)).unwrap();
    w.flush().unwrap();
    w.write(&batch.slice(n / 2, n - n / 2)).unwrap();
    w.close().unwrap();
}

/// A `<u2` .npy written by `semid encode`, as `(codes, columns)`.
fn read_codes_npy(path: &Path) -> (Vec<u16>, usize) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<u2'"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap();
    let cols: usize = shape
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let codes = b[10 + hlen..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    (codes, cols)
}

/// The `codes` column (and the `id` column, if any) of a Parquet output.
fn read_codes_parquet(path: &Path) -> (Vec<u16>, Option<Vec<i64>>) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt16Type};
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let (mut codes, mut ids) = (Vec::new(), None::<Vec<i64>>);
    for b in r {
        let b = b.unwrap();
        let c = b.column_by_name("codes").unwrap().as_fixed_size_list();
        codes.extend_from_slice(c.values().as_primitive::<UInt16Type>().values());
        if let Some(id) = b.column_by_name("id") {
            ids.get_or_insert_with(Vec::new)
                .extend_from_slice(id.as_primitive::<Int64Type>().values());
        }
    }
    (codes, ids)
}

/// `items.npy` (the mixture) and `rq.semid` (RQ-KMeans 2 × 8 fitted on it
/// by the CLI) in `dir`.
fn fitted(dir: &Dir) -> (Vec<f32>, usize, PathBuf, PathBuf) {
    let (x, d) = mixture();
    let input = dir.p("items.npy");
    semid::npy::write_npy(&input, &x, d).unwrap();
    let model = dir.p("rq.semid");
    ok(semid(&[
        "fit",
        "--input",
        s(&input),
        "--quantizer",
        "rq-kmeans",
        "--levels",
        "2",
        "--k",
        "8",
        "--out",
        s(&model),
    ]));
    (x, d, input, model)
}

#[test]
fn fit_encode_index_search_eval_inspect_round_trip() {
    let dir = Dir::new("round-trip");
    let (x, d) = mixture();
    let input = dir.p("items.npy");
    semid::npy::write_npy(&input, &x, d).unwrap();
    let model = dir.p("rq.semid");
    let out = ok(semid(&[
        "fit",
        "--input",
        s(&input),
        "--quantizer",
        "rq-kmeans",
        "--levels",
        "2",
        "--k",
        "8",
        "--seed",
        "5",
        "--out",
        s(&model),
        "--quiet",
    ]));
    assert!(out.contains("fitted rq-kmeans on 600 × 16"), "{out}");
    // The CLI's model is the library's with the same config.
    let lib_cfg = semid::RqKMeansConfig::new(2, 8).seed(5);
    let (lib, _) = semid::RqKMeans::fit(&lib_cfg, Embeddings::new(&x, d).unwrap()).unwrap();
    let cli = semid::RqKMeans::load(&model).unwrap();
    assert_eq!(cli, lib);

    // encode: .npy equals the library's codes; whatever the block size.
    let want = lib.encode(Embeddings::new(&x, d).unwrap()).unwrap();
    for block in ["7", "65536"] {
        let codes = dir.p(&format!("codes{block}.npy"));
        ok(semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--out",
            s(&codes),
            "--block-rows",
            block,
            "--threads",
            "1",
        ]));
        let (got, cols) = read_codes_npy(&codes);
        assert_eq!((got.as_slice(), cols), (want.as_slice(), 2));
    }

    // index build / info / insert
    let index = dir.p("items.semid");
    let out = ok(semid(&[
        "index",
        "build",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--out",
        s(&index),
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["items"], 600);
    assert_eq!(report["collision_rate"], 0.0);
    let info: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "index",
        "info",
        "--index",
        s(&index),
        "--json",
    ])))
    .unwrap();
    assert_eq!(info["items"], 600);
    assert_eq!(info["id_len"], 3);
    // LC-Rec's Sinkhorn policy: unique IDs too, after moving last tokens.
    let sk = dir.p("sinkhorn.semid");
    let v: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "index",
        "build",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--out",
        s(&sk),
        "--policy",
        "sinkhorn",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (v["items"].as_u64(), v["unique_ids"].as_u64()),
        (Some(600), Some(600))
    );
    assert!(v["moved"].as_u64().unwrap() > 0, "{v}");
    let more = dir.p("more.npy");
    semid::npy::write_npy(&more, &x[..10 * d], d).unwrap();
    let grown = dir.p("grown.semid");
    ok(semid(&[
        "index",
        "insert",
        "--index",
        s(&index),
        "--input",
        s(&more),
        "--out",
        s(&grown),
    ]));
    let g = semid::SemanticIndex::load(&grown).unwrap();
    let before = semid::SemanticIndex::load(&index).unwrap();
    assert_eq!(g.len(), 610);
    for item in 0..600 {
        assert_eq!(g.id_of(item), before.id_of(item), "item {item} kept its ID");
    }
    assert!(g.id_of(600).is_some() && g.id_of(609).is_some());

    // search (TREC run) → eval: every item finds itself among its 5 hits.
    let run = dir.p("run.txt");
    ok(semid(&[
        "search",
        "--index",
        s(&index),
        "--queries",
        s(&input),
        "--k",
        "5",
        "--format",
        "trec",
        "--out",
        s(&run),
    ]));
    let lib_hits = before
        .search_embeddings(
            Embeddings::new(&x, d).unwrap(),
            &mut semid::BeamSearch::new(20, 5).unwrap(),
        )
        .unwrap();
    let text = std::fs::read_to_string(&run).unwrap();
    let first: Vec<u32> = text
        .lines()
        .filter(|l| l.starts_with("0 "))
        .map(|l| l.split(' ').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(first, lib_hits.query(0).items);
    let qrels = dir.p("qrels.txt");
    let q: String = (0..600).map(|i| format!("{i} 0 {i} 1\n")).collect();
    std::fs::write(&qrels, q).unwrap();
    let ev: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "eval",
        "--run",
        s(&run),
        "--qrels",
        s(&qrels),
        "--metrics",
        "recall_5,success_1",
        "--json",
    ])))
    .unwrap();
    // The share of items among their own hits, from the library's search
    // of all 600 (2 × 8 codes: ~9 items per code, tied under the suffix).
    let all_hits = before
        .search_embeddings(
            Embeddings::new(&x, d).unwrap(),
            &mut semid::BeamSearch::new(20, 5).unwrap(),
        )
        .unwrap();
    let found = (0..600)
        .filter(|&i| all_hits.query(i).items.contains(&(i as u32)))
        .count();
    // (serde_json's default float parsing may be one ulp off.)
    let recall = ev["all"]["recall_5"].as_f64().unwrap();
    assert!((recall - found as f64 / 600.0).abs() < 1e-12, "{ev}");
    assert!(found > 100, "{found}");
    // TSV and JSON lines carry the same hits.
    let tsv = ok(semid(&[
        "search",
        "--index",
        s(&index),
        "--queries",
        s(&more),
        "--k",
        "3",
    ]));
    assert_eq!(tsv.lines().next(), Some("query\trank\titem\tscore"));
    assert_eq!(tsv.lines().count(), 1 + 30);
    let js = ok(semid(&[
        "search",
        "--index",
        s(&index),
        "--queries",
        s(&more),
        "--k",
        "3",
        "--format",
        "json",
    ]));
    let row0: serde_json::Value = serde_json::from_str(js.lines().next().unwrap()).unwrap();
    assert_eq!(row0["items"].as_array().unwrap().len(), 3);

    // inspect: a quantizer with data, an index alone, the SVG chart.
    let plot = dir.p("usage.svg");
    let v: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "inspect",
        s(&model),
        "--data",
        s(&input),
        "--plot",
        s(&plot),
        "--json",
    ])))
    .unwrap();
    assert_eq!(v["kind"], "RqKMeans");
    let q = semid::stats::code_quality(&want, &[8, 8]).unwrap();
    assert_eq!(v["usage"]["unique_codes"], q.unique_codes);
    let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-12;
    assert!(close(&v["usage"]["collision_rate"], q.collision_rate));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("level 1: items per code"));
    let text = ok(semid(&["inspect", s(&index)]));
    assert!(text.contains("collision buckets"), "{text}");
    // The index's build report and inspect agree on the collision rate.
    assert!(close(&report["code_collision_rate"], q.collision_rate));
}

#[test]
fn parquet_input_and_output_match_npy() {
    let dir = Dir::new("parquet");
    let (x, d) = mixture();
    let npy = dir.p("items.npy");
    semid::npy::write_npy(&npy, &x, d).unwrap();
    let model = dir.p("rq.semid");
    ok(semid(&[
        "fit",
        "--input",
        s(&npy),
        "--quantizer",
        "rq-kmeans",
        "--levels",
        "3",
        "--k",
        "8",
        "--out",
        s(&model),
    ]));
    let (want, _) = {
        let out = dir.p("c.npy");
        ok(semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&npy),
            "--out",
            s(&out),
        ]));
        read_codes_npy(&out)
    };
    for fixed in [true, false] {
        let pq = dir.p(&format!("items-{fixed}.parquet"));
        write_parquet(&pq, &x, d, fixed);
        // Parquet → .npy
        let out = dir.p(&format!("pq-{fixed}.npy"));
        ok(semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&pq),
            "--out",
            s(&out),
            "--block-rows",
            "64",
        ]));
        assert_eq!(read_codes_npy(&out).0, want, "fixed {fixed}");
        // Parquet → Parquet, ids carried.
        let out = dir.p(&format!("pq-{fixed}.parquet"));
        ok(semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&pq),
            "--column",
            "emb",
            "--id-column",
            "id",
            "--out",
            s(&out),
        ]));
        let (codes, ids) = read_codes_parquet(&out);
        assert_eq!(codes, want);
        assert_eq!(ids.unwrap(), (1000..1600).collect::<Vec<i64>>());
        // A model fitted on Parquet is the one fitted on .npy (f64 lists
        // round to the same f32).
        let m2 = dir.p(&format!("rq-{fixed}.semid"));
        ok(semid(&[
            "fit",
            "--input",
            s(&pq),
            "--quantizer",
            "rq-kmeans",
            "--levels",
            "3",
            "--k",
            "8",
            "--out",
            s(&m2),
        ]));
        assert_eq!(std::fs::read(&m2).unwrap(), std::fs::read(&model).unwrap());
    }
}

#[test]
fn every_quantizer_fits_from_flags_and_a_config_file() {
    let dir = Dir::new("quantizers");
    let (x, d) = mixture();
    let input = dir.p("items.npy");
    semid::npy::write_npy(&input, &x, d).unwrap();
    // 4 columns for the FSQ quantizers without projection.
    let x4: Vec<f32> = x.chunks_exact(d).flat_map(|r| r[..4].to_vec()).collect();
    let input4 = dir.p("items4.npy");
    semid::npy::write_npy(&input4, &x4, 4).unwrap();
    let quick = dir.p("quick.json");
    std::fs::write(
        &quick,
        r#"{"epochs": 1, "min_steps": 0, "batch_size": 128}"#,
    )
    .unwrap();
    // Case 1's model, which the warm-started RQ-VAE case reads.
    let warm_from = dir.p("rq-kmeans1.semid");
    let cases: Vec<(&str, Vec<&str>, &Path, usize)> = vec![
        ("kmeans", vec!["--k", "16"], &input, 1),
        ("rq-kmeans", vec!["--levels", "2", "--k", "8"], &input, 2),
        // A codebook size per level: --levels follows the list.
        ("rq-kmeans", vec!["--codebook-sizes", "16,8,4"], &input, 3),
        (
            "rq-vae",
            vec![
                "--codebook-sizes",
                "16,8",
                "--latent",
                "4",
                "--config",
                s(&quick),
            ],
            &input,
            2,
        ),
        (
            "rq-vae",
            vec![
                "--levels",
                "2",
                "--k",
                "8",
                "--latent",
                "4",
                "--config",
                s(&quick),
            ],
            &input,
            2,
        ),
        (
            "rq-vae",
            vec!["--warm-start", s(&warm_from), "--config", s(&quick)],
            &input,
            2,
        ),
        (
            "fsq-ae",
            vec!["--levels-per-dim", "5,5,3", "--config", s(&quick)],
            &input,
            1,
        ),
        ("pq", vec!["--m", "4", "--k", "8"], &input, 4),
        ("opq", vec!["--m", "2", "--k", "8"], &input, 2),
        ("fsq", vec!["--levels-per-dim", "5,5,5,5"], &input4, 1),
        (
            "residual-fsq",
            vec!["--levels-per-dim", "5,5,5,5", "--levels", "2"],
            &input4,
            2,
        ),
    ];
    for (case, (kind, flags, data, levels)) in cases.into_iter().enumerate() {
        let sizes: Option<Vec<usize>> =
            flags
                .iter()
                .position(|&f| f == "--codebook-sizes")
                .map(|i| {
                    flags[i + 1]
                        .split(',')
                        .map(|v| v.parse().unwrap())
                        .collect()
                });
        let out = dir.p(&format!("{kind}{case}.semid"));
        let mut args = vec![
            "fit",
            "--input",
            s(data),
            "--quantizer",
            kind,
            "--out",
            s(&out),
            "--json",
        ];
        args.extend(flags);
        let v: serde_json::Value = serde_json::from_str(&ok(semid(&args))).unwrap();
        assert_eq!(v["levels"], levels, "{kind}");
        let q = semid::quantize::AnyQuantizer::load(&out).unwrap();
        assert_eq!(q.levels(), levels, "{kind}");
        if let Some(sizes) = sizes {
            assert_eq!(q.codebook_sizes(), sizes, "{kind}");
        }
        // Every model encodes through the CLI.
        let codes = dir.p(&format!("{kind}{case}.npy"));
        ok(semid(&[
            "encode",
            "--model",
            s(&out),
            "--input",
            s(data),
            "--out",
            s(&codes),
        ]));
        assert_eq!(read_codes_npy(&codes).1, levels);
    }
    // --print-config shows the merged config; the file and flags land in it.
    let v: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "fit",
        "--quantizer",
        "rq-vae",
        "--config",
        s(&quick),
        "--k",
        "32",
        "--print-config",
    ])))
    .unwrap();
    assert_eq!((v["epochs"].as_u64(), v["k"].as_u64()), (Some(1), Some(32)));
    let v: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "fit",
        "--quantizer",
        "rq-kmeans",
        "--print-config",
    ])))
    .unwrap();
    assert!(v["kmeans"].get("k").is_none() && v["k"] == 256, "{v}");
}

#[test]
fn eval_equals_pytrec_eval_on_the_golden_case() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/metrics_case");
    let v: serde_json::Value = serde_json::from_str(&ok(semid(&[
        "eval",
        "--run",
        s(&case.join("run.tsv")),
        "--qrels",
        s(&case.join("qrels.tsv")),
        "--metrics",
        "recall_5,recall_10,recall_20,ndcg_cut_5,ndcg_cut_10,ndcg_cut_20,success_10",
        "--json",
    ])))
    .unwrap();
    let reference = std::fs::read_to_string(case.join("reference.tsv")).unwrap();
    let mut checked = 0;
    for line in reference.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 || f[0] != "mean" || f[1] != "pytrec_eval" {
            continue;
        }
        let name = match f[3].split_once('@').unwrap() {
            ("recall", k) => format!("recall_{k}"),
            ("ndcg", k) => format!("ndcg_cut_{k}"),
            ("hit", k) => format!("success_{k}"),
            _ => continue,
        };
        let want: f64 = f[4].parse().unwrap();
        let got = v["all"][&name].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-12,
            "{name}: {got} vs pytrec_eval {want}"
        );
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[test]
fn help_everywhere_and_unknown_flags_refused() {
    for cmd in [
        vec![],
        vec!["fit"],
        vec!["encode"],
        vec!["index"],
        vec!["index", "build"],
        vec!["index", "insert"],
        vec!["index", "info"],
        vec!["search"],
        vec!["eval"],
        vec!["inspect"],
    ] {
        let mut a = cmd.clone();
        a.push("--help");
        let out = ok(semid(&a));
        assert!(out.contains("Usage:"), "{cmd:?}");
        let mut a = cmd.clone();
        a.push("--no-such-flag");
        fails(&semid(&a), 2, &["--no-such-flag"]);
    }
    fails(&semid(&[]), 2, &["Usage"]);
}

#[test]
fn bad_input_exits_with_a_message_and_leaves_no_output() {
    let dir = Dir::new("bad");
    let (x, d, input, model) = fitted(&dir);
    let out = dir.p("out.npy");
    let encode = |inp: &Path| {
        semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(inp),
            "--out",
            s(&out),
        ])
    };
    let before = dir.files();

    // A missing file, a directory.
    let missing = dir.p("nope.npy");
    fails(&encode(&missing), 2, &["nope.npy", "check the input path"]);
    fails(&encode(&dir.0), 2, &["is a directory"]);
    // A text file named .npy.
    let text = dir.p("text.npy");
    std::fs::write(&text, "id,vector\n1,0.5\n").unwrap();
    fails(&encode(&text), 1, &["text.npy", "neither a .npy file"]);
    // A 1-D array and a 0-column array.
    let one_d = dir.p("one_d.npy");
    let mut b = semid::npy::header("<f4", &[4]);
    b.extend_from_slice(&[0u8; 16]);
    std::fs::write(&one_d, b).unwrap();
    fails(&encode(&one_d), 1, &["one_d.npy", "2-D"]);
    let zero = dir.p("zero.npy");
    std::fs::write(&zero, semid::npy::header("<f4", &[4, 0])).unwrap();
    fails(&encode(&zero), 1, &["zero.npy", "0 values"]);
    // NaN in a row: the message gives the row and column.
    let mut xn = x.clone();
    xn[37 * d + 4] = f32::NAN;
    let nan = dir.p("nan.npy");
    semid::npy::write_npy(&nan, &xn, d).unwrap();
    fails(&encode(&nan), 1, &["nan.npy", "row 37", "column 4"]);
    // Row 37 is row 5 of the third block of 16: the message counts from
    // the file's start.
    fails(
        &semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&nan),
            "--out",
            s(&out),
            "--block-rows",
            "16",
        ]),
        1,
        &["nan.npy", "row 37", "column 4"],
    );
    // Parquet without a float list column, and with ragged rows.
    let no_list = dir.p("nolist.parquet");
    {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef],
        )
        .unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&no_list).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    fails(
        &encode(&no_list),
        1,
        &[
            "nolist.parquet",
            "no column is a list of floats",
            "id: Int64",
        ],
    );
    let ragged = dir.p("ragged.parquet");
    {
        let mut b = ListBuilder::new(Float32Builder::new());
        for r in 0..5 {
            let w = if r == 3 { d - 1 } else { d };
            b.values().append_slice(&x[r * d..r * d + w]);
            b.append(true);
        }
        let col: ArrayRef = Arc::new(b.finish());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "emb",
            col.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![col]).unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&ragged).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    fails(&encode(&ragged), 1, &["ragged.parquet", "row 3", "ragged"]);
    // An unknown quantizer; flags that conflict or do not apply.
    fails(
        &semid(&[
            "fit",
            "--input",
            s(&input),
            "--quantizer",
            "lsh",
            "--out",
            s(&out),
        ]),
        2,
        &["lsh"],
    );
    fails(
        &semid(&[
            "fit",
            "--input",
            s(&input),
            "--quantizer",
            "rq-kmeans",
            "--epochs",
            "3",
            "--out",
            s(&dir.p("m.semid")),
        ]),
        2,
        &["--epochs does not apply to rq-kmeans"],
    );
    fails(
        &semid(&[
            "fit",
            "--input",
            s(&input),
            "--quantizer",
            "kmeans",
            "--print-config",
        ]),
        2,
        &["cannot be used with"],
    );
    fails(
        &semid(&[
            "index",
            "build",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--out",
            s(&dir.p("i.semid")),
            "--capacity",
            "2",
        ]),
        2,
        &["--capacity applies to --policy reassign"],
    );
    fails(
        &semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--out",
            s(&dir.p("c.csv")),
        ]),
        2,
        &["must end in .npy or .parquet"],
    );
    let bad_cfg = dir.p("bad.json");
    std::fs::write(&bad_cfg, r#"{"levels": 2, "kmeans": {"max_iters": 3}}"#).unwrap();
    fails(
        &semid(&[
            "fit",
            "--input",
            s(&input),
            "--quantizer",
            "rq-kmeans",
            "--config",
            s(&bad_cfg),
            "--out",
            s(&dir.p("m.semid")),
        ]),
        1,
        &["bad.json", "unknown config field `kmeans.max_iters`"],
    );
    // A model file of the wrong kind; a truncated model file; a missing
    // output directory.
    let trie = dir.p("trie.semid");
    let idx = {
        let q = semid::RqKMeans::load(&model).unwrap();
        semid::SemanticIndex::build(
            q,
            Embeddings::new(&x, d).unwrap(),
            semid::CollisionPolicy::AppendSuffix,
            semid::Par::Seq,
        )
        .unwrap()
        .0
    };
    idx.trie().save(&trie).unwrap();
    fails(
        &semid(&[
            "encode",
            "--model",
            s(&trie),
            "--input",
            s(&input),
            "--out",
            s(&out),
        ]),
        1,
        &["trie.semid", "is a Trie model file", "give a quantizer"],
    );
    fails(
        &semid(&["index", "info", "--index", s(&model)]),
        1,
        &["rq.semid", "is a RqKMeans model file", "give an index"],
    );
    let cut = dir.p("cut.semid");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &semid(&[
            "encode",
            "--model",
            s(&cut),
            "--input",
            s(&input),
            "--out",
            s(&out),
        ]),
        1,
        &["cut.semid"],
    );
    fails(
        &semid(&[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--out",
            s(&dir.p("no/such/dir/c.npy")),
        ]),
        2,
        &["does not exist"],
    );
    // None of these left an output file (or a temporary one) behind.
    let mut after = dir.files();
    for f in [
        "text.npy",
        "one_d.npy",
        "zero.npy",
        "nan.npy",
        "nolist.parquet",
        "ragged.parquet",
        "bad.json",
        "trie.semid",
        "cut.semid",
    ] {
        after.retain(|x| x != f);
    }
    assert_eq!(after, before);
}

#[test]
fn an_interrupted_run_leaves_no_partial_output() {
    let dir = Dir::new("interrupt");
    let (_, _, input, model) = fitted(&dir);
    let index = dir.p("i.semid");
    ok(semid(&[
        "index",
        "build",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--out",
        s(&index),
    ]));
    let before = dir.files();
    let stop = [("SEMID_CLI_STOP_AFTER_ROWS", "100")];
    for out in ["codes.npy", "codes.parquet"] {
        let o = semid_env(
            &[
                "encode",
                "--model",
                s(&model),
                "--input",
                s(&input),
                "--out",
                s(&dir.p(out)),
                "--block-rows",
                "50",
            ],
            &stop,
        );
        fails(&o, 130, &["interrupted", "no output file was written"]);
        assert_eq!(dir.files(), before, "{out}");
    }
    let o = semid_env(
        &[
            "search",
            "--index",
            s(&index),
            "--queries",
            s(&input),
            "--out",
            s(&dir.p("hits.tsv")),
            "--block-rows",
            "50",
        ],
        &stop,
    );
    fails(&o, 130, &["interrupted"]);
    assert_eq!(dir.files(), before);
    // An existing output stays as it was when a rewrite is interrupted.
    let codes = dir.p("codes.npy");
    ok(semid(&[
        "encode",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--out",
        s(&codes),
    ]));
    let whole = std::fs::read(&codes).unwrap();
    let o = semid_env(
        &[
            "encode",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--out",
            s(&codes),
            "--block-rows",
            "50",
        ],
        &stop,
    );
    assert_eq!(o.status.code(), Some(130));
    assert_eq!(std::fs::read(&codes).unwrap(), whole);
}
