//! The Raft log in its own redb file beside the store: entries by index, and the vote, the
//! committed position and the last purged entry. Every write is committed with fsync before
//! openraft is told it is done.

use crate::{Entry, NodeId, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

/// Index → entry (JSON).
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// `vote`, `committed`, `purged` → JSON.
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_state");

/// The log, shared by the writer and its readers (replication streams).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl ToString,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

fn read_error(e: impl ToString) -> StorageError<NodeId> {
    io_error(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_error(e: impl ToString) -> StorageError<NodeId> {
    io_error(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    /// Opens (or creates) the log file.
    pub fn open(path: &Path) -> Result<Self, redb::Error> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LOGS)?;
        txn.open_table(STATE)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    fn get_state<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError<NodeId>> {
        let txn = self.db.begin_read().map_err(read_error)?;
        let table = txn.open_table(STATE).map_err(read_error)?;
        match table.get(key).map_err(read_error)? {
            Some(bytes) => serde_json::from_slice(bytes.value())
                .map(Some)
                .map_err(read_error),
            None => Ok(None),
        }
    }

    fn put_state<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(value).map_err(write_error)?;
        let txn = self.db.begin_write().map_err(write_error)?;
        txn.open_table(STATE)
            .map_err(write_error)?
            .insert(key, bytes.as_slice())
            .map_err(write_error)?;
        txn.commit().map_err(write_error)
    }

    fn last_entry(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let txn = self.db.begin_read().map_err(read_error)?;
        let table = txn.open_table(LOGS).map_err(read_error)?;
        match table.last().map_err(read_error)? {
            Some((_, bytes)) => {
                let entry: Entry = serde_json::from_slice(bytes.value()).map_err(read_error)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// Removes entries in `range` (inclusive bounds as given).
    fn remove(&self, from: u64, to: u64) -> Result<(), StorageError<NodeId>> {
        let txn = self.db.begin_write().map_err(write_error)?;
        {
            let mut table = txn.open_table(LOGS).map_err(write_error)?;
            table
                .retain_in(from..=to, |_, _| false)
                .map_err(write_error)?;
        }
        txn.commit().map_err(write_error)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let txn = self.db.begin_read().map_err(read_error)?;
        let table = txn.open_table(LOGS).map_err(read_error)?;
        let mut entries = Vec::new();
        for item in table.range(range).map_err(read_error)? {
            let (_, bytes) = item.map_err(read_error)?;
            entries.push(serde_json::from_slice(bytes.value()).map_err(read_error)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get_state("purged")?;
        let last_log_id = self.last_entry()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_state("vote", vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_state("vote")
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let txn = self.db.begin_write().map_err(write_error)?;
        {
            let mut table = txn.open_table(LOGS).map_err(write_error)?;
            for entry in entries {
                let bytes = serde_json::to_vec(&entry).map_err(write_error)?;
                table
                    .insert(entry.log_id.index, bytes.as_slice())
                    .map_err(write_error)?;
            }
        }
        let committed = txn
            .commit()
            .map_err(|e| std::io::Error::other(e.to_string()));
        let failed = committed.as_ref().err().map(write_error);
        callback.log_io_completed(committed);
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.remove(log_id.index, u64::MAX)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_state("purged", &log_id)?;
        self.remove(0, log_id.index)
    }
}
