//! The state machine: the orchestrator's own store. An entry's changes are applied with
//! `store::replication::apply` in one transaction that also records the entry's log ID, so a
//! crash leaves the store and its position consistent and openraft re-applies from there.
//! Those transactions are committed without fsync: the entries are durable in the Raft log
//! already, and a crash only rolls the store back to an earlier consistent position, from
//! which the log is applied again. Building a snapshot first makes every applied entry durable
//! (an fsync'd commit), so the log is only ever purged of entries the store holds on disk.
//! Snapshots are every replicated row (`replication::dump`) with that position.

use crate::{Entry, Member, NodeId, Request, Response, TypeConfig};
use bacalhau_orchestrator::store::replication::{self, Change};
use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

/// `applied`, `membership` → JSON, in the store's own database.
const POSITION: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_position");

type Membership = StoredMembership<NodeId, Member>;

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, Member>,
    changes: Vec<Change>,
}

/// The store as Raft's state machine.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    /// Where the last snapshot built or installed is kept.
    snapshot_path: PathBuf,
}

fn sm_error(verb: ErrorVerb, e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

fn snapshot_error(verb: ErrorVerb, e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::Snapshot(None),
        verb,
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

impl StateMachine {
    /// The state machine over the store's database; snapshots go to `snapshot_path`.
    pub fn new(db: Arc<Database>, snapshot_path: PathBuf) -> Result<Self, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(POSITION)?;
        txn.commit()?;
        Ok(Self { db, snapshot_path })
    }

    fn position(&self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| sm_error(ErrorVerb::Read, e))?;
        Self::position_in(&txn)
    }

    /// The applied log ID and membership as `txn` sees them.
    fn position_in(
        txn: &redb::ReadTransaction,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let read = |e: redb::Error| sm_error(ErrorVerb::Read, e);
        let table = txn.open_table(POSITION).map_err(|e| read(e.into()))?;
        let get = |key: &str| -> Result<Option<Vec<u8>>, StorageError<NodeId>> {
            Ok(table
                .get(key)
                .map_err(|e| read(e.into()))?
                .map(|v| v.value().to_vec()))
        };
        let applied = match get("applied")? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| sm_error(ErrorVerb::Read, e))?
            }
            None => None,
        };
        let membership = match get("membership")? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| sm_error(ErrorVerb::Read, e))?
            }
            None => Membership::default(),
        };
        Ok((applied, membership))
    }

    /// Applies `entries` and records the position, all in one transaction.
    fn apply_blocking(&self, entries: Vec<Entry>) -> Result<Vec<Response>, StorageError<NodeId>> {
        let write = |e: String| sm_error(ErrorVerb::Write, e);
        let (_, mut membership) = self.position()?;
        let mut txn = self.db.begin_write().map_err(|e| write(e.to_string()))?;
        txn.set_durability(Durability::None)
            .map_err(|e| write(e.to_string()))?;
        let mut responses = Vec::with_capacity(entries.len());
        let mut last = None;
        for entry in entries {
            last = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Request { changes }) => {
                    replication::apply(&txn, &changes).map_err(|e| write(e.to_string()))?;
                }
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            responses.push(Response {});
        }
        record_position(&txn, &last, &membership).map_err(write)?;
        txn.commit().map_err(|e| write(e.to_string()))?;
        Ok(responses)
    }

    fn build_blocking(&self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let read = |e: String| snapshot_error(ErrorVerb::Read, e);
        // Everything applied so far reaches the disk before the log can be purged of it.
        let flush = self.db.begin_write().map_err(|e| read(e.to_string()))?;
        flush.commit().map_err(|e| read(e.to_string()))?;
        // One read transaction: the rows and the position agree.
        let txn = self.db.begin_read().map_err(|e| read(e.to_string()))?;
        let changes = replication::dump(&txn).map_err(|e| read(e.to_string()))?;
        let (applied, membership) = Self::position_in(&txn)?;
        drop(txn);
        let snapshot_id = applied
            .map(|id| format!("{}-{}", id.leader_id, id.index))
            .unwrap_or_else(|| "empty".to_string());
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id,
        };
        let file = SnapshotFile { meta, changes };
        let bytes = serde_json::to_vec(&file).map_err(|e| read(e.to_string()))?;
        self.keep(&bytes)?;
        Ok(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }

    /// Writes a snapshot's bytes to the snapshot file (through a rename: never half written).
    fn keep(&self, bytes: &[u8]) -> Result<(), StorageError<NodeId>> {
        let write = |e: std::io::Error| snapshot_error(ErrorVerb::Write, e);
        let partial = self.snapshot_path.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(write)?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(write)?;
        std::fs::rename(&partial, &self.snapshot_path).map_err(write)
    }

    fn install_blocking(
        &self,
        meta: &SnapshotMeta<NodeId, Member>,
        bytes: Vec<u8>,
    ) -> Result<(), StorageError<NodeId>> {
        let write = |e: String| snapshot_error(ErrorVerb::Write, e);
        let file: SnapshotFile =
            serde_json::from_slice(&bytes).map_err(|e| write(e.to_string()))?;
        let txn = self.db.begin_write().map_err(|e| write(e.to_string()))?;
        replication::clear(&txn).map_err(|e| write(e.to_string()))?;
        replication::apply(&txn, &file.changes).map_err(|e| write(e.to_string()))?;
        record_position(&txn, &meta.last_log_id, &meta.last_membership).map_err(write)?;
        txn.commit().map_err(|e| write(e.to_string()))?;
        self.keep(&bytes)
    }
}

/// Records the last applied log ID and the membership in `txn`, beside the changes they cover.
fn record_position(
    txn: &redb::WriteTransaction,
    applied: &Option<LogId<NodeId>>,
    membership: &Membership,
) -> Result<(), String> {
    let mut table = txn.open_table(POSITION).map_err(|e| e.to_string())?;
    for (key, value) in [
        ("applied", serde_json::to_vec(applied)),
        ("membership", serde_json::to_vec(membership)),
    ] {
        let bytes = value.map_err(|e| e.to_string())?;
        table
            .insert(key, bytes.as_slice())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs blocking store work off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError<NodeId>> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| sm_error(ErrorVerb::Write, e))?
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let sm = self.clone();
        blocking(move || sm.build_blocking()).await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        self.position()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let sm = self.clone();
        blocking(move || sm.apply_blocking(entries)).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let sm = self.clone();
        let meta = meta.clone();
        let bytes = snapshot.into_inner();
        blocking(move || sm.install_blocking(&meta, bytes)).await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let bytes = match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(snapshot_error(ErrorVerb::Read, e)),
        };
        let file: SnapshotFile =
            serde_json::from_slice(&bytes).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
