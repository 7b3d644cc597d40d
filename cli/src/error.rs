//! What a command can fail with, and the exit code of each.

use std::fmt;

/// A command's failure. `Display` is the one line the user sees.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong: a missing or conflicting flag, a flag
    /// that does not apply, an input path that does not exist. Exit 2.
    Usage(String),
    /// The data or a model file is wrong, or the work failed. Exit 1.
    Data(String),
    /// Stopped by Ctrl-C (or the test hook) before the output was whole;
    /// nothing was left behind. Exit 130, as a shell reports SIGINT.
    Interrupted,
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Data(_) => 1,
            CliError::Interrupted => 130,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Data(m) => f.write_str(m),
            CliError::Interrupted => f.write_str(
                "interrupted: stopped before the output was complete; no output file was written",
            ),
        }
    }
}

impl From<semid::Error> for CliError {
    fn from(e: semid::Error) -> Self {
        CliError::Data(e.to_string())
    }
}

/// A usage error.
pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// A data error.
pub fn data(msg: impl Into<String>) -> CliError {
    CliError::Data(msg.into())
}

/// `Result` with [`CliError`].
pub type Result<T> = std::result::Result<T, CliError>;
