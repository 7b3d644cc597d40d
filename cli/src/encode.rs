//! `semid encode`: embeddings to codes, streamed in bounded memory.

use std::path::PathBuf;

use arrow_schema::Field;
use clap::Args;
use semid::{Embeddings, Quantizer};

use crate::error::{Result, data};
use crate::input::{Columns, Input, Source, in_rows};
use crate::output::{AtomicPath, CodesWriter, codes_format};
use crate::run::{Common, Streaming, bar, load_quantizer, par};

/// `semid encode` flags.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// A quantizer file (`semid fit`) or an index file (`semid index build`).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    src: Source,
    /// Parquet: a column copied beside the codes (item ids); Parquet output
    /// only.
    #[arg(long)]
    id_column: Option<String>,
    /// Output: `.npy` (uint16, rows × levels) or `.parquet` (a `codes`
    /// column of fixed-size uint16 lists).
    #[arg(long)]
    out: PathBuf,
    /// Rows read, encoded and written per block (memory ≈ 3 × block × dim ×
    /// 4 bytes: the next block is read while one is encoded).
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..))]
    block_rows: u64,
    #[command(flatten)]
    common: Common,
}

/// A block of rows as f32 and its id column (Parquet).
type Block = (Vec<f32>, Option<arrow_array::ArrayRef>);

/// Runs `semid encode`.
pub fn run(args: &EncodeArgs) -> Result<()> {
    let parquet_out = codes_format(&args.out)?;
    if args.id_column.is_some() && !parquet_out {
        return Err(crate::error::usage(
            "--id-column needs Parquet output (--out ….parquet); .npy holds the codes only",
        ));
    }
    let q = load_quantizer(&args.model)?;
    let block = args.block_rows as usize;
    let columns = Columns {
        embedding: args.src.column.clone(),
        id: args.id_column.clone(),
    };
    let mut src = Input::open(&args.src.input, &columns, block)?;
    if src.dim() != q.dim() {
        return Err(data(format!(
            "{}: rows have {} values; the model {} reads {}",
            args.src.input.display(),
            src.dim(),
            args.model.display(),
            q.dim()
        )));
    }
    let dest = AtomicPath::new(&args.out)?;
    let levels = q.levels();
    let rows = src.rows();
    let mut writer = if parquet_out {
        // The id column keeps its input type.
        let id_field = match src.id_field() {
            Some(name) => Some(id_field_of(&args.src.input, name)?),
            None => None,
        };
        CodesWriter::parquet(dest.create()?, levels, id_field)?
    } else {
        CodesWriter::npy(dest.create()?, rows, levels)?
    };
    let threads = par(args.common.threads);
    let pb = bar(rows as u64, "encoding", args.common.quiet);
    let t0 = std::time::Instant::now();
    let streaming = Streaming::start();
    let dim = q.dim();
    // A reader thread reads and converts the next block while this one
    // encodes and writes: at most three blocks are alive (one read, one
    // queued, one encoded), whatever the row count. Buffers go back to the
    // reader for reuse.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Block>>(1);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<f32>>();
    let done = std::thread::scope(|scope| -> Result<usize> {
        scope.spawn(move || {
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_default();
                let msg = match src.next_block(block, &mut buf) {
                    Ok(Some(ids)) => Ok((buf, ids)),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = msg.is_err();
                // A closed channel: the encoder stopped (error or Ctrl-C).
                if tx.send(msg).is_err() || failed {
                    break;
                }
            }
        });
        let mut codes = Vec::new();
        let mut done = 0usize;
        for msg in rx {
            let (buf, ids) = msg?;
            let n = buf.len() / dim;
            let x = Embeddings::new(&buf, dim)?;
            codes.resize(n * levels, 0);
            q.encode_into(x, &mut codes, threads)
                .map_err(|e| in_rows(&args.src.input, done, e))?;
            writer.write(&codes, ids)?;
            done += n;
            pb.set_position(done as u64);
            streaming.check(done)?;
            // The reader may have finished: then the buffer is dropped.
            let _ = back_tx.send(buf);
        }
        Ok(done)
    })?;
    drop(streaming);
    writer.finish(levels)?;
    dest.commit()?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    if args.common.json {
        println!(
            "{}",
            serde_json::json!({
                "rows": done, "levels": levels, "out": args.out.display().to_string(),
                "seconds": secs, "rows_per_second": done as f64 / secs.max(1e-9),
            })
        );
    } else {
        println!(
            "encoded {done} rows × {levels} tokens in {secs:.2} s ({:.0} rows/s) to {}",
            done as f64 / secs.max(1e-9),
            args.out.display()
        );
    }
    Ok(())
}

/// The Arrow field of a Parquet file's column.
fn id_field_of(path: &std::path::Path, name: &str) -> Result<Field> {
    let file = std::fs::File::open(path).map_err(|e| data(format!("{}: {e}", path.display())))?;
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| data(format!("{}: {e}", path.display())))?;
    let f = b
        .schema()
        .field_with_name(name)
        .map_err(|e| data(format!("{}: {e}", path.display())))?;
    Ok(f.clone())
}
