//! The single orchestrator's commit hook: a group of writes is made durable by appending what
//! it changed to a redo log beside the store file (one sequential write and fdatasync), then
//! committed to redb without durability; every [`CHECKPOINT_GROUPS`] groups (or
//! [`CHECKPOINT_BYTES`] of log) one group is committed durably instead and the log emptied.
//!
//! Why nothing acknowledged is lost: a caller is answered only after its group's record is
//! on disk. After a crash, redb opens at its last durable commit (a checkpoint), and
//! [`Commit::recover`] applies every record still in the log over it, in order, then commits
//! durably and empties the log. Records hold each touched row's value after the group (the
//! [`Change`]s a cluster member applies), not operations, so a record already in the
//! checkpoint is applied again harmlessly, and the last record to touch a row decides it.
//! A record is written before redb's commit makes the group visible to readers, so no reader
//! (nor a node told of a placement) ever sees a write the log could lose.
//!
//! Why: redb's durable commit rewrites and syncs every page the group touched, ~15–20
//! scattered pages for a job's submission; on this project's virtual disks that fdatasync
//! costs 0.4–0.6 ms against ~0.1 ms for one sequential append.

use super::replication::{Change, Journal, apply, changes};
use bacalhau_durable::log::Log;
use bacalhau_durable::{Commit, DurableError};
use redb::{Database, Durability, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Groups committed through the log before one is committed durably to redb.
pub(super) const CHECKPOINT_GROUPS: usize = 1024;
/// Log size after which the next group is committed durably to redb.
pub(super) const CHECKPOINT_BYTES: u64 = 32 << 20;
/// The layout of a record; a log written by another layout is not applied.
const RECORD_FORMAT: u32 = 1;

/// One group's record.
#[derive(Serialize, Deserialize)]
struct Record {
    format: u32,
    changes: Vec<Change>,
}

/// The redo log beside the store file at `store` (`<file>-log`).
pub fn log_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-log");
    PathBuf::from(name)
}

/// The [`Commit`] hook of a single orchestrator's store.
pub(super) struct LoggedCommit {
    journal: Arc<Mutex<Journal>>,
    path: PathBuf,
    /// Opened by [`Commit::recover`], once redb holds its file lock: a second process started
    /// on the same store fails at redb's lock and never reads (or cuts) a live log.
    log: Option<Log>,
    /// Groups committed through the log since the last checkpoint.
    since_checkpoint: usize,
}

impl LoggedCommit {
    /// The hook for the store file at `store`, with its log beside it.
    pub(super) fn new(store: &Path, journal: Arc<Mutex<Journal>>) -> Self {
        Self {
            journal,
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

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
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

impl Commit for LoggedCommit {
    fn begin(&mut self) -> Result<(), DurableError> {
        self.journal().take();
        Ok(())
    }

    fn commit(&mut self, mut txn: WriteTransaction) -> Result<(), DurableError> {
        let rows = self.journal().take();
        if rows.is_empty() {
            // Nothing written (every write of the group failed its checks): nothing to log.
            txn.set_durability(Durability::None).map_err(db_error)?;
            txn.commit()?;
            return Ok(());
        }
        // A checkpoint is due: redb's own durable commit, which also makes every group
        // committed since the last one durable in the file, and then the log can go.
        if self.since_checkpoint >= CHECKPOINT_GROUPS || self.log()?.len() >= CHECKPOINT_BYTES {
            txn.commit()?;
            self.checkpointed();
            return Ok(());
        }
        let changes = changes(&txn, rows).map_err(db_error)?;
        let record = serde_json::to_vec(&Record {
            format: RECORD_FORMAT,
            changes,
        })
        .map_err(db_error)?;
        if let Err(e) = self.log()?.append(&record) {
            txn.abort()?;
            return Err(db_error(e));
        }
        // The record is on disk: from here the group survives a crash, through the log.
        let committed = txn
            .set_durability(Durability::None)
            .map_err(db_error)
            .and_then(|()| txn.commit().map_err(DurableError::from));
        if let Err(e) = committed {
            // Its callers are told it failed: it must not come back at the next start.
            if let Err(forgotten) = self.log()?.forget_last() {
                tracing::error!(error = %forgotten, "cannot take back the redo log's record of a failed commit; it will be applied at the next start");
            }
            return Err(e);
        }
        self.since_checkpoint += 1;
        Ok(())
    }

    fn aborted(&mut self) {
        self.journal().take();
    }

    fn recover(&mut self, db: &Database) -> Result<(), DurableError> {
        let (log, found) = Log::open(&self.path).map_err(db_error)?;
        self.log = Some(log);
        if found.is_empty() {
            return Ok(());
        }
        let txn = db.begin_write()?;
        for (n, bytes) in found.iter().enumerate() {
            let record: Record = serde_json::from_slice(bytes).map_err(|e| {
                DurableError::Db(format!(
                    "the store's redo log holds a record ({} of {}) that cannot be read: {e}",
                    n + 1,
                    found.len()
                ))
            })?;
            if record.format != RECORD_FORMAT {
                return Err(DurableError::Db(format!(
                    "the store's redo log was written in format {} by another version (this one reads {RECORD_FORMAT}): start that version once to apply it",
                    record.format
                )));
            }
            apply(&txn, &record.changes).map_err(db_error)?;
        }
        txn.commit()?;
        tracing::info!(
            groups = found.len(),
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
