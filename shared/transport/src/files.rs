//! Reading and writing the small files a bank keeps: bounded reads, secrets with mode 0600,
//! and atomic replacement so a crash leaves the old or the new file, never half of one.

use crate::limits::SECRET_KEY_FILE_BYTES_MAX;
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

/// Reads a whole secret file, refusing one over `max_bytes` and, as ssh does, one that others
/// than its owner may read or write: a key share or account key left open is compromised.
pub fn read_secret(path: &Path, max_bytes: usize) -> Result<Vec<u8>, FileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        fs::metadata(path).map_err(|error| FileError::new(path, error))?.permissions().mode();
    if mode & 0o077 != 0 {
        let problem = format!(
            "holds a secret but others may access it (mode {:o}); run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        );
        return Err(FileError::new(path, problem));
    }
    read_bounded(path, max_bytes)
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
    // A file left aside by a crash keeps its old mode if reopened: start from a new one.
    match fs::remove_file(&aside) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(fail(error)),
        _ => {}
    }
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(mode).open(&aside).map_err(fail)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(fail)?;
    fs::rename(&aside, path).map_err(fail)?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory).and_then(|dir| dir.sync_all()).map_err(fail)
}

/// Reads a 32-byte secret written as 64 hex digits; `what` names it in the error.
pub fn read_secret_hex(path: &Path, what: &str) -> Result<[u8; 32], FileError> {
    let bytes = read_secret(path, SECRET_KEY_FILE_BYTES_MAX)?;
    let malformed = || FileError::new(path, format!("is not {what} (64 hex digits expected)"));
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?.trim();
    hex::decode(text).ok().and_then(|secret| secret.try_into().ok()).ok_or_else(malformed)
}

/// Writes a new 32-byte secret as 64 hex digits, mode 0600, never over an existing file.
pub fn create_secret_hex(path: &Path, secret: &[u8; 32]) -> Result<(), FileError> {
    create_secret(path, format!("{}\n", hex::encode(secret)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_secret_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("share");
        create_secret_hex(&path, &[7; 32]).expect("write");
        assert_eq!(read_secret_hex(&path, "a key share").expect("read"), [7; 32]);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = read_secret_hex(&path, "a key share").expect_err("refused");
        assert!(error.to_string().contains("mode 644") && error.to_string().contains("chmod 600"));
    }

    #[test]
    fn replace_never_inherits_the_mode_of_a_file_left_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wallet.state");
        let aside = beside(&path, ".tmp");
        fs::write(&aside, b"left by a crash").expect("write");
        fs::set_permissions(&aside, fs::Permissions::from_mode(0o666)).expect("chmod");
        replace(&path, b"new", SECRET_FILE_MODE).expect("replace");
        assert_eq!(mode_of(&path), SECRET_FILE_MODE);
        assert_eq!(fs::read(&path).expect("read"), b"new");
        assert!(!aside.exists());
    }
}
