//! The files owners of a multi-owner account pass between their machines: a policy and a
//! partly signed transfer, as JSON. Neither holds a secret.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::limits::MESSAGE_BYTES_MAX;
use transport::files::{self, FileError};

/// The mode of a file others may read.
const SHARED_FILE_MODE: u32 = 0o644;

/// Writes `value` to a new file at `path`; an existing file is never overwritten.
pub fn create<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    if path.exists() {
        return Err(FileError::new(path, "already exists; choose another path or remove it first"));
    }
    replace(path, value)
}

/// Replaces the file at `path` with `value`, atomically.
pub fn replace<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = serde_json::to_vec_pretty(value).map_err(|error| FileError::new(path, error))?;
    files::replace(path, &text, SHARED_FILE_MODE)
}

/// Reads `what` (for the error) from the file at `path`.
pub fn read<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, FileError> {
    let bytes = files::read_bounded(path, MESSAGE_BYTES_MAX)?;
    serde_json::from_slice(&bytes)
        .map_err(|error| FileError::new(path, format!("is not {what} ({error})")))
}
