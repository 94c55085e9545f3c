//! Reading and writing the small files a bank keeps: bounded reads, secrets with mode 0600,
//! and atomic replacement so a crash leaves the old or the new file, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of every file that holds a secret.
pub const SECRET_FILE_MODE: u32 = 0o600;

/// A file operation failed; the error names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub problem: String,
}

impl FileError {
    /// An error about `path`.
    pub fn new(path: &Path, problem: impl ToString) -> FileError {
        FileError { path: path.to_path_buf(), problem: problem.to_string() }
    }
}

/// Reads a whole file, refusing one over `max_bytes`.
pub fn read_bounded(path: &Path, max_bytes: usize) -> Result<Vec<u8>, FileError> {
    let file = File::open(path).map_err(|error| FileError::new(path, error))?;
    let mut bytes = Vec::new();
    file.take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| FileError::new(path, error))?;
    if bytes.len() > max_bytes {
        return Err(FileError::new(path, format!("larger than the {max_bytes} bytes allowed")));
    }
    Ok(bytes)
}

/// `path` with `suffix` appended to its file name.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a new file with mode 0600 and syncs it; an existing file is never overwritten.
pub fn create_secret(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(SECRET_FILE_MODE).open(path).map_err(
            |error| match error.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    FileError::new(path, "already exists; choose another path or remove it first")
                }
                _ => FileError::new(path, error),
            },
        )?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| FileError::new(path, error))
}

/// Replaces `path` with `bytes` atomically and durably (write aside, sync, rename, sync dir).
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let aside = beside(path, ".tmp");
    let fail = |error: std::io::Error| FileError::new(path, error);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&aside)
        .map_err(fail)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(fail)?;
    fs::rename(&aside, path).map_err(fail)?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory).and_then(|dir| dir.sync_all()).map_err(fail)
}

/// Bytes of a secret-key file: 64 hex digits and a newline.
const SECRET_KEY_FILE_BYTES_MAX: usize = 65;

/// Reads a 32-byte secret written as 64 hex digits; `what` names it in the error.
pub fn read_secret_hex(path: &Path, what: &str) -> Result<[u8; 32], FileError> {
    let bytes = read_bounded(path, SECRET_KEY_FILE_BYTES_MAX)?;
    let malformed = || FileError::new(path, format!("is not {what} (64 hex digits expected)"));
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?.trim();
    hex::decode(text).ok().and_then(|secret| secret.try_into().ok()).ok_or_else(malformed)
}

/// Writes a new 32-byte secret as 64 hex digits, mode 0600, never over an existing file.
pub fn create_secret_hex(path: &Path, secret: &[u8; 32]) -> Result<(), FileError> {
    create_secret(path, format!("{}\n", hex::encode(secret)).as_bytes())
}
