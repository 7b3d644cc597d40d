//! What every command shares: threads, progress bars, the stop flag, and
//! model files.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use semid::format::{self, ModelKind};
use semid::quantize::AnyQuantizer;
use semid::{ModelFile, Par, SemanticIndex};

use crate::error::{CliError, Result, data};
use crate::input::existing_file;

/// Set by Ctrl-C while a command streams; checked between blocks.
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether a streaming loop is running (it checks [`STOP`]); otherwise
/// Ctrl-C ends the process at once, as usual.
static STREAMING: AtomicBool = AtomicBool::new(false);
/// Rows after which the test hook stops a streaming loop (0: never).
static STOP_AFTER: AtomicU64 = AtomicU64::new(0);

/// The environment variable that makes a streaming command stop after that
/// many rows as if Ctrl-C had been pressed: the deterministic stand-in for
/// a signal that the tests use. Not for production use.
pub const STOP_AFTER_ROWS_ENV: &str = "SEMID_CLI_STOP_AFTER_ROWS";

/// Installs the Ctrl-C handler and reads the test hook.
pub fn install_interrupt() {
    if let Some(n) = std::env::var(STOP_AFTER_ROWS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        STOP_AFTER.store(n, Ordering::SeqCst);
    }
    let _ = ctrlc::set_handler(|| {
        if STREAMING.load(Ordering::SeqCst) && !STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsemid: stopping at the end of this block (Ctrl-C again to quit at once)");
        } else {
            std::process::exit(130);
        }
    });
}

/// Marks the span of a streaming loop.
pub struct Streaming;

impl Streaming {
    /// Starts one.
    pub fn start() -> Streaming {
        STREAMING.store(true, Ordering::SeqCst);
        Streaming
    }

    /// `Err(Interrupted)` once Ctrl-C was pressed or `rows_done` passed
    /// the test hook's count.
    pub fn check(&self, rows_done: usize) -> Result<()> {
        let after = STOP_AFTER.load(Ordering::SeqCst);
        if after > 0 && rows_done as u64 >= after {
            STOP.store(true, Ordering::SeqCst);
        }
        if STOP.load(Ordering::SeqCst) {
            Err(CliError::Interrupted)
        } else {
            Ok(())
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        STREAMING.store(false, Ordering::SeqCst);
    }
}

/// The flags of every command that works on data.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Threads (default: all; 1: the calling thread only). Results do not
    /// depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--threads`: 0 or none = all of rayon's, 1 = the calling thread only.
pub fn par(threads: Option<usize>) -> Par {
    match threads {
        None | Some(0) => Par::default(),
        Some(1) => Par::Seq,
        Some(n) => Par::Rayon(n),
    }
}

/// Whether progress bars are drawn: stderr is a terminal and not `--quiet`.
pub fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A bar over `total` rows.
pub fn bar(total: u64, msg: &str, quiet: bool) -> ProgressBar {
    if !show_progress(quiet) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:32}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// A spinner with the elapsed time, for work without a known length.
pub fn spinner(msg: &str, quiet: bool) -> ProgressBar {
    if !show_progress(quiet) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A model file's bytes and checked header.
pub fn read_model(path: &Path) -> Result<(Vec<u8>, format::Header)> {
    existing_file(path, "model")?;
    let bytes = std::fs::read(path).map_err(|e| data(format!("{}: {e}", path.display())))?;
    let h = format::inspect(&bytes).map_err(|e| {
        data(format!(
            "{}: not a usable semid model file: {e}",
            path.display()
        ))
    })?;
    Ok((bytes, h))
}

/// What a command that needs a quantizer says of another kind of file.
fn wrong_kind(path: &Path, kind: ModelKind, needs: &str) -> CliError {
    data(format!(
        "{}: is a {} model file; {needs}",
        path.display(),
        kind.name()
    ))
}

/// The quantizer of a quantizer file or of an index file.
pub fn load_quantizer(path: &Path) -> Result<AnyQuantizer> {
    let (bytes, h) = read_model(path)?;
    let at = |e: semid::Error| data(format!("{}: {e}", path.display()));
    match h.kind {
        ModelKind::SemanticIndex => Ok(SemanticIndex::from_bytes(&bytes)
            .map_err(at)?
            .quantizer()
            .clone()),
        ModelKind::KMeans
        | ModelKind::RqKMeans
        | ModelKind::RqVae
        | ModelKind::Fsq
        | ModelKind::ResidualFsq
        | ModelKind::FsqAutoencoder
        | ModelKind::ProductQuantizer => AnyQuantizer::from_bytes(&bytes).map_err(at),
        k => Err(wrong_kind(
            path,
            k,
            "give a quantizer (from `semid fit`) or an index (from `semid index build`)",
        )),
    }
}

/// An index file.
pub fn load_index(path: &Path) -> Result<SemanticIndex> {
    existing_file(path, "model")?;
    // Opened in place (memory-mapped; the header, the directory and the
    // trie's structure checked): milliseconds where reading and checking
    // every byte takes seconds at 10M items. An insert verifies the rest
    // before it changes anything.
    SemanticIndex::open(path).map_err(|e| {
        let e = e.root();
        if let semid::Error::Format(semid::FormatError::WrongKind { found, .. }) = e
            && let Some(kind) = ModelKind::from_tag(*found)
        {
            return wrong_kind(path, kind, "give an index (from `semid index build`)");
        }
        data(format!(
            "{}: not a usable semid model file: {e}",
            path.display()
        ))
    })
}

/// The format version in a model file's header (the file already read
/// and checked).
pub fn file_version(path: &Path) -> Result<u32> {
    use std::io::Read;
    let mut head = [0u8; 12];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| data(format!("{}: {e}", path.display())))?;
    Ok(u32::from_le_bytes([head[8], head[9], head[10], head[11]]))
}

/// Saves a model through a temporary file (the library's atomic write),
/// naming the file in errors.
pub fn save_model<M: ModelFile>(m: &M, path: &Path) -> Result<()> {
    crate::output::AtomicPath::new(path)?; // checks the directory
    m.save(path)
        .map_err(|e| data(format!("{}: {e}", path.display())))
}
