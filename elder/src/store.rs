//! The elder's durable state in redb: an append-only table of ledger records, replayed on
//! start, and the identity the directory belongs to. Each append is one transaction, synced
//! before it returns: that is the group commit of every record a batch of requests produced.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use shared::codec;
use shared::ledger::{ElderId, Record};
use shared::types::Digest;

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const IDENTITY_KEY: &str = "identity";
/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "elder.redb";

/// Whose store this is: a data directory serves one elder of one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The network's genesis hash.
    pub genesis: Digest,
    /// The elder.
    pub elder: ElderId,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (prefix, index) = (self.elder.prefix, self.elder.index);
        write!(f, "elder {index} of section {prefix} in network {}", self.genesis)
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// redb failed.
    #[error("store {path}: {message}")]
    Database {
        /// The store file.
        path: PathBuf,
        /// redb's message.
        message: String,
    },
    /// The directory belongs to another elder or network.
    #[error("store {path} belongs to {found}, not to {expected}; point data_dir elsewhere")]
    WrongIdentity {
        /// The store file.
        path: PathBuf,
        /// Whose it is.
        found: String,
        /// This elder.
        expected: String,
    },
    /// The data directory holds no store: starting fresh would forget every share this elder
    /// signed (R1), so it is done only at genesis or when the operator asks.
    #[error(
        "store {path} does not exist: an elder started without its store has forgotten the \
         shares it signed and could sign twice. Restore the data directory, or, only if this \
         elder has never run, start it once with --new-store"
    )]
    Missing {
        /// The store file.
        path: PathBuf,
    },
    /// A new store was asked for where one already is.
    #[error("store {path} already exists; start the elder without --new-store")]
    Exists {
        /// The store file.
        path: PathBuf,
    },
    /// A stored record does not decode.
    #[error("store {path}: record {key} is corrupt: {problem}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The record's key.
        key: u64,
        /// The decode error.
        problem: String,
    },
}

fn database_error(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Database { path: path.to_path_buf(), message: error.to_string() }
}

/// An open store.
pub struct Store {
    database: Database,
    path: PathBuf,
    next_key: u64,
}

impl Store {
    /// Creates a new, empty store in `dir` for `identity`: at genesis, or for an elder the
    /// operator says has never run. An existing store is never replaced.
    pub fn create(dir: &Path, identity: Identity) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Directory { path: dir.to_path_buf(), source })?;
        let path = dir.join(STORE_FILE);
        if path.exists() {
            return Err(StoreError::Exists { path });
        }
        let database = Database::create(&path).map_err(|e| database_error(&path, e))?;
        let mut store = Store { database, path, next_key: 0 };
        store.identity()?;
        store.write_identity(identity)?;
        Ok(store)
    }

    /// Opens the store in `dir`, which must exist and belong to `identity`.
    pub fn open(dir: &Path, identity: Identity) -> Result<Store, StoreError> {
        let path = dir.join(STORE_FILE);
        if !path.is_file() {
            return Err(StoreError::Missing { path });
        }
        let database = Database::open(&path).map_err(|e| database_error(&path, e))?;
        let mut store = Store { database, path: path.clone(), next_key: 0 };
        match store.identity()? {
            Some(found) if found == identity => {}
            found => {
                let found = found.map_or_else(|| "an unknown owner".to_string(), |f| f.to_string());
                return Err(StoreError::WrongIdentity {
                    path,
                    found,
                    expected: identity.to_string(),
                });
            }
        }
        let read = store.database.begin_read().map_err(|e| store.fail(e))?;
        let table = read.open_table(RECORDS).map_err(|e| store.fail(e))?;
        let last = table.last().map_err(|e| store.fail(e))?;
        store.next_key = last.map_or(0, |(key, _)| key.value() + 1);
        drop((table, read));
        Ok(store)
    }

    fn fail(&self, error: impl std::fmt::Display) -> StoreError {
        database_error(&self.path, error)
    }

    fn identity(&self) -> Result<Option<Identity>, StoreError> {
        let write = self.database.begin_write().map_err(|e| self.fail(e))?;
        // Creating both tables in a first transaction lets every later read open them.
        write.open_table(RECORDS).map_err(|e| self.fail(e))?;
        let bytes = {
            let meta = write.open_table(META).map_err(|e| self.fail(e))?;
            let stored = meta.get(IDENTITY_KEY).map_err(|e| self.fail(e))?;
            stored.map(|value| value.value().to_vec())
        };
        write.commit().map_err(|e| self.fail(e))?;
        bytes
            .map(|bytes| {
                codec::decode(&bytes).map_err(|error| StoreError::Corrupt {
                    path: self.path.clone(),
                    key: 0,
                    problem: format!("identity: {error}"),
                })
            })
            .transpose()
    }

    fn write_identity(&mut self, identity: Identity) -> Result<(), StoreError> {
        let bytes = codec::encode(&identity).map_err(|e| self.fail(e))?;
        let write = self.database.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut meta = write.open_table(META).map_err(|e| self.fail(e))?;
            meta.insert(IDENTITY_KEY, bytes.as_slice()).map_err(|e| self.fail(e))?;
        }
        write.commit().map_err(|e| self.fail(e))
    }

    /// Every record, in the order it was appended.
    pub fn records(&self) -> Result<Vec<Record>, StoreError> {
        let read = self.database.begin_read().map_err(|e| self.fail(e))?;
        let table = read.open_table(RECORDS).map_err(|e| self.fail(e))?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(|e| self.fail(e))? {
            let (key, value) = entry.map_err(|e| self.fail(e))?;
            let record = codec::decode(value.value()).map_err(|error| StoreError::Corrupt {
                path: self.path.clone(),
                key: key.value(),
                problem: error.to_string(),
            })?;
            records.push(record);
        }
        Ok(records)
    }

    /// Appends `records` in one durable transaction.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let write = self.database.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = write.open_table(RECORDS).map_err(|e| self.fail(e))?;
            for (offset, record) in records.iter().enumerate() {
                let bytes = codec::encode(record).map_err(|e| self.fail(e))?;
                table
                    .insert(self.next_key + offset as u64, bytes.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        write.commit().map_err(|e| self.fail(e))?;
        self.next_key += records.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::types::{ElderIndex, Prefix, TransferId};

    fn identity(index: u32) -> Identity {
        Identity {
            genesis: Digest([7; 32]),
            elder: ElderId { prefix: Prefix::ROOT, index: ElderIndex(index) },
        }
    }

    #[test]
    fn appended_records_come_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let acked =
            |n: u8| Record::Acked { transfer: TransferId(Digest([n; 32])), elder: ElderIndex(1) };
        {
            let mut store = Store::create(dir.path(), identity(0)).expect("create");
            store.append(&[acked(1), acked(2)]).expect("append");
            store.append(&[acked(3)]).expect("append");
        }
        let store = Store::open(dir.path(), identity(0)).expect("reopen");
        assert_eq!(store.records().expect("records"), vec![acked(1), acked(2), acked(3)]);
    }

    #[test]
    fn a_store_of_another_elder_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(Store::create(dir.path(), identity(0)).expect("create"));
        let error = Store::open(dir.path(), identity(1)).err().expect("refused");
        assert!(matches!(error, StoreError::WrongIdentity { .. }), "{error}");
        assert!(error.to_string().contains("elder 0 of section"), "{error}");
    }

    #[test]
    fn a_missing_store_is_refused_and_an_existing_one_is_never_created_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = Store::open(dir.path(), identity(0)).err().expect("refused");
        assert!(matches!(error, StoreError::Missing { .. }), "{error}");
        assert!(error.to_string().contains(STORE_FILE), "{error}");
        assert!(!dir.path().join(STORE_FILE).exists(), "opening creates nothing");
        let mut store = Store::create(dir.path(), identity(0)).expect("create");
        let acked = Record::Acked { transfer: TransferId(Digest([1; 32])), elder: ElderIndex(1) };
        store.append(std::slice::from_ref(&acked)).expect("append");
        drop(store);
        let error = Store::create(dir.path(), identity(0)).err().expect("refused");
        assert!(matches!(error, StoreError::Exists { .. }), "{error}");
        let store = Store::open(dir.path(), identity(0)).expect("open");
        assert_eq!(store.records().expect("records"), vec![acked]);
    }
}
