//! The CLI's error: one line that says what went wrong and where, printed once by `main`.

use std::fmt;
use std::path::Path;

/// A failed command: a one-line message (the cause chain already folded in).
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the sources contained.
        f.write_str(&self.0.replace('\n', "; "))
    }
}

impl std::error::Error for CliError {}

/// `Result` with [`CliError`].
pub type Result<T> = std::result::Result<T, CliError>;

/// Builds a [`CliError`] from anything printable.
pub fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(CliError(msg.into()))
}

/// Adds context to foreign errors: `.ctx("reading X")`.
pub trait Context<T> {
    /// Prefixes the error with `what: `.
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| CliError(format!("{what}: {e}")))
    }
}

/// Context for an I/O operation on a path.
pub fn io_ctx(op: &str, path: &Path) -> String {
    format!("{op} {}", path.display())
}
