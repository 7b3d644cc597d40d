//! `semid search`: query embeddings to the top-k items of an index.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use semid::hits::NO_ITEM;
use semid::{BeamSearch, Embeddings, Hits, Quantizer};

use crate::error::{Result, data, usage};
use crate::input::{Columns, Input, in_rows};
use crate::output::AtomicPath;
use crate::run::{Streaming, bar, load_index};

/// How hits are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HitsFormat {
    /// `query  rank  item  score`, tab-separated, with a header line.
    Tsv,
    /// One JSON object per query per line: `{"query", "items", "scores"}`.
    Json,
    /// A TREC run (`query Q0 item rank score semid`), what `semid eval`
    /// and pytrec_eval read.
    Trec,
}

/// `semid search` flags.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// An index from `semid index build` (RQ-KMeans: its codebooks score
    /// ID prefixes).
    #[arg(long)]
    index: PathBuf,
    /// Query embeddings (.npy or Parquet); query i is row i.
    #[arg(long)]
    queries: PathBuf,
    /// Parquet: the embedding column.
    #[arg(long)]
    column: Option<String>,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Beam width (at least k; default max(k, 20)).
    #[arg(long)]
    beam: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = HitsFormat::Tsv)]
    format: HitsFormat,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Queries per block.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    block_rows: u64,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn write_hits(
    w: &mut dyn Write,
    hits: &Hits,
    first: usize,
    format: HitsFormat,
) -> std::io::Result<()> {
    for q in 0..hits.n_queries() {
        let h = hits.query(q);
        let qid = first + q;
        match format {
            HitsFormat::Tsv | HitsFormat::Trec => {
                for (r, (&item, &score)) in h.items.iter().zip(h.scores).enumerate() {
                    if item == NO_ITEM {
                        continue;
                    }
                    if format == HitsFormat::Tsv {
                        writeln!(w, "{qid}\t{}\t{item}\t{score}", r + 1)?;
                    } else {
                        writeln!(w, "{qid} Q0 {item} {} {score} semid", r + 1)?;
                    }
                }
            }
            HitsFormat::Json => {
                let v = serde_json::json!({ "query": qid, "items": h.items, "scores": h.scores });
                writeln!(w, "{v}")?;
            }
        }
    }
    Ok(())
}

/// Runs `semid search`.
pub fn run(a: &SearchArgs) -> Result<()> {
    if a.k == 0 {
        return Err(usage("--k must be at least 1"));
    }
    let beam = a.beam.unwrap_or(a.k.max(20));
    if beam < a.k {
        return Err(usage(format!(
            "--beam {beam} is below --k {}; the beam must hold k hits",
            a.k
        )));
    }
    let index = load_index(&a.index)?;
    if index.quantizer().as_rq_kmeans().is_none() {
        return Err(data(format!(
            "{}: its quantizer is {}; `semid search` scores ID prefixes with RQ-KMeans codebooks \
             (a trained sequence model scores them through the library's `SemanticIndex::search`)",
            a.index.display(),
            index.quantizer().kind().name()
        )));
    }
    let mut search = BeamSearch::new(beam, a.k).map_err(|e| usage(format!("--beam/--k: {e}")))?;
    let block = a.block_rows as usize;
    let columns = Columns {
        embedding: a.column.clone(),
        id: None,
    };
    let mut src = Input::open(&a.queries, &columns, block)?;
    let dim = index.quantizer().dim();
    if src.dim() != dim {
        return Err(data(format!(
            "{}: rows have {} values; the index {} reads {dim}",
            a.queries.display(),
            src.dim(),
            a.index.display()
        )));
    }
    let dest = a.out.as_deref().map(AtomicPath::new).transpose()?;
    let stdout = std::io::stdout();
    let mut w: Box<dyn Write> = match &dest {
        Some(d) => Box::new(std::io::BufWriter::new(d.create()?)),
        None => Box::new(std::io::BufWriter::new(stdout.lock())),
    };
    let io = |e: std::io::Error| data(format!("writing hits: {e}"));
    if a.format == HitsFormat::Tsv {
        writeln!(w, "query\trank\titem\tscore").map_err(io)?;
    }
    let pb = bar(src.rows() as u64, "searching", a.quiet);
    let streaming = Streaming::start();
    let (mut buf, mut hits) = (Vec::new(), Hits::new());
    let mut done = 0usize;
    while src.next_block(block, &mut buf)?.is_some() {
        let x = Embeddings::new(&buf, dim)?;
        index
            .search_embeddings_into(x, &mut search, &mut hits)
            .map_err(|e| in_rows(&a.queries, done, e))?;
        write_hits(&mut w, &hits, done, a.format).map_err(io)?;
        done += x.rows();
        pb.set_position(done as u64);
        streaming.check(done)?;
    }
    drop(streaming);
    w.flush().map_err(io)?;
    drop(w);
    if let Some(d) = dest {
        d.commit()?;
    }
    pb.finish_and_clear();
    Ok(())
}
