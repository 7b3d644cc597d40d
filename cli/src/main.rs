//! `semid`: semantic-ID tokenizers from the shell.
//!
//! ```text
//! semid fit     --input items.npy --quantizer rq-kmeans --levels 3 --k 256 --out rq.semid
//! semid encode  --model rq.semid --input items.parquet --out codes.parquet
//! semid index build --model rq.semid --input items.npy --out items.semid
//! semid search  --index items.semid --queries q.npy --k 10 --format trec > run.txt
//! semid eval    --run run.txt --qrels qrels.txt
//! semid inspect items.semid --plot usage.svg
//! ```
//!
//! Exit codes: 0 done, 1 the data or the work failed, 2 the command line is
//! wrong, 130 interrupted (no partial output is left). Errors print one
//! line naming the file and what to do.
#![deny(missing_docs)]

mod encode;
mod error;
mod eval;
mod fit;
mod index;
mod input;
mod inspect;
mod output;
mod run;
mod search;

use clap::{Parser, Subcommand};

/// semid: fit semantic-ID tokenizers, encode catalogs, build and search
/// indexes, evaluate runs. Input embeddings are .npy (float16, bfloat16,
/// float32, float64) or Parquet (a list-of-floats column, as Spark and
/// pandas write). Exit codes: 0 ok, 1 data or runtime error, 2 usage
/// error, 130 interrupted.
#[derive(Parser, Debug)]
#[command(name = "semid", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Fit a quantizer (k-means, RQ-KMeans, RQ-VAE, FSQ, residual FSQ, FSQ
    /// autoencoder) and save it as a model file.
    Fit(fit::FitArgs),
    /// Encode embeddings to codes (.npy or Parquet), streaming in bounded
    /// memory.
    Encode(encode::EncodeArgs),
    /// Build, grow and describe a semantic-ID index (quantizer + IDs +
    /// trie in one file).
    Index {
        #[command(subcommand)]
        cmd: index::IndexCmd,
    },
    /// Search an index with query embeddings: top-k items as TSV, JSON
    /// lines or a TREC run.
    Search(search::SearchArgs),
    /// Evaluate a TREC run against qrels (pytrec_eval's metric names and
    /// values).
    Eval(eval::EvalArgs),
    /// Describe any model file; with --data, code usage and collision
    /// histograms (and --plot FILE.svg).
    Inspect(inspect::InspectArgs),
}

fn main() {
    // clap exits 0 for --help/--version and 2 for a usage error.
    let cli = Cli::parse();
    run::install_interrupt();
    let result = match &cli.cmd {
        Cmd::Fit(a) => fit::run(a),
        Cmd::Encode(a) => encode::run(a),
        Cmd::Index { cmd } => index::run(cmd),
        Cmd::Search(a) => search::run(a),
        Cmd::Eval(a) => eval::run(a),
        Cmd::Inspect(a) => inspect::run(a),
    };
    if let Err(e) = result {
        eprintln!("semid: error: {e}");
        std::process::exit(e.exit_code());
    }
}
