//! The crate's one error type.

use std::fmt;

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure semid reports on user input, configuration or files.
///
/// Each variant carries enough context (dimensions, row, field) to say what
/// to fix; the `Display` message says how.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A size did not match what was expected (data length vs. `n × d`,
    /// model dimension vs. data dimension, output buffer length).
    Shape {
        /// What was being checked, e.g. `"data dimension"`.
        what: &'static str,
        /// The size that was required.
        expected: usize,
        /// The size that was given.
        got: usize,
    },
    /// The input had no rows or no columns.
    Empty {
        /// What was empty, e.g. `"embeddings"`.
        what: &'static str,
    },
    /// A NaN or ±Inf value was found.
    NonFinite {
        /// Which input, e.g. `"embeddings"`.
        what: &'static str,
        /// Row of the first non-finite value.
        row: usize,
        /// Column of the first non-finite value.
        col: usize,
    },
    /// A line of a text input (an interaction file, an item-id file) could
    /// not be read.
    Parse {
        /// The input, e.g. `"interaction file"`.
        what: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Training diverged: the loss became NaN or infinite.
    Diverged {
        /// Epoch (0-based) of the step that diverged.
        epoch: usize,
        /// Step within that epoch (0-based).
        step: usize,
        /// The reconstruction loss of that step.
        loss: f64,
    },
    /// A configuration field is out of its valid range.
    InvalidConfig {
        /// The field name as written in the config struct.
        field: &'static str,
        /// Why the value is invalid and what range is accepted.
        reason: String,
    },
    /// A code token is not smaller than its level's codebook size.
    TokenOutOfRange {
        /// Row (item) of the bad token.
        row: usize,
        /// Level of the bad token.
        level: usize,
        /// The token value.
        token: u16,
        /// The codebook size at that level.
        codebook_size: usize,
    },
    /// The input layout cannot be viewed as a row-major matrix without a copy.
    Layout {
        /// What to do instead.
        reason: &'static str,
    },
    /// A model file (or byte buffer) is not a valid semid model.
    Format(FormatError),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A `.npy` file could not be read or written.
    Npy(String),
    /// Semantic-ID text (`<a_12><b_34>…`, [`sid::TextFormat`](crate::sid::TextFormat))
    /// that does not parse.
    SidText {
        /// The text (cut to 80 characters).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// What was wrong inside a named file: a model file that is not valid
    /// (`source` is [`Error::Format`]), a line of a text file that cannot
    /// be read ([`Error::Parse`]). [`Error::root`] gives `source`.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        source: Box<Error>,
    },
    /// An item is already present (or listed twice) where items must be
    /// unique.
    DuplicateItem {
        /// The repeated item.
        item: u32,
    },
    /// A [`Scorer`](crate::decode::Scorer) failed during a search (a
    /// model's forward pass, say); the search stops with this error.
    Scorer {
        /// What failed, in the scorer's words.
        reason: String,
    },
    /// The GPU path (feature `cuda`) could not run: no driver, no device,
    /// no NVRTC library, or a CUDA call failed.
    Gpu {
        /// What failed and what to do.
        reason: String,
    },
}

/// Why a model file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The first 8 bytes are not semid's magic: not a semid model file.
    BadMagic,
    /// The file was written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The file holds another kind of model than the one being loaded.
    WrongKind {
        /// Kind name expected by the caller.
        expected: &'static str,
        /// Kind tag found in the file.
        found: u32,
    },
    /// The file is shorter than its header says.
    Truncated {
        /// Bytes the header requires.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// Bytes follow the declared payload.
    TrailingBytes {
        /// Number of unexpected trailing bytes.
        extra: u64,
    },
    /// The payload checksum does not match: the file is corrupted.
    Checksum {
        /// Checksum stored in the header.
        stored: u64,
        /// Checksum of the payload as read.
        computed: u64,
    },
    /// The payload could not be decoded.
    Payload(String),
    /// The payload decoded but breaks an invariant of the model.
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape {
                what,
                expected,
                got,
            } => write!(
                f,
                "{what}: expected {expected}, got {got}; check the shape of the input"
            ),
            Error::Empty { what } => {
                write!(f, "{what} is empty; pass at least one row and one column")
            }
            Error::NonFinite { what, row, col } => write!(
                f,
                "{what} has a NaN or infinite value at row {row}, column {col}; clean or drop that row"
            ),
            Error::Diverged { epoch, step, loss } => write!(
                f,
                "training diverged: the loss became non-finite at epoch {epoch}, step {step} (reconstruction {loss}); lower the learning rate or check the data scale"
            ),
            Error::Parse { what, line, reason } => {
                write!(f, "{what}, line {line}: {reason}; fix or remove that line")
            }
            Error::InvalidConfig { field, reason } => {
                write!(f, "invalid configuration: `{field}` {reason}")
            }
            Error::TokenOutOfRange {
                row,
                level,
                token,
                codebook_size,
            } => write!(
                f,
                "code token {token} at row {row}, level {level} is out of range: the codebook has {codebook_size} entries; were these codes made by another model?"
            ),
            Error::Layout { reason } => write!(f, "unsupported memory layout: {reason}"),
            Error::Format(e) => write!(f, "invalid model file: {e}"),
            Error::Io { path, source } => {
                let fix = match source.kind() {
                    std::io::ErrorKind::NotFound => "; check the path",
                    std::io::ErrorKind::PermissionDenied => "; check its permissions",
                    std::io::ErrorKind::IsADirectory => "; name a file, not a directory",
                    _ => "",
                };
                write!(f, "{}: {source}{fix}", path.display())
            }
            Error::Npy(e) => write!(f, ".npy error: {e}"),
            Error::Gpu { reason } => write!(f, "GPU: {reason}"),
            Error::File { path, source } => write!(f, "{}: {source}", path.display()),
            Error::SidText { text, reason } => write!(f, "semantic-ID text {text:?}: {reason}"),
            Error::Scorer { reason } => write!(f, "the scorer failed: {reason}"),
            Error::DuplicateItem { item } => write!(
                f,
                "item {item} is already present or listed twice; each item may appear once"
            ),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::BadMagic => write!(f, "bad magic bytes; this is not a semid model file"),
            FormatError::UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is newer than this build reads (up to {supported}); upgrade semid"
            ),
            FormatError::WrongKind { expected, found } => write!(
                f,
                "file holds model kind tag {found}, not a {expected}; load it with the matching type"
            ),
            FormatError::Truncated { expected, got } => write!(
                f,
                "truncated: the header requires {expected} bytes but only {got} are present; re-save the model"
            ),
            FormatError::TrailingBytes { extra } => {
                write!(
                    f,
                    "{extra} unexpected bytes after the payload; the file is corrupted"
                )
            }
            FormatError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#018x}, computed {computed:#018x}); the file is corrupted, re-save the model"
            ),
            FormatError::Payload(e) => write!(f, "payload could not be decoded: {e}"),
            FormatError::Invalid(e) => write!(f, "payload breaks a model invariant: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::File { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl Error {
    /// The error itself, or for [`Error::File`] the error inside the file
    /// (what to match on whether or not a path was attached).
    #[must_use]
    pub fn root(&self) -> &Error {
        match self {
            Error::File { source, .. } => source.root(),
            e => e,
        }
    }
}

/// A closure naming `path` in what went wrong inside it ([`Error::File`]);
/// I/O errors already name their file and pass through.
pub(crate) fn in_file(path: &std::path::Path) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        e @ (Error::Io { .. } | Error::File { .. }) => e,
        e => Error::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        },
    }
}

/// A closure turning an I/O error on `path` into [`Error::Io`].
pub(crate) fn io_at(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

/// `Err(Error::Shape)` unless `expected == got`.
pub(crate) fn expect_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(Error::Shape {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

/// Shorthand for an [`Error::InvalidConfig`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
