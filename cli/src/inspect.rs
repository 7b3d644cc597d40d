//! `semid inspect`: what a model file is, and how its codes use their
//! codebooks, as terminal histograms and an SVG chart.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use semid::format::ModelKind;
use semid::quantize::AnyQuantizer;
use semid::sid::{SidMap, Trie};
use semid::{Codes, Embeddings, ModelFile, Quantizer, SemanticIndex, stats};
use serde_json::json;

use crate::error::{Result, data, usage};
use crate::input::{Columns, Input, in_rows};
use crate::output::AtomicPath;
use crate::run::{Common, Streaming, bar, par, read_model};

/// `semid inspect` flags.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Any semid model file: a quantizer, an index, a SID map or a trie.
    file: PathBuf,
    /// Embeddings to encode and measure (a quantizer or an index): code
    /// usage per level, collision buckets, reconstruction MSE.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Parquet: the embedding column of `--data`.
    #[arg(long)]
    column: Option<String>,
    /// Also draw the histograms as an SVG chart to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// Code usage measured on some codes.
struct Usage {
    /// Where the codes came from.
    source: String,
    /// Per level: items per code.
    counts: Vec<Vec<usize>>,
    /// Items sharing each distinct full code (the collision buckets).
    buckets: Vec<usize>,
    quality: stats::CodeQuality,
    mse: Option<f64>,
}

impl Usage {
    fn new(source: String, codes: &Codes, sizes: &[usize], mse: Option<f64>) -> Result<Usage> {
        let quality = stats::code_quality(codes, sizes)?;
        let mut counts: Vec<Vec<usize>> = sizes.iter().map(|&k| vec![0; k]).collect();
        for row in codes.iter() {
            for (l, &c) in row.iter().enumerate() {
                counts[l][c as usize] += 1;
            }
        }
        let mut rows: Vec<&[u16]> = codes.iter().collect();
        rows.sort_unstable();
        let mut buckets = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let j = i + rows[i..].iter().take_while(|r| **r == rows[i]).count();
            buckets.push(j - i);
            i = j;
        }
        Ok(Usage {
            source,
            counts,
            buckets,
            quality,
            mse,
        })
    }
}

/// Log₂ bins of counts: `0`, `1`, `2–3`, `4–7`, …; `(label, how many)`.
fn log_bins(values: impl Iterator<Item = usize>) -> Vec<(String, usize)> {
    let mut bins: Vec<usize> = Vec::new();
    for v in values {
        let b = if v == 0 {
            0
        } else {
            1 + (usize::BITS - 1 - v.leading_zeros()) as usize
        };
        if bins.len() <= b {
            bins.resize(b + 1, 0);
        }
        bins[b] += 1;
    }
    // From the first non-empty bin on.
    let first = bins.iter().position(|&n| n > 0).unwrap_or(0);
    bins.iter()
        .enumerate()
        .skip(first)
        .map(|(b, &n)| {
            let label = match b {
                0 => "0".to_string(),
                1 => "1".to_string(),
                _ => format!("{}–{}", 1usize << (b - 1), (1usize << b) - 1),
            };
            (label, n)
        })
        .collect()
}

/// A text histogram of `(label, count)` rows.
fn text_hist(out: &mut String, head: (&str, &str), rows: &[(String, usize)]) {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let lw = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(head.0.len());
    let _ = writeln!(out, "    {:>lw$}  {}", head.0, head.1);
    for (label, n) in rows {
        let w = (n * 40).div_ceil(max);
        let _ = writeln!(out, "    {label:>lw$}  {} {n}", "█".repeat(w));
    }
}

fn print_usage(u: &Usage, sizes: &[usize]) -> String {
    let mut s = String::new();
    let q = &u.quality;
    let _ = writeln!(
        s,
        "\ncodes of {} ({} items): {} unique, collision rate {:.2}%, largest bucket {}{}",
        u.source,
        q.items,
        q.unique_codes,
        100.0 * q.collision_rate,
        q.max_items_per_code,
        u.mse
            .map_or(String::new(), |m| format!(", reconstruction MSE {m:.5}"))
    );
    for (l, (lq, counts)) in q.levels.iter().zip(&u.counts).enumerate() {
        let _ = writeln!(
            s,
            "  level {l}: {}/{} codes used ({:.1}%), perplexity {:.1}",
            lq.stats.used,
            sizes[l],
            100.0 * lq.stats.utilization,
            lq.stats.perplexity
        );
        text_hist(
            &mut s,
            ("items/code", "codes"),
            &log_bins(counts.iter().copied()),
        );
    }
    let _ = writeln!(s, "  collision buckets (items sharing one code):");
    text_hist(
        &mut s,
        ("items", "codes"),
        &log_bins(u.buckets.iter().copied()),
    );
    s
}

/// Escapes text for SVG.
fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The histograms as one SVG: per level, every code's item count (codes
/// sorted by count, at most 512 bars); then the bucket-size histogram.
fn svg(u: &Usage) -> String {
    let (w, ph, pad) = (760.0f64, 170.0f64, 48.0f64);
    let panels = u.counts.len() + 1;
    let h = panels as f64 * (ph + 40.0) + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{pad}" y="20" font-size="14">{}</text>"#,
        esc(&format!(
            "semid inspect: {} ({} items)",
            u.source, u.quality.items
        ))
    );
    let mut panel = |i: usize, title: &str, bars: &[f64], labels: &[String], xlabel: &str| {
        let top = 30.0 + i as f64 * (ph + 40.0) + 20.0;
        let max = bars.iter().copied().fold(0.0, f64::max).max(1e-9);
        let bw = (w - 2.0 * pad) / bars.len().max(1) as f64;
        // Headroom for the count above the tallest bar.
        let scale = max * 1.12;
        let _ = writeln!(
            s,
            r#"<text x="{pad}" y="{}">{}</text>"#,
            top - 6.0,
            esc(title)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{pad}" y1="{y}" x2="{x2}" y2="{y}" stroke="#444"/>"##,
            y = top + ph,
            x2 = w - pad
        );
        let _ = writeln!(
            s,
            r#"<text x="4" y="{}" >{max:.0}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            top + 10.0,
            w - pad,
            top + ph + 16.0,
            esc(xlabel)
        );
        for (j, &v) in bars.iter().enumerate() {
            let bh = ph * v / scale;
            let x = pad + j as f64 * bw;
            let _ = writeln!(
                s,
                r##"<rect x="{x:.2}" y="{:.2}" width="{:.2}" height="{bh:.2}" fill="#3b6ea5"/>"##,
                top + ph - bh,
                (bw - 0.5).max(0.3),
            );
            // Labelled bars: the bin under it, the count above it.
            if let Some(l) = labels.get(j) {
                let cx = x + bw / 2.0;
                let _ = writeln!(
                    s,
                    r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{cx:.1}" y="{:.1}" text-anchor="middle">{v:.0}</text>"#,
                    top + ph + 14.0,
                    esc(l),
                    top + ph - bh - 3.0
                );
            }
        }
    };
    for (l, counts) in u.counts.iter().enumerate() {
        let mut sorted: Vec<usize> = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let group = sorted.len().div_ceil(512).max(1);
        let bars: Vec<f64> = sorted
            .chunks(group)
            .map(|c| c.iter().sum::<usize>() as f64 / c.len() as f64)
            .collect();
        let lq = &u.quality.levels[l];
        panel(
            l,
            &format!(
                "level {l}: items per code, codes sorted by use ({}/{} used, perplexity {:.1})",
                lq.stats.used,
                counts.len(),
                lq.stats.perplexity
            ),
            &bars,
            &[],
            if group > 1 {
                "codes (each bar: a mean over a group)"
            } else {
                "codes"
            },
        );
    }
    let bins = log_bins(u.buckets.iter().copied());
    let bars: Vec<f64> = bins.iter().map(|b| b.1 as f64).collect();
    let labels: Vec<String> = bins.iter().map(|b| b.0.clone()).collect();
    panel(
        u.counts.len(),
        "collision buckets: how many codes hold 1, 2–3, 4–7, … items",
        &bars,
        &labels,
        "",
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// Codes (and the MSE) of a data file under `q`, streamed in blocks.
fn measure(a: &InspectArgs, q: &AnyQuantizer, path: &std::path::Path) -> Result<(Codes, f64)> {
    let columns = Columns {
        embedding: a.column.clone(),
        id: None,
    };
    let block = 65_536;
    let mut src = Input::open(path, &columns, block)?;
    if src.dim() != q.dim() {
        return Err(data(format!(
            "{}: rows have {} values; the model reads {}",
            path.display(),
            src.dim(),
            q.dim()
        )));
    }
    let (lv, threads) = (q.levels(), par(a.common.threads));
    let pb = bar(src.rows() as u64, "encoding", a.common.quiet);
    let streaming = Streaming::start();
    let (mut buf, mut all, mut rec) = (Vec::new(), Vec::new(), Vec::new());
    let mut sq = 0.0f64;
    let mut done = 0usize;
    while src.next_block(block, &mut buf)?.is_some() {
        let x = Embeddings::new(&buf, q.dim())?;
        let at = |e: semid::Error| in_rows(path, done, e);
        let start = all.len();
        all.resize(start + x.rows() * lv, 0);
        q.encode_into(x, &mut all[start..], threads).map_err(at)?;
        let c = Codes::new(all[start..].to_vec(), lv)?;
        rec.resize(x.rows() * q.dim(), 0.0);
        q.decode_into(&c, &mut rec, threads).map_err(at)?;
        sq += stats::mse(x, &rec)? * x.rows() as f64;
        done += x.rows();
        pb.set_position(done as u64);
        streaming.check(done)?;
    }
    pb.finish_and_clear();
    if done == 0 {
        return Err(data(format!("{}: holds no rows", path.display())));
    }
    Ok((Codes::new(all, lv)?, sq / done as f64))
}

/// Runs `semid inspect`.
pub fn run(a: &InspectArgs) -> Result<()> {
    let (bytes, h) = read_model(&a.file)?;
    let at = |e: semid::Error| data(format!("{}: {e}", a.file.display()));
    let mut info = json!({
        "file": a.file.display().to_string(),
        "kind": h.kind.name(),
        "format_version": h.version,
        "bytes": bytes.len(),
    });
    let mut text = format!(
        "{}: {} model file, format version {}, {} bytes\n",
        a.file.display(),
        h.kind.name(),
        h.version,
        bytes.len()
    );
    let plot = a.plot.as_deref().map(AtomicPath::new).transpose()?;
    // The quantizer (to encode --data), and the codes the file itself holds.
    let mut quantizer: Option<AnyQuantizer> = None;
    let mut stored: Option<(String, Codes, Vec<usize>)> = None;
    match h.kind {
        ModelKind::SemanticIndex => {
            let index = SemanticIndex::from_bytes(&bytes).map_err(at)?;
            let q = index.quantizer();
            let r = index.map().stats();
            let _ = writeln!(
                text,
                "  quantizer {} ({} → {} tokens, codebook sizes {:?}); {} items, IDs of {} tokens under {:?}",
                q.kind().name(),
                q.dim(),
                q.levels(),
                q.codebook_sizes(),
                index.len(),
                index.map().id_len(),
                index.map().policy()
            );
            info["quantizer"] = json!(q.kind().name());
            info["dim"] = json!(q.dim());
            info["levels"] = json!(q.levels());
            info["codebook_sizes"] = json!(q.codebook_sizes());
            info["items"] = json!(index.len());
            info["id_len"] = json!(index.map().id_len());
            info["max_bucket"] = json!(r.max_bucket);
            info["code_collision_rate"] = json!(r.code_collision_rate);
            // The first `levels` tokens of every stored ID.
            let lv = q.levels();
            let mut toks = Vec::with_capacity(index.len() * lv);
            for (_, id) in index.map().iter() {
                toks.extend_from_slice(&id[..lv]);
            }
            stored = Some((
                "the index's IDs (first tokens)".to_string(),
                Codes::new(toks, lv)?,
                q.codebook_sizes(),
            ));
            quantizer = Some(q.clone());
        }
        ModelKind::SidMap => {
            let m = SidMap::from_bytes(&bytes).map_err(at)?;
            let _ = writeln!(
                text,
                "  {} items, IDs of {} tokens (sizes {:?}) under {:?}",
                m.len(),
                m.id_len(),
                m.codebook_sizes(),
                m.policy()
            );
            info["items"] = json!(m.len());
            info["id_len"] = json!(m.id_len());
            info["codebook_sizes"] = json!(m.codebook_sizes());
        }
        ModelKind::Trie => {
            let t = Trie::from_bytes(&bytes).map_err(at)?;
            let st = t.stats();
            let _ = writeln!(
                text,
                "  {} IDs of {} tokens (sizes {:?}), nodes per depth {:?}, {} + {} bytes",
                st.ids,
                t.id_len(),
                t.codebook_sizes(),
                st.nodes_per_depth,
                st.structure_bytes,
                st.item_bytes
            );
            info["ids"] = json!(st.ids);
            info["id_len"] = json!(t.id_len());
            info["codebook_sizes"] = json!(t.codebook_sizes());
        }
        _ => {
            let q = AnyQuantizer::from_bytes(&bytes).map_err(at)?;
            let _ = writeln!(
                text,
                "  {} → {} tokens, codebook sizes {:?}",
                q.dim(),
                q.levels(),
                q.codebook_sizes()
            );
            info["dim"] = json!(q.dim());
            info["levels"] = json!(q.levels());
            info["codebook_sizes"] = json!(q.codebook_sizes());
            quantizer = Some(q);
        }
    }
    let usage_of = match (&a.data, &quantizer) {
        (Some(path), Some(q)) => {
            let (codes, mse) = measure(a, q, path)?;
            Some(Usage::new(
                format!("{}", path.display()),
                &codes,
                &q.codebook_sizes(),
                Some(mse),
            )?)
        }
        (Some(_), None) => {
            return Err(usage(format!(
                "--data needs a quantizer or an index; {} is a {} file",
                a.file.display(),
                h.kind.name()
            )));
        }
        (None, _) => match stored {
            Some((src, codes, sizes)) => Some(Usage::new(src, &codes, &sizes, None)?),
            None => None,
        },
    };
    if usage_of.is_none() && plot.is_some() {
        return Err(usage(
            "--plot needs codes to draw: give --data with a quantizer, or inspect an index",
        ));
    }
    if let Some(u) = &usage_of {
        let sizes: Vec<usize> = u.counts.iter().map(Vec::len).collect();
        text.push_str(&print_usage(u, &sizes));
        info["usage"] = json!({
            "source": u.source,
            "items": u.quality.items,
            "unique_codes": u.quality.unique_codes,
            "collision_rate": u.quality.collision_rate,
            "max_items_per_code": u.quality.max_items_per_code,
            "mse": u.mse,
            "levels": u.quality.levels.iter().map(|l| json!({
                "codebook_size": l.codebook_size, "used": l.stats.used,
                "utilization": l.stats.utilization, "perplexity": l.stats.perplexity,
            })).collect::<Vec<_>>(),
            "bucket_sizes": log_bins(u.buckets.iter().copied()),
        });
        if let Some(p) = plot {
            use std::io::Write;
            let mut f = p.create()?;
            f.write_all(svg(u).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| data(format!("{}: {e}", p.dest().display())))?;
            let dest = p.dest().display().to_string();
            p.commit()?;
            let _ = writeln!(text, "\nwrote the chart to {dest}");
            info["plot"] = json!(dest);
        }
    }
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&info).expect("JSON"));
    } else {
        print!("{text}");
    }
    Ok(())
}
