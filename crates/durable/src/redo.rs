//! A [`Commit`] hook that makes a group of writes durable by appending a record of what it
//! changed to a redo [`Log`] beside the store file (one sequential write and fdatasync), then
//! committing redb without durability; every [`CHECKPOINT_GROUPS`] groups (or
//! [`CHECKPOINT_BYTES`] of log) one group is committed durably instead and the log emptied,
//! and so at a clean close. What a record holds is the store's own business ([`Redo`]).
//!
//! Why nothing acknowledged is lost: a caller is answered only after its group's record is
//! on disk. After a crash, redb opens at its last durable commit (a checkpoint), and
//! [`Commit::recover`] hands every record still in the log to [`Redo::replay`] over it, in
//! order, then commits durably and empties the log. A record must hold the values its group
//! left in the rows it touched, not operations, so one already in the checkpoint is applied
//! again harmlessly and the last record to touch a row decides it. A record is written before
//! redb's commit makes the group visible to readers, so no reader ever sees a write the log
//! could lose.
//!
//! Why: redb's durable commit rewrites and syncs every page the group touched (~15–20
//! scattered pages for an orchestrator's job submission, 4–5 for a compute node's report); on
//! this project's virtual disks an fdatasync of 20 scattered pages costs ~5× one sequential
//! append.

use crate::log::Log;
use crate::{Commit, DurableError};
use redb::{Database, Durability, WriteTransaction};
use std::path::{Path, PathBuf};

/// Groups committed through the log before one is committed durably to redb.
pub const CHECKPOINT_GROUPS: usize = 1024;
/// Log size after which the next group is committed durably to redb.
pub const CHECKPOINT_BYTES: u64 = 32 << 20;

/// What a store writes to its redo log and how it applies it again.
pub trait Redo: Send + 'static {
    /// Forgets what the writes of a group noted: called before each group and after one was
    /// aborted.
    fn forget(&mut self);
    /// The record of what the group in `txn` wrote (each touched row's value after it), or
    /// `None` when it wrote nothing.
    fn record(&mut self, txn: &WriteTransaction) -> Result<Option<Vec<u8>>, DurableError>;
    /// Writes what `record` holds into `txn` (at open, over redb's last durable commit).
    fn replay(&self, txn: &WriteTransaction, record: &[u8]) -> Result<(), DurableError>;
}

/// The redo log beside the store file at `store` (`<file>-log`).
pub fn log_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-log");
    PathBuf::from(name)
}

/// The [`Commit`] hook of a store kept with a redo log.
pub struct LoggedCommit<R> {
    redo: R,
    path: PathBuf,
    /// Opened by [`Commit::recover`], once redb holds its file lock: a second process started
    /// on the same store fails at redb's lock and never reads (or cuts) a live log.
    log: Option<Log>,
    /// Groups committed through the log since the last checkpoint.
    since_checkpoint: usize,
}

impl<R: Redo> LoggedCommit<R> {
    /// The hook for the store file at `store`, with its log at [`log_path`].
    pub fn new(store: &Path, redo: R) -> Self {
        Self {
            redo,
            path: log_path(store),
            log: None,
            since_checkpoint: 0,
        }
    }

    fn log(&mut self) -> Result<&mut Log, DurableError> {
        self.log
            .as_mut()
            .ok_or_else(|| DurableError::Db("the store's redo log is not open".into()))
    }

    /// Empties the log once everything in it is durable in redb. A failure leaves records
    /// that are applied again, harmlessly, at the next open.
    fn checkpointed(&mut self) {
        self.since_checkpoint = 0;
        let Some(log) = self.log.as_mut() else {
            return;
        };
        if let Err(e) = log.clear() {
            tracing::warn!(error = %e, "cannot empty the store's redo log; its records are applied again at the next start");
        }
    }
}

fn db_error(e: impl std::fmt::Display) -> DurableError {
    DurableError::Db(e.to_string())
}

impl<R: Redo> Commit for LoggedCommit<R> {
    fn begin(&mut self) -> Result<(), DurableError> {
        self.redo.forget();
        Ok(())
    }

    fn commit(&mut self, mut txn: WriteTransaction) -> Result<(), DurableError> {
        // A checkpoint is due: this group is committed with redb's own durability, which also
        // makes every group committed since the last one durable in the file, and then the
        // log can go.
        let checkpoint =
            self.since_checkpoint >= CHECKPOINT_GROUPS || self.log()?.len() >= CHECKPOINT_BYTES;
        // `None`: nothing written (every write of the group failed its checks, or only what
        // need not survive a crash), so nothing to log.
        let record = match self.redo.record(&txn) {
            Ok(record) => record,
            Err(e) => {
                txn.abort()?;
                return Err(e);
            }
        };
        // Logged even when a checkpoint follows: a crash after redb's commit but before the
        // log is emptied applies every record again over the checkpoint, and only a log that
        // ends with this group's record gives back exactly what the checkpoint holds.
        if let Some(record) = &record
            && let Err(e) = self.log()?.append(record)
        {
            txn.abort()?;
            return Err(db_error(e));
        }
        // The record is on disk: from here the group survives a crash, through the log.
        let durability = if checkpoint {
            Durability::Immediate
        } else {
            Durability::None
        };
        let committed = txn
            .set_durability(durability)
            .map_err(db_error)
            .and_then(|()| txn.commit().map_err(DurableError::from));
        if let Err(e) = committed {
            // Its callers are told it failed: it must not come back at the next start.
            if record.is_some()
                && let Err(forgotten) = self.log()?.forget_last()
            {
                tracing::error!(error = %forgotten, "cannot take back the redo log's record of a failed commit; it will be applied at the next start");
            }
            return Err(e);
        }
        if checkpoint {
            self.checkpointed();
        } else if record.is_some() {
            self.since_checkpoint += 1;
        }
        Ok(())
    }

    fn aborted(&mut self) {
        self.redo.forget();
    }

    fn recover(&mut self, db: &Database) -> Result<(), DurableError> {
        let (log, found) = Log::open(&self.path).map_err(db_error)?;
        self.log = Some(log);
        if found.is_empty() {
            return Ok(());
        }
        let txn = db.begin_write()?;
        for (n, record) in found.iter().enumerate() {
            self.redo.replay(&txn, record).map_err(|e| {
                DurableError::Db(format!(
                    "cannot apply record {} of {} in the store's redo log {}: {e}",
                    n + 1,
                    found.len(),
                    self.path.display()
                ))
            })?;
        }
        txn.commit()?;
        tracing::info!(
            groups = found.len(),
            log = %self.path.display(),
            "applied the store's redo log after an unclean stop"
        );
        self.checkpointed();
        Ok(())
    }

    fn close(&mut self, db: &Database) -> Result<(), DurableError> {
        if self.log.as_ref().is_none_or(Log::is_empty) {
            return Ok(());
        }
        // An empty durable commit writes out every group committed since the checkpoint.
        db.begin_write()?.commit()?;
        self.checkpointed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durable;
    use redb::{ReadableTable as _, TableDefinition};
    use std::sync::{Arc, Mutex};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    /// The keys the group in progress wrote.
    type Written = Arc<Mutex<Vec<u64>>>;

    /// Records are the keys each group wrote, with their values after it (8 bytes each).
    struct Keys(Written);

    impl Redo for Keys {
        fn forget(&mut self) {
            self.0.lock().unwrap().clear();
        }
        fn record(&mut self, txn: &WriteTransaction) -> Result<Option<Vec<u8>>, DurableError> {
            let keys = std::mem::take(&mut *self.0.lock().unwrap());
            if keys.is_empty() {
                return Ok(None);
            }
            let table = txn.open_table(T)?;
            let mut record = Vec::new();
            for key in keys {
                let value = table.get(key)?.map_or(0, |v| v.value());
                record.extend_from_slice(&key.to_le_bytes());
                record.extend_from_slice(&value.to_le_bytes());
            }
            Ok(Some(record))
        }
        fn replay(&self, txn: &WriteTransaction, record: &[u8]) -> Result<(), DurableError> {
            if !record.len().is_multiple_of(16) {
                return Err(DurableError::Db(format!("{} bytes", record.len())));
            }
            let mut table = txn.open_table(T)?;
            for pair in record.chunks_exact(16) {
                let number = |at: usize| {
                    let mut bytes = [0; 8];
                    bytes.copy_from_slice(&pair[at..at + 8]);
                    u64::from_le_bytes(bytes)
                };
                table.insert(number(0), number(8))?;
            }
            Ok(())
        }
    }

    fn open(path: &Path) -> Result<(Durable, Written), DurableError> {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let commit = LoggedCommit::new(path, Keys(Arc::clone(&keys)));
        let durable = Durable::open_with(path, "w", |txn| txn.open_table(T).map(|_| ()), commit)?;
        Ok((durable, keys))
    }

    async fn put(durable: &Durable, keys: &Written, key: u64, value: u64) {
        let keys = Arc::clone(keys);
        durable
            .write(move |txn| {
                txn.open_table(T)?.insert(key, value)?;
                keys.lock().unwrap().push(key);
                Ok::<_, DurableError>(())
            })
            .await
            .unwrap();
    }

    fn logged(path: &Path) -> usize {
        Log::records(&log_path(path)).unwrap().len()
    }

    /// Every [`CHECKPOINT_GROUPS`] groups one is committed to redb durably and the log
    /// emptied, so the log stays short however long the store runs.
    #[tokio::test]
    async fn the_log_is_emptied_at_each_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let (durable, keys) = open(&path).unwrap();
        for key in 0..CHECKPOINT_GROUPS as u64 {
            put(&durable, &keys, key, key + 1).await;
        }
        assert_eq!(logged(&path), CHECKPOINT_GROUPS);
        put(&durable, &keys, u64::MAX, 1).await;
        assert_eq!(logged(&path), 0, "the checkpoint emptied the log");
        put(&durable, &keys, 0, 7).await;
        assert_eq!(logged(&path), 1, "logging goes on after the checkpoint");
        // A store rebuilt from the log alone holds just what came after the checkpoint.
        let rebuilt = dir.path().join("rebuilt.redb");
        std::fs::copy(log_path(&path), log_path(&rebuilt)).unwrap();
        let (rebuilt, _) = open(&rebuilt).unwrap();
        let read = rebuilt.read().unwrap();
        let table = read.open_table(T).unwrap();
        assert_eq!(table.iter().unwrap().count(), 1);
        assert_eq!(table.get(0).unwrap().unwrap().value(), 7);
    }

    /// A crash after a checkpoint's durable commit but before its log was emptied leaves the
    /// records of every group since the last checkpoint, which are applied again over it at
    /// the next open. The checkpoint's own group is logged too, so that gives back exactly
    /// what the checkpoint holds, not the older values of the rows it rewrote. The crash is
    /// made by hand: emptying the log zeroes its first header and nothing else, so putting
    /// that header back gives the log as it was just before.
    #[tokio::test]
    async fn a_crash_before_the_log_is_emptied_gives_back_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let (durable, keys) = open(&path).unwrap();
        for n in 0..CHECKPOINT_GROUPS as u64 {
            put(&durable, &keys, 0, n).await;
        }
        let before = std::fs::read(log_path(&path)).unwrap();
        put(&durable, &keys, 0, 999).await;
        assert_eq!(logged(&path), 0, "the checkpoint emptied the log");
        drop(durable);
        let mut after = std::fs::read(log_path(&path)).unwrap();
        after[..16].copy_from_slice(&before[..16]);
        std::fs::write(log_path(&path), &after).unwrap();
        assert_eq!(logged(&path), CHECKPOINT_GROUPS + 1);
        let (durable, _) = open(&path).unwrap();
        let read = durable.read().unwrap();
        let value = read.open_table(T).unwrap().get(0).unwrap().unwrap().value();
        assert_eq!(value, 999);
    }

    /// A record its store cannot apply stops the opening with a reason that names it, and
    /// the log is left as it was, for the version that wrote it.
    #[tokio::test]
    async fn a_record_that_cannot_be_applied_stops_the_opening_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let (mut log, found) = Log::open(&log_path(&path)).unwrap();
            assert!(found.is_empty());
            log.append(&[1, 2, 3]).unwrap();
        }
        let Err(e) = open(&path) else {
            panic!("a store with a record it cannot apply opened");
        };
        let e = e.to_string();
        assert!(e.contains("record 1 of 1") && e.contains("3 bytes"), "{e}");
        let (_, found) = Log::open(&log_path(&path)).unwrap();
        assert_eq!(found, vec![vec![1, 2, 3]]);
    }
}
