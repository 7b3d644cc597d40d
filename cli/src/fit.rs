//! `semid fit`: any quantizer, its config from flags and a JSON file.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use semid::quantize::{AnyQuantizer, EpochReport, PqConfig, ProductQuantizer};
use semid::{
    Embeddings, Fsq, FsqAutoencoder, FsqAutoencoderConfig, KMeans, KMeansConfig, Quantizer,
    ResidualFsq, RqKMeans, RqKMeansConfig, RqVae, RqVaeConfig,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Result, data, usage};
use crate::input::{Columns, Input, existing_file};
use crate::run::{Common, bar, par, save_model, spinner};

/// The quantizers `semid fit` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// k-means: one token per item.
    Kmeans,
    /// Residual k-means (OneRec's RQ-KMeans): `levels` tokens of `k` codes.
    RqKmeans,
    /// RQ-VAE (TIGER), trained in-crate.
    RqVae,
    /// FSQ with no training: the input width must equal the number of
    /// `--levels-per-dim`.
    Fsq,
    /// Residual FSQ with no training (input width as FSQ).
    ResidualFsq,
    /// An FSQ autoencoder (RecGPT), trained in-crate.
    FsqAe,
    /// Product quantization: `--m` sub-spaces of `--k` codes (RPG's IDs).
    Pq,
    /// Optimized product quantization: PQ after a learned rotation
    /// (ActionPiece's and RPG's OPQ IDs).
    Opq,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kmeans => "kmeans",
            Kind::RqKmeans => "rq-kmeans",
            Kind::RqVae => "rq-vae",
            Kind::Fsq => "fsq",
            Kind::ResidualFsq => "residual-fsq",
            Kind::FsqAe => "fsq-ae",
            Kind::Pq => "pq",
            Kind::Opq => "opq",
        }
    }
}

/// `semid fit` flags.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// Embeddings: a 2-D .npy (float16/bfloat16/float32/float64) or a
    /// Parquet file with a list-of-floats column.
    #[arg(long, required_unless_present = "print_config")]
    input: Option<PathBuf>,
    /// Parquet: the embedding column (default: the only list-of-floats one).
    #[arg(long)]
    column: Option<String>,
    /// Which quantizer to fit.
    #[arg(long, value_enum)]
    quantizer: Kind,
    /// Where to write the model file.
    #[arg(long, required_unless_present = "print_config")]
    out: Option<PathBuf>,
    /// A JSON file of config fields (any subset; `--print-config` shows
    /// them all). Flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// rq-vae: start from this RQ-KMeans model file (residual encoder at
    /// the identity, its codebooks); sets the levels, codebook sizes and
    /// latent width to the model's.
    #[arg(long)]
    warm_start: Option<PathBuf>,
    /// Print the whole config (defaults, the file, the flags) as JSON and
    /// exit without fitting.
    #[arg(long, conflicts_with_all = ["input", "out"])]
    print_config: bool,
    /// Tokens per code (rq-kmeans, rq-vae, residual-fsq).
    #[arg(long)]
    levels: Option<usize>,
    /// Codes per level (kmeans, rq-kmeans, rq-vae).
    #[arg(long)]
    k: Option<usize>,
    /// FSQ values per latent dimension, e.g. 8,5,5,5 (fsq, residual-fsq,
    /// fsq-ae).
    #[arg(long, value_delimiter = ',')]
    levels_per_dim: Option<Vec<u32>>,
    /// A codebook size per level, e.g. 512,256,128 (rq-kmeans, rq-vae);
    /// sets --levels to the number of sizes.
    #[arg(long, value_delimiter = ',')]
    codebook_sizes: Option<Vec<usize>>,
    /// Seed (kmeans, rq-kmeans, rq-vae, fsq-ae).
    #[arg(long)]
    seed: Option<u64>,
    /// Lloyd iterations per level (kmeans, rq-kmeans).
    #[arg(long)]
    max_iter: Option<usize>,
    /// Codebook refinement rounds (rq-kmeans).
    #[arg(long)]
    refine_rounds: Option<usize>,
    /// Training epochs, at least (rq-vae, fsq-ae).
    #[arg(long)]
    epochs: Option<usize>,
    /// Rows per optimizer step (rq-vae, fsq-ae).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Latent width (rq-vae).
    #[arg(long)]
    latent: Option<usize>,
    /// Sub-spaces, the tokens per ID (pq, opq); must divide the input
    /// width.
    #[arg(long)]
    m: Option<usize>,
    #[command(flatten)]
    common: Common,
}

/// A flag's name, its value as JSON, where it goes in the config, and the
/// quantizers it applies to.
struct Flag {
    name: &'static str,
    value: Option<Value>,
    path: &'static [&'static str],
    kinds: &'static [Kind],
}

impl FitArgs {
    fn flags(&self) -> Vec<Flag> {
        use Kind::*;
        let v = |x: Option<Value>| x;
        let kind = self.quantizer;
        vec![
            Flag {
                name: "--levels",
                value: v(self.levels.map(|x| json!(x))),
                path: &["levels"],
                kinds: &[RqKmeans, RqVae, ResidualFsq],
            },
            Flag {
                name: "--k",
                value: v(self.k.map(|x| json!(x))),
                path: &["k"],
                kinds: &[Kmeans, RqKmeans, RqVae, Pq, Opq],
            },
            Flag {
                name: "--codebook-sizes",
                value: v(self.codebook_sizes.as_ref().map(|x| json!(x))),
                path: &["codebook_sizes"],
                kinds: &[RqKmeans, RqVae],
            },
            Flag {
                name: "--codebook-sizes",
                // One level per size, unless --levels says otherwise (the
                // config check then names the mismatch).
                value: v(self
                    .codebook_sizes
                    .as_ref()
                    .filter(|_| self.levels.is_none())
                    .map(|x| json!(x.len()))),
                path: &["levels"],
                kinds: &[RqKmeans, RqVae],
            },
            Flag {
                name: "--levels-per-dim",
                value: v(self.levels_per_dim.as_ref().map(|x| json!(x))),
                path: &["levels_per_dim"],
                kinds: &[Fsq, ResidualFsq, FsqAe],
            },
            Flag {
                name: "--seed",
                value: v(self.seed.map(|x| json!(x))),
                path: if matches!(kind, RqKmeans | Pq | Opq) {
                    &["kmeans", "seed"]
                } else {
                    &["seed"]
                },
                kinds: &[Kmeans, RqKmeans, RqVae, FsqAe, Pq, Opq],
            },
            Flag {
                name: "--max-iter",
                value: v(self.max_iter.map(|x| json!(x))),
                path: if matches!(kind, RqKmeans | Pq | Opq) {
                    &["kmeans", "max_iter"]
                } else {
                    &["max_iter"]
                },
                kinds: &[Kmeans, RqKmeans, Pq, Opq],
            },
            Flag {
                name: "--refine-rounds",
                value: v(self.refine_rounds.map(|x| json!(x))),
                path: &["refine_rounds"],
                kinds: &[RqKmeans],
            },
            Flag {
                name: "--epochs",
                value: v(self.epochs.map(|x| json!(x))),
                path: &["epochs"],
                kinds: &[RqVae, FsqAe],
            },
            Flag {
                name: "--batch-size",
                value: v(self.batch_size.map(|x| json!(x))),
                path: &["batch_size"],
                kinds: &[RqVae, FsqAe],
            },
            Flag {
                name: "--latent",
                value: v(self.latent.map(|x| json!(x))),
                path: &["latent"],
                kinds: &[RqVae],
            },
            Flag {
                name: "--m",
                value: v(self.m.map(|x| json!(x))),
                path: &["m"],
                kinds: &[Pq, Opq],
            },
        ]
    }

    /// Refuses flags that do not apply to the chosen quantizer.
    fn check_flags(&self) -> Result<Vec<Flag>> {
        let flags = self.flags();
        for f in &flags {
            if f.value.is_some() && !f.kinds.contains(&self.quantizer) {
                let names: Vec<&str> = f.kinds.iter().map(|k| k.name()).collect();
                return Err(usage(format!(
                    "{} does not apply to {}; it applies to {}",
                    f.name,
                    self.quantizer.name(),
                    names.join(", ")
                )));
            }
        }
        if self.config.is_some() && matches!(self.quantizer, Kind::Fsq | Kind::ResidualFsq) {
            return Err(usage(format!(
                "--config does not apply to {} (it has no training config); use --levels-per-dim{}",
                self.quantizer.name(),
                if self.quantizer == Kind::ResidualFsq {
                    " and --levels"
                } else {
                    ""
                }
            )));
        }
        if self.warm_start.is_some() && self.quantizer != Kind::RqVae {
            return Err(usage(format!(
                "--warm-start does not apply to {}; it applies to rq-vae",
                self.quantizer.name()
            )));
        }
        Ok(flags)
    }
}

/// Quantizers whose config holds a `kmeans` whose own `k` is not read.
fn hide_inner_k(kind: Kind) -> bool {
    matches!(kind, Kind::RqKmeans | Kind::Pq | Kind::Opq)
}

/// Sets `value` at `path` inside `v`.
fn set(v: &mut Value, path: &[&str], value: Value) {
    let mut cur = v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = value;
}

/// Overlays `user` onto `base`; every key of `user` must exist in `base`.
fn overlay(base: &mut Value, user: &Value, at: &str, file: &Path) -> Result<()> {
    match (base, user) {
        (Value::Object(b), Value::Object(u)) => {
            for (k, uv) in u {
                let here = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && uv.is_object() => overlay(bv, uv, &here, file)?,
                    Some(bv) => *bv = uv.clone(),
                    None => {
                        let known: Vec<&String> = b.keys().collect();
                        return Err(data(format!(
                            "{}: unknown config field `{here}`; the fields here are {known:?} \
                             (`semid fit --quantizer … --print-config` prints them all)",
                            file.display()
                        )));
                    }
                }
            }
            Ok(())
        }
        (b, u) => {
            *b = u.clone();
            Ok(())
        }
    }
}

/// The default config, overlaid with the JSON file, then the flags.
fn config<C: Serialize + DeserializeOwned>(
    default: C,
    args: &FitArgs,
    flags: &[Flag],
) -> Result<C> {
    let mut v = serde_json::to_value(default).map_err(|e| data(e.to_string()))?;
    // RqKMeansConfig::kmeans.k is not read (every level has `k` codes):
    // keep it out of what users see and refuse it in their files.
    let hide_inner_k = hide_inner_k(args.quantizer);
    if let Some(file) = &args.config {
        existing_file(file, "config")?;
        let text =
            std::fs::read_to_string(file).map_err(|e| data(format!("{}: {e}", file.display())))?;
        let user: Value = serde_json::from_str(&text)
            .map_err(|e| data(format!("{}: not JSON: {e}", file.display())))?;
        if !user.is_object() {
            return Err(data(format!(
                "{}: a config is a JSON object of fields",
                file.display()
            )));
        }
        if hide_inner_k && user.get("kmeans").and_then(|k| k.get("k")).is_some() {
            return Err(data(format!(
                "{}: `kmeans.k` is not read for {}; set the top-level `k` (codes per level)",
                file.display(),
                args.quantizer.name()
            )));
        }
        overlay(&mut v, &user, "", file)?;
    }
    for f in flags {
        if let Some(x) = &f.value {
            set(&mut v, f.path, x.clone());
        }
    }
    let from = args
        .config
        .as_ref()
        .map_or_else(|| "the flags".to_string(), |p| p.display().to_string());
    serde_json::from_value(v)
        .map_err(|e| data(format!("{from}: a config field has the wrong type: {e}")))
}

/// Runs `semid fit`.
pub fn run(args: &FitArgs) -> Result<()> {
    let flags = args.check_flags()?;
    let threads = par(args.common.threads);
    // The config is settled (and printed) before any data is read.
    enum Cfg {
        Kmeans(KMeansConfig),
        RqKmeans(RqKMeansConfig),
        RqVae(RqVaeConfig),
        FsqAe(FsqAutoencoderConfig),
        Fsq(Vec<u32>),
        ResidualFsq(Vec<u32>, usize),
        Pq(PqConfig),
    }
    let mut warm: Option<RqKMeans> = None;
    let cfg = match args.quantizer {
        Kind::Kmeans => Cfg::Kmeans(config(KMeansConfig::default(), args, &flags)?.par(threads)),
        Kind::RqKmeans => {
            Cfg::RqKmeans(config(RqKMeansConfig::default(), args, &flags)?.par(threads))
        }
        Kind::RqVae => {
            let mut c: RqVaeConfig = config(RqVaeConfig::tiger(), args, &flags)?;
            c.par = threads;
            if let Some(path) = &args.warm_start {
                existing_file(path, "warm start")?;
                let rq =
                    <RqKMeans as semid::ModelFile>::load(path).map_err(|e| data(e.to_string()))?;
                c = c.codebook_sizes(rq.codebook_sizes());
                c.latent = rq.dim();
                warm = Some(rq);
            }
            Cfg::RqVae(c)
        }
        Kind::FsqAe => Cfg::FsqAe(config(FsqAutoencoderConfig::default(), args, &flags)?),
        Kind::Pq => Cfg::Pq(config(PqConfig::pq(4, 256), args, &flags)?.par(threads)),
        Kind::Opq => Cfg::Pq(config(PqConfig::opq(4, 256), args, &flags)?.par(threads)),
        Kind::Fsq | Kind::ResidualFsq => {
            let lpd = args.levels_per_dim.clone().ok_or_else(|| {
                usage(format!(
                    "{} needs --levels-per-dim, e.g. 8,5,5,5 (and an input of that many columns)",
                    args.quantizer.name()
                ))
            })?;
            if args.quantizer == Kind::Fsq {
                Cfg::Fsq(lpd)
            } else {
                Cfg::ResidualFsq(lpd, args.levels.unwrap_or(3))
            }
        }
    };
    if args.print_config {
        let mut v = match &cfg {
            Cfg::Kmeans(c) => serde_json::to_value(c),
            Cfg::RqKmeans(c) => serde_json::to_value(c),
            Cfg::RqVae(c) => serde_json::to_value(c),
            Cfg::FsqAe(c) => serde_json::to_value(c),
            Cfg::Fsq(l) => Ok(json!({ "levels_per_dim": l })),
            Cfg::ResidualFsq(l, n) => Ok(json!({ "levels_per_dim": l, "levels": n })),
            Cfg::Pq(c) => serde_json::to_value(c),
        }
        .map_err(|e| data(e.to_string()))?;
        if let Some(km) = v.get_mut("kmeans").and_then(Value::as_object_mut)
            && hide_inner_k(args.quantizer)
        {
            km.remove("k");
        }
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(());
    }
    let (input, out) = (
        args.input.as_deref().expect("required by clap"),
        args.out.as_deref().expect("required by clap"),
    );
    crate::output::AtomicPath::new(out)?;
    let columns = Columns {
        embedding: args.column.clone(),
        id: None,
    };
    let src = Input::open(input, &columns, 65_536)?;
    let load = bar(src.rows() as u64, "reading", args.common.quiet);
    let (rows, dim) = (src.rows(), src.dim());
    let (data_f32, _) = src.read_all()?;
    load.finish_and_clear();
    let x =
        Embeddings::new(&data_f32, dim).map_err(|e| data(format!("{}: {e}", input.display())))?;
    let at = |e: semid::Error| data(format!("{}: {e}", input.display()));
    let what = format!("fitting {} on {rows} × {dim}", args.quantizer.name());
    let epochs_bar = |total: usize| {
        let pb = bar(total as u64, &what, args.common.quiet);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:32}] epoch {pos}/{len} ({elapsed})",
            )
            .expect("valid template"),
        );
        pb
    };
    let t0 = std::time::Instant::now();
    let (model, report): (AnyQuantizer, Value) = match cfg {
        Cfg::Kmeans(c) => {
            let sp = spinner(&what, args.common.quiet);
            let (m, r) = KMeans::fit(&c, x).map_err(at)?;
            sp.finish_and_clear();
            (m.into(), serde_json::to_value(&r).expect("JSON"))
        }
        Cfg::RqKmeans(c) => {
            let sp = spinner(&what, args.common.quiet);
            let (m, r) = RqKMeans::fit(&c, x).map_err(at)?;
            sp.finish_and_clear();
            (m.into(), serde_json::to_value(&r).expect("JSON"))
        }
        Cfg::Pq(c) => {
            let sp = spinner(&what, args.common.quiet);
            let (m, r) = ProductQuantizer::fit(&c, x).map_err(at)?;
            sp.finish_and_clear();
            (m.into(), serde_json::to_value(&r).expect("JSON"))
        }
        Cfg::RqVae(c) => {
            let pb = epochs_bar(c.epochs);
            let tick = |e: &EpochReport| {
                pb.set_length(pb.length().unwrap_or(0).max(e.epoch as u64 + 1));
                pb.set_position(e.epoch as u64 + 1);
            };
            let (m, r) = match &warm {
                Some(rq) => RqVae::fit_warm_with_callback(&c, x, rq, tick),
                None => RqVae::fit_with_callback(&c, x, tick),
            }
            .map_err(at)?;
            pb.finish_and_clear();
            (m.into(), json!({ "epochs": r }))
        }
        Cfg::FsqAe(c) => {
            let pb = epochs_bar(c.epochs);
            let (m, r) = FsqAutoencoder::fit_with_callback(&c, x, |e: &EpochReport| {
                pb.set_length(pb.length().unwrap_or(0).max(e.epoch as u64 + 1));
                pb.set_position(e.epoch as u64 + 1);
            })
            .map_err(at)?;
            pb.finish_and_clear();
            (m.into(), json!({ "epochs": r }))
        }
        Cfg::Fsq(l) => {
            let q = Fsq::new(&l).map_err(|e| usage(e.to_string()))?;
            (q.into(), json!({}))
        }
        Cfg::ResidualFsq(l, n) => {
            let q = ResidualFsq::new(&l, n).map_err(|e| usage(e.to_string()))?;
            (q.into(), json!({}))
        }
    };
    if model.dim() != dim {
        return Err(data(format!(
            "{}: rows have {dim} values; {} with {:?} levels per dimension reads {} (give \
             --levels-per-dim with {dim} entries, or fit fsq-ae, which learns a projection)",
            input.display(),
            args.quantizer.name(),
            args.levels_per_dim.as_deref().unwrap_or(&[]),
            model.dim()
        )));
    }
    let secs = t0.elapsed().as_secs_f64();
    let mse = model.reconstruction_mse(x, threads).map_err(at)?;
    save_model(&model, out)?;
    let summary = json!({
        "quantizer": args.quantizer.name(),
        "model": out.display().to_string(),
        "rows": rows,
        "dim": dim,
        "levels": model.levels(),
        "codebook_sizes": model.codebook_sizes(),
        "mse": mse,
        "seconds": secs,
        "report": report,
    });
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        println!(
            "fitted {} on {rows} × {dim} in {secs:.2} s: {} levels, codebook sizes {:?}, MSE {mse:.5}",
            args.quantizer.name(),
            model.levels(),
            model.codebook_sizes()
        );
        if let Some(levels) = summary["report"]["levels"].as_array() {
            for (l, r) in levels.iter().enumerate() {
                println!(
                    "  level {l}: MSE after it {:.5}, utilization {:.3}, perplexity {:.1}",
                    r["mse"].as_f64().unwrap_or(f64::NAN),
                    r["utilization"].as_f64().unwrap_or(f64::NAN),
                    r["perplexity"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
        println!("wrote {}", out.display());
    }
    Ok(())
}
