//! The one error type of this crate: a message pinned to a place in a file.

use std::fmt;

use crate::yaml::Loc;

/// Something wrong with a manifest, with the place it was found.
///
/// `Display` gives the compiler-style `file:line:column: message`, so the CLI
/// can print it as is and editors can jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The file (or, when no manifest was found, the directory) concerned.
    pub file: String,
    /// 1-based line, `None` when the error is not about one place in the file.
    pub line: Option<u32>,
    /// 1-based column (in characters), `None` when unknown.
    pub column: Option<u32>,
    /// What is wrong and what was expected instead.
    pub message: String,
}

impl ManifestError {
    /// An error about the file as a whole (unreadable, missing, ...).
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(file: &str, loc: Loc, message: impl Into<String>) -> Self {
        ManifestError {
            file: file.to_owned(),
            line: Some(loc.line),
            column: Some(loc.col),
            message: message.into(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ManifestError {}
