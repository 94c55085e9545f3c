//! The elder's durable state in redb: an append-only table of ledger records, replayed on
//! start, and the identity the directory belongs to. Each append is one transaction, synced
//! before it returns: that is the group commit of every record a batch of requests produced.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
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

/// An open store.
pub struct Store {
    database: Database,
    path: PathBuf,
    next_key: u64,
}

impl Store {
    /// Opens (or creates) the store in `dir` for `identity`.
    pub fn open(dir: &Path, identity: Identity) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Directory { path: dir.to_path_buf(), source })?;
        let path = dir.join(STORE_FILE);
        let fail = |error: &dyn std::fmt::Display| StoreError::Database {
            path: path.clone(),
            message: error.to_string(),
        };
        let database = Database::create(&path).map_err(|e| fail(&e))?;
        let mut store = Store { database, path: path.clone(), next_key: 0 };
        let found = store.identity()?;
        match found {
            Some(found) if found == identity => {}
            None if store.is_empty()? => store.write_identity(identity)?,
            _ => {
                let found = found.map_or_else(|| "an unknown owner".to_string(), |f| f.to_string());
                return Err(StoreError::WrongIdentity {
                    path,
                    found,
                    expected: identity.to_string(),
                });
            }
        }
        let read = store.database.begin_read().map_err(|e| fail(&e))?;
        let table = read.open_table(RECORDS).map_err(|e| fail(&e))?;
        let last = table.last().map_err(|e| fail(&e))?;
        store.next_key = last.map_or(0, |(key, _)| key.value() + 1);
        Ok(store)
    }

    fn fail(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError::Database { path: self.path.clone(), message: error.to_string() }
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

    fn is_empty(&self) -> Result<bool, StoreError> {
        let read = self.database.begin_read().map_err(|e| self.fail(e))?;
        let table = read.open_table(RECORDS).map_err(|e| self.fail(e))?;
        Ok(table.len().map_err(|e| self.fail(e))? == 0)
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
            let mut store = Store::open(dir.path(), identity(0)).expect("open");
            store.append(&[acked(1), acked(2)]).expect("append");
            store.append(&[acked(3)]).expect("append");
        }
        let store = Store::open(dir.path(), identity(0)).expect("reopen");
        assert_eq!(store.records().expect("records"), vec![acked(1), acked(2), acked(3)]);
    }

    #[test]
    fn a_store_of_another_elder_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(Store::open(dir.path(), identity(0)).expect("open"));
        let error = Store::open(dir.path(), identity(1)).err().expect("refused");
        assert!(matches!(error, StoreError::WrongIdentity { .. }), "{error}");
        assert!(error.to_string().contains("elder 0 of section"), "{error}");
    }
}
