//! A wallet: an account key file (hex, mode 0600) and, beside it, the account's progress: the
//! next seq, the transfer in flight and the latest own debit proofs. The transfer in flight is
//! written before it is sent, so a client that crashes resumes it instead of signing a
//! conflicting one. An open wallet holds a lock, so two processes never use one account at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use shared::codec;
use shared::driver::{account_id, WalletState};
use shared::limits::MESSAGE_BYTES_MAX;
use shared::types::AccountId;

use transport::files::{self, FileError, SECRET_FILE_MODE};

/// An account key with its progress file.
pub struct Wallet {
    key: SigningKey,
    state_path: PathBuf,
    state: WalletState,
    /// Held while the wallet is open: two processes must never pick seqs from one wallet.
    _lock: File,
}

impl Wallet {
    /// Writes a new key to `path` (mode 0600); refuses to overwrite an existing file.
    pub fn create(path: &Path, key: &SigningKey) -> Result<(), FileError> {
        files::create_secret_hex(path, &key.to_bytes())
    }

    /// Opens the key at `path` and its progress file, if there is one yet.
    pub fn open(path: &Path) -> Result<Wallet, FileError> {
        let key = SigningKey::from_bytes(&files::read_secret_hex(path, "a key file")?);
        let _lock = lock(path)?;
        let state_path = files::beside(path, ".state");
        let state = match files::read_bounded(&state_path, MESSAGE_BYTES_MAX) {
            Ok(bytes) => codec::decode(&bytes).map_err(|error| {
                FileError::new(
                    &state_path,
                    format!("is corrupt ({error}); restore it or remove it"),
                )
            })?,
            Err(_) if !state_path.exists() => WalletState::default(),
            Err(error) => return Err(error),
        };
        Ok(Wallet { key, state_path, state, _lock })
    }

    /// The account key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The account.
    pub fn account(&self) -> AccountId {
        account_id(&self.key)
    }

    /// What the wallet remembers: next seq, the transfer in flight, recent debits.
    pub fn state(&self) -> &WalletState {
        &self.state
    }

    /// Replaces the remembered state and writes it, atomically, before anything that depends
    /// on it is sent.
    pub fn save(&mut self, state: WalletState) -> Result<(), FileError> {
        let bytes =
            codec::encode(&state).map_err(|error| FileError::new(&self.state_path, error))?;
        files::replace(&self.state_path, &bytes, SECRET_FILE_MODE)?;
        self.state = state;
        Ok(())
    }

    /// Replaces the remembered state in memory only: what it adds (the next seq the elders
    /// agree on) is learnt again if lost.
    pub fn remember(&mut self, state: WalletState) {
        self.state = state;
    }
}

/// Takes the wallet's lock file, or says who holds it.
fn lock(path: &Path) -> Result<File, FileError> {
    let lock_path = files::beside(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(SECRET_FILE_MODE)
        .open(&lock_path)
        .map_err(|error| FileError::new(&lock_path, error))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(FileError::new(
            path,
            "is in use by another process (a send is under way); wait for it to finish",
        )),
        Err(TryLockError::Error(error)) => Err(FileError::new(&lock_path, error)),
    }
}
