//! How three ways of making IDs unique change the codes of one RQ-KMeans
//! (or RQ-VAE, `--quantizer rq-vae`) fit, before any suffix token: greedy codes as encoded, LC-Rec's
//! Sinkhorn loop on the colliding groups (`sid::resolve_collisions`), and
//! capacity-1 reassignment to the next-nearest last-level codeword
//! (`CollisionPolicy::ReassignLastLevel`). One line each: collision rate,
//! largest bucket, reconstruction MSE of the codes, per-level perplexity.
//!
//! ```text
//! cargo run --release --example collisions                       # built-in data
//! cargo run --release --example collisions -- --input emb.npy [--quantizer rq-vae] [--epsilon 0.003] [--rounds 20]
//! ```
use semid::quantize::{AnyQuantizer, LastLevelDistances, RqVae, RqVaeConfig};
use semid::sid::{CollisionPolicy, SidMap, Sinkhorn, resolve_collisions};
use semid::{Codes, Embeddings, Quantizer, RqKMeans, RqKMeansConfig, stats};

mod common;
use common::{Args, Flag, INPUT, load_data};

const ABOUT: &str = "greedy, Sinkhorn and capacity reassignment: collisions before the suffix";

const FLAGS: &[Flag] = &[
    INPUT,
    (
        "--quantizer",
        true,
        "rq-kmeans",
        "rq-kmeans or rq-vae (TIGER's settings)",
    ),
    ("--levels", true, "3", "levels"),
    ("--k", true, "256", "codes per level"),
    ("--seed", true, "0", "fit seed"),
    (
        "--epsilon",
        true,
        "0.003",
        "Sinkhorn entropy weight (LC-Rec: 0.003)",
    ),
    (
        "--iterations",
        true,
        "50",
        "Sinkhorn iterations (LC-Rec: 50)",
    ),
    ("--rounds", true, "20", "collision-loop rounds (LC-Rec: 20)"),
];

fn main() -> std::process::ExitCode {
    common::run("collisions", body)
}

fn line(name: &str, q: &AnyQuantizer, x: Embeddings<'_>, codes: &Codes) -> semid::Result<()> {
    let qual = stats::code_quality(codes, &q.codebook_sizes())?;
    let rec = q.decode(codes)?;
    let mse = stats::mse(x, &rec)?;
    let perp: Vec<String> = qual
        .levels
        .iter()
        .map(|l| format!("{:.1}", l.stats.perplexity))
        .collect();
    println!(
        "{name:<34} {:>8.2}% {:>7} {:>9.5}  {}",
        100.0 * qual.collision_rate,
        qual.max_items_per_code,
        mse,
        perp.join(" / ")
    );
    Ok(())
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("collisions", ABOUT, FLAGS);
    let (data, d, source) = load_data(&args)?;
    let x = Embeddings::new(&data, d)?;
    let (levels, k, seed) = (args.num("--levels")?, args.num("--k")?, args.num("--seed")?);
    let q: AnyQuantizer = match args.get("--quantizer").unwrap_or("rq-kmeans") {
        "rq-kmeans" => RqKMeans::fit(&RqKMeansConfig::new(levels, k).seed(seed), x)?
            .0
            .into(),
        "rq-vae" => RqVae::fit(&RqVaeConfig::new(levels, k).seed(seed), x)?
            .0
            .into(),
        other => return Err(format!("--quantizer {other}: use rq-kmeans or rq-vae").into()),
    };
    let last: &dyn LastLevelDistances = q.last_level().expect("both have last-level distances");
    let (n, lv, k) = (x.rows(), q.levels(), q.codebook_size(q.levels() - 1));
    println!(
        "{source}: {n} × {d}, {} {lv} × {k}, seed {seed}",
        q.kind().name()
    );
    println!(
        "{:<34} {:>9} {:>7} {:>9}  perplexity per level",
        "IDs before the suffix", "collided", "bucket", "MSE"
    );
    let greedy = q.encode(x)?;
    line("greedy (argmin at every level)", &q, x, &greedy)?;

    let sk = Sinkhorn::new(args.num("--epsilon")?, args.num("--iterations")?)?;
    let mut dist = vec![0f32; n * k];
    last.last_level_distances(x, greedy.as_slice(), &mut dist)?;
    let mut codes = greedy.as_slice().to_vec();
    let t0 = std::time::Instant::now();
    let rounds = resolve_collisions(&mut codes, lv, &dist, k, &sk, args.num("--rounds")?)?;
    let secs = t0.elapsed().as_secs_f64();
    let name = format!("Sinkhorn ε={} ({rounds} rounds, {secs:.2} s)", sk.epsilon());
    line(&name, &q, x, &Codes::new(codes, lv)?)?;

    let reassign = SidMap::build_with_distances(
        &greedy,
        last,
        x,
        CollisionPolicy::ReassignLastLevel { capacity: 1 },
    );
    match reassign {
        Ok((map, r)) => {
            let ids: Vec<u16> = (0..n as u32)
                .flat_map(|i| map.id_of(i).unwrap_or(&[]).to_vec())
                .collect();
            let name = format!("reassign, capacity 1 ({} moved)", r.moved);
            line(&name, &q, x, &Codes::new(ids, lv)?)?;
        }
        // A prefix with more items than last-level codes cannot hold them.
        Err(e) => println!("{:<34} refused: {e}", "reassign, capacity 1"),
    }
    Ok(())
}
