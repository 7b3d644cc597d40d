//! The library call that `semid encode` is measured against: read the
//! whole `.npy` (`semid::npy::read_npy`), encode it in one call, write the
//! codes as a `uint16` `.npy`. What a program using the crate does.
//!
//! ```sh
//! cargo run --release -p semid-cli --example encode_lib -- MODEL INPUT.npy OUT.npy
//! ```

use std::io::Write;

use clap::Parser;
use semid::quantize::AnyQuantizer;
use semid::{Embeddings, ModelFile, Quantizer};

/// Encodes a whole .npy in one library call (the baseline of `semid
/// encode`'s figures in docs/CLI.md).
#[derive(Parser)]
struct Args {
    /// A quantizer model file.
    model: String,
    /// Embeddings (.npy).
    input: String,
    /// Where to write the codes (uint16 .npy).
    out: String,
}

fn main() {
    let a = Args::parse();
    if let Err(e) = run(&a.model, &a.input, &a.out) {
        eprintln!("encode_lib: {e}");
        std::process::exit(1);
    }
}

fn run(model: &str, input: &str, out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = std::time::Instant::now();
    let q = AnyQuantizer::load(model)?;
    let (data, dim) = semid::npy::read_npy(input)?;
    let codes = q.encode(Embeddings::new(&data, dim)?)?;
    let (n, l) = (codes.rows(), codes.levels());
    let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
    f.write_all(&semid::npy::header("<u2", &[n, l]))?;
    let bytes: Vec<u8> = codes
        .as_slice()
        .iter()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    f.write_all(&bytes)?;
    f.flush()?;
    let s = t0.elapsed().as_secs_f64();
    println!("encoded {n} rows in {s:.2} s ({:.0} rows/s)", n as f64 / s);
    Ok(())
}
