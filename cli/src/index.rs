//! `semid index build | insert | info`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use semid::sid::SidReport;
use semid::{CollisionPolicy, Embeddings, Quantizer, SemanticIndex};
use serde_json::json;

use crate::error::{Result, data, usage};
use crate::input::{Columns, Input, Source};
use crate::run::{Common, bar, load_index, load_quantizer, par, save_model, spinner};

/// The index subcommands.
#[derive(Subcommand, Debug)]
pub enum IndexCmd {
    /// Encode a catalog (row i is item i), give every item an ID under a
    /// collision policy, build the trie, and save all of it as one file.
    Build(BuildArgs),
    /// Add items to an index; existing items keep their IDs.
    Insert(InsertArgs),
    /// What an index holds: quantizer, IDs, collisions, trie size.
    Info(InfoArgs),
}

/// How items that share a code get IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Policy {
    /// One extra token numbers the items of a code 0, 1, 2, … (TIGER).
    Suffix,
    /// At most `--capacity` items per ID; the others move to their next
    /// nearest last-level code (RQ-KMeans only).
    Reassign,
    /// LC-Rec's: colliding items get new last-level codes by Sinkhorn-Knopp
    /// (ε 0.003, 50 iterations, 20 rounds), then a suffix numbers what
    /// still collides (RQ-KMeans only).
    Sinkhorn,
    /// Keep collisions: one ID, several items.
    Shared,
}

/// `semid index build` flags.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// A quantizer file from `semid fit`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    src: Source,
    /// Where to write the index.
    #[arg(long)]
    out: PathBuf,
    /// Collision policy.
    #[arg(long, value_enum, default_value_t = Policy::Suffix)]
    policy: Policy,
    /// Most items per ID under `--policy reassign` (1: unique IDs).
    #[arg(long)]
    capacity: Option<u32>,
    #[command(flatten)]
    common: Common,
}

/// `semid index insert` flags.
#[derive(Args, Debug)]
pub struct InsertArgs {
    /// The index to add to.
    #[arg(long)]
    index: PathBuf,
    #[command(flatten)]
    src: Source,
    /// Item number of the first row (default: one past the largest item).
    #[arg(long)]
    first_item: Option<u32>,
    /// Where to write the grown index (default: replace `--index`, through
    /// a temporary file).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// `semid index info` flags.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The index file.
    #[arg(long)]
    index: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs an index subcommand.
pub fn run(cmd: &IndexCmd) -> Result<()> {
    match cmd {
        IndexCmd::Build(a) => build(a),
        IndexCmd::Insert(a) => insert(a),
        IndexCmd::Info(a) => info(a),
    }
}

fn read_rows(
    path: &std::path::Path,
    column: &Option<String>,
    quiet: bool,
) -> Result<(Vec<f32>, usize)> {
    let columns = Columns {
        embedding: column.clone(),
        id: None,
    };
    let src = Input::open(path, &columns, 65_536)?;
    let pb = bar(src.rows() as u64, "reading", quiet);
    let out = src.read_all()?;
    pb.finish_and_clear();
    Ok(out)
}

fn report_json(r: &SidReport) -> serde_json::Value {
    json!({
        "added": r.added, "items": r.items, "moved": r.moved,
        "max_bucket": r.max_bucket, "max_items_per_id": r.max_items_per_id,
        "unique_ids": r.unique_ids, "collision_rate": r.collision_rate,
        "code_collision_rate": r.code_collision_rate,
    })
}

fn print_report(
    verb: &str,
    r: &SidReport,
    index: &SemanticIndex,
    out: &std::path::Path,
    json: bool,
) {
    if json {
        let mut v = report_json(r);
        v["out"] = json!(out.display().to_string());
        v["id_len"] = json!(index.map().id_len());
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return;
    }
    let before = r.code_collision_rate.map_or_else(
        || "n/a (reassigned)".to_string(),
        |c| format!("{:.2}%", 100.0 * c),
    );
    println!(
        "{verb} {} items ({} in the index), IDs of {} tokens: {} unique, \
         items sharing a code {before}, largest bucket {}, most items per ID {}",
        r.added,
        r.items,
        index.map().id_len(),
        r.unique_ids,
        r.max_bucket,
        r.max_items_per_id
    );
    if r.moved > 0 {
        println!("  {} items moved to another last-level code", r.moved);
    }
    println!("wrote {}", out.display());
}

fn build(a: &BuildArgs) -> Result<()> {
    let policy = match (a.policy, a.capacity) {
        (Policy::Suffix, None) => CollisionPolicy::AppendSuffix,
        (Policy::Shared, None) => CollisionPolicy::AllowShared,
        (Policy::Sinkhorn, None) => CollisionPolicy::SINKHORN,
        (Policy::Reassign, c) => CollisionPolicy::ReassignLastLevel {
            capacity: c.unwrap_or(1),
        },
        (p, Some(_)) => {
            return Err(usage(format!(
                "--capacity applies to --policy reassign, not {}",
                p.to_possible_value().expect("named").get_name()
            )));
        }
    };
    let q = load_quantizer(&a.model)?;
    crate::output::AtomicPath::new(&a.out)?;
    let (rows, dim) = read_rows(&a.src.input, &a.src.column, a.common.quiet)?;
    if dim != q.dim() {
        return Err(data(format!(
            "{}: rows have {dim} values; the model {} reads {}",
            a.src.input.display(),
            a.model.display(),
            q.dim()
        )));
    }
    let x =
        Embeddings::new(&rows, dim).map_err(|e| data(format!("{}: {e}", a.src.input.display())))?;
    let sp = spinner(&format!("indexing {} items", x.rows()), a.common.quiet);
    let (index, report) = SemanticIndex::build(q, x, policy, par(a.common.threads))
        .map_err(|e| data(format!("{}: {e}", a.src.input.display())))?;
    sp.finish_and_clear();
    save_model(&index, &a.out)?;
    print_report("indexed", &report, &index, &a.out, a.common.json);
    Ok(())
}

fn insert(a: &InsertArgs) -> Result<()> {
    let mut index = load_index(&a.index)?;
    let out = a.out.clone().unwrap_or_else(|| a.index.clone());
    crate::output::AtomicPath::new(&out)?;
    let (rows, dim) = read_rows(&a.src.input, &a.src.column, a.common.quiet)?;
    if dim != index.quantizer().dim() {
        return Err(data(format!(
            "{}: rows have {dim} values; the index {} reads {}",
            a.src.input.display(),
            a.index.display(),
            index.quantizer().dim()
        )));
    }
    let x =
        Embeddings::new(&rows, dim).map_err(|e| data(format!("{}: {e}", a.src.input.display())))?;
    let first = match a.first_item {
        Some(f) => f,
        None => index
            .map()
            .iter()
            .map(|(it, _)| it)
            .max()
            .map_or(0, |m| m.saturating_add(1)),
    };
    let n = u32::try_from(x.rows())
        .ok()
        .and_then(|n| first.checked_add(n))
        .ok_or_else(|| usage(format!("items {first}.. + {} rows pass 2^32 − 1", x.rows())))?;
    let items: Vec<u32> = (first..n).collect();
    let report = index
        .insert(&items, x, par(a.common.threads))
        .map_err(|e| data(format!("{}: {e}", a.src.input.display())))?;
    save_model(&index, &out)?;
    print_report("inserted", &report, &index, &out, a.common.json);
    Ok(())
}

fn info(a: &InfoArgs) -> Result<()> {
    let index = load_index(&a.index)?;
    let version = crate::run::file_version(&a.index)?;
    let q = index.quantizer();
    let r = index.map().stats();
    let t = index.trie().stats();
    let v = json!({
        "file": a.index.display().to_string(),
        "format_version": version,
        "quantizer": q.kind().name(),
        "dim": q.dim(),
        "levels": q.levels(),
        "codebook_sizes": q.codebook_sizes(),
        "policy": format!("{:?}", index.map().policy()),
        "items": index.len(),
        "id_len": index.map().id_len(),
        "id_codebook_sizes": index.map().codebook_sizes(),
        "ids": report_json(&r),
        "trie": {
            "ids": t.ids, "nodes_per_depth": t.nodes_per_depth,
            "structure_bytes": t.structure_bytes, "item_bytes": t.item_bytes,
        },
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(());
    }
    println!("{} (format version {version})", a.index.display());
    println!(
        "  quantizer   {}, {} → {} tokens, codebook sizes {:?}",
        q.kind().name(),
        q.dim(),
        q.levels(),
        q.codebook_sizes()
    );
    println!(
        "  items       {} under {:?}; IDs of {} tokens (sizes {:?})",
        index.len(),
        index.map().policy(),
        index.map().id_len(),
        index.map().codebook_sizes()
    );
    let before = r
        .code_collision_rate
        .map_or_else(|| "n/a".to_string(), |c| format!("{:.2}%", 100.0 * c));
    println!(
        "  collisions  {before} of items share a code; largest bucket {}; {} unique IDs, most items per ID {}",
        r.max_bucket, r.unique_ids, r.max_items_per_id
    );
    println!(
        "  trie        {} IDs, nodes per depth {:?}, {} + {} bytes",
        t.ids, t.nodes_per_depth, t.structure_bytes, t.item_bytes
    );
    Ok(())
}
