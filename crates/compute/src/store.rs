//! The compute node's durable store: its executions, and the channel's outbox to the
//! orchestrator and sequence numbers (`bacalhau_channel::store`, laid out as the
//! orchestrator's), in redb. Every state change is one write, and writes made at the same time
//! share a commit (`bacalhau-durable`'s group commit), made durable by a record in the redo
//! log beside the file (`bacalhau_durable::redo`; see [`NodeRedo`]).

use bacalhau_channel::store::{self as channel, ChannelTxn, ORCHESTRATOR, Readable as _};
use bacalhau_durable::redo::{LoggedCommit, Redo};
use bacalhau_durable::{Durable, DurableError};
use bacalhau_models::{Execution, ExecutionStateType};
use bacalhau_protocol::Message;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use bacalhau_channel::store::Applied;

/// Execution ID → the execution with its job, written once: jobs can be large (inline data).
const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// Execution ID → its state on this node, rewritten on every change.
const STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("execution_states");

/// What can go wrong in the node's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("compute store I/O: {0}")]
    Db(String),
    /// A record could not be decoded.
    #[error("corrupt record in the compute store: {0}")]
    Corrupt(String),
    /// The channel's tables failed.
    #[error(transparent)]
    Channel(#[from] channel::StoreError),
}

macro_rules! db_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )+};
}
db_errors!(redb::StorageError, redb::TableError, DurableError);

/// An execution as this node knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalExecution {
    /// The execution with its job.
    pub execution: Execution,
    /// Its state on this node.
    pub state: ExecutionStateType,
    /// Why it is in that state.
    pub message: String,
}

/// An execution's state on this node, stored apart from the (possibly large) execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StateRecord {
    state: ExecutionStateType,
    message: String,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Db(e.to_string()))
}

/// Joins an execution with its state record.
fn join(
    executions: &impl ReadableTable<&'static str, &'static [u8]>,
    states: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<LocalExecution>, StoreError> {
    let Some(execution) = executions.get(id)? else {
        return Ok(None);
    };
    let execution: Execution = decode(execution.value())?;
    let record: StateRecord = match states.get(id)? {
        Some(bytes) => decode(bytes.value())?,
        None => return Ok(None),
    };
    Ok(Some(LocalExecution {
        execution,
        state: record.state,
        message: record.message,
    }))
}

/// A row of the node's store, by its key: what a write touched, for the redo log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Row {
    /// `executions`: execution ID.
    Execution(String),
    /// `execution_states`: execution ID.
    State(String),
    /// The channel's `outbox` to the orchestrator: sequence number.
    Outbox(u64),
    /// The channel's `sequences` with the orchestrator: direction.
    Sequence(String),
}

/// A row's value after a group (`None`: removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Value {
    /// A record (executions, states, messages).
    Bytes(Vec<u8>),
    /// A sequence number.
    Number(u64),
}

/// The rows touched by the writes of the group in progress.
type Journal = Arc<Mutex<BTreeSet<Row>>>;

fn lock(journal: &Journal) -> MutexGuard<'_, BTreeSet<Row>> {
    // A write that panicked poisons the lock; its group is aborted and forgotten.
    journal.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first byte of a record in the current layout: the changes, in postcard (which does not
/// describe itself, so a later layout must take another byte rather than be misread).
const RECORD_LAYOUT: u8 = 1;

/// The node's [`Redo`]: a record is the touched rows with their values after the group, in
/// postcard after [`RECORD_LAYOUT`]. Why a log: a report's commit touches 4–5 scattered pages,
/// and redb syncs every one; the record is one write into blocks already written.
struct NodeRedo {
    journal: Journal,
}

fn redo_error(e: impl std::fmt::Display) -> DurableError {
    DurableError::Db(e.to_string())
}

impl NodeRedo {
    fn read(txn: &WriteTransaction, row: &Row) -> Result<Option<Value>, StoreError> {
        let bytes = |v: redb::AccessGuard<'_, &[u8]>| Value::Bytes(v.value().to_vec());
        Ok(match row {
            Row::Execution(id) => txn.open_table(EXECUTIONS)?.get(id.as_str())?.map(bytes),
            Row::State(id) => txn.open_table(STATES)?.get(id.as_str())?.map(bytes),
            Row::Outbox(seq) => txn.outbox()?.get((ORCHESTRATOR, *seq))?.map(bytes),
            Row::Sequence(direction) => txn
                .sequences()?
                .get((direction.as_str(), ORCHESTRATOR))?
                .map(|v| Value::Number(v.value())),
        })
    }

    fn write(txn: &WriteTransaction, row: &Row, value: Option<&Value>) -> Result<(), StoreError> {
        let corrupt = || StoreError::Corrupt(format!("a redo record gives {row:?} {value:?}"));
        match (row, value) {
            (Row::Execution(id), Some(Value::Bytes(v))) => {
                txn.open_table(EXECUTIONS)?
                    .insert(id.as_str(), v.as_slice())?;
            }
            (Row::Execution(id), None) => {
                txn.open_table(EXECUTIONS)?.remove(id.as_str())?;
            }
            (Row::State(id), Some(Value::Bytes(v))) => {
                txn.open_table(STATES)?.insert(id.as_str(), v.as_slice())?;
            }
            (Row::State(id), None) => {
                txn.open_table(STATES)?.remove(id.as_str())?;
            }
            (Row::Outbox(seq), Some(Value::Bytes(v))) => {
                txn.outbox()?.insert((ORCHESTRATOR, *seq), v.as_slice())?;
            }
            (Row::Outbox(seq), None) => {
                txn.outbox()?.remove((ORCHESTRATOR, *seq))?;
            }
            (Row::Sequence(direction), Some(Value::Number(n))) => {
                txn.sequences()?
                    .insert((direction.as_str(), ORCHESTRATOR), *n)?;
            }
            (Row::Sequence(direction), None) => {
                txn.sequences()?
                    .remove((direction.as_str(), ORCHESTRATOR))?;
            }
            _ => return Err(corrupt()),
        }
        Ok(())
    }
}

impl Redo for NodeRedo {
    fn forget(&mut self) {
        lock(&self.journal).clear();
    }

    fn record(&mut self, txn: &WriteTransaction) -> Result<Option<Vec<u8>>, DurableError> {
        let rows = std::mem::take(&mut *lock(&self.journal));
        if rows.is_empty() {
            return Ok(None);
        }
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let value = Self::read(txn, &row).map_err(redo_error)?;
            changes.push((row, value));
        }
        postcard::to_extend(&changes, vec![RECORD_LAYOUT])
            .map(Some)
            .map_err(redo_error)
    }

    fn replay(&self, txn: &WriteTransaction, record: &[u8]) -> Result<(), DurableError> {
        let changes: Vec<(Row, Option<Value>)> = match record.split_first() {
            Some((&RECORD_LAYOUT, changes)) => postcard::from_bytes(changes).map_err(redo_error)?,
            other => {
                return Err(DurableError::Db(format!(
                    "a record of an unknown layout ({:?}; this version reads {RECORD_LAYOUT}): start the version that wrote it once to apply it",
                    other.map(|(layout, _)| layout)
                )));
            }
        };
        for (row, value) in &changes {
            Self::write(txn, row, value.as_ref()).map_err(redo_error)?;
        }
        Ok(())
    }
}

/// The node's store.
#[derive(Clone)]
pub struct NodeStore {
    durable: Durable,
    journal: Journal,
}

impl NodeStore {
    /// Opens or creates the store at `path`, applying what its redo log holds from an unclean
    /// stop.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let journal = Journal::default();
        let redo = NodeRedo {
            journal: Arc::clone(&journal),
        };
        let durable = Durable::open_with(
            path,
            "compute-store",
            |txn| {
                txn.open_table(EXECUTIONS)?;
                txn.open_table(STATES)?;
                migrate_channel_tables(txn)?;
                channel::create_tables(txn)?;
                Ok::<(), StoreError>(())
            },
            LoggedCommit::new(path, redo),
        )?;
        Ok(Self { durable, journal })
    }

    /// Runs `f` in a durable write, sharing a commit with writes made at the same time.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut NodeTxn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let journal = Arc::clone(&self.journal);
        self.durable
            .write(move |txn| {
                let mut touched = lock(&journal);
                f(&mut NodeTxn {
                    txn,
                    touched: &mut touched,
                })
            })
            .await
    }

    /// Applies the orchestrator's message number `seq` with `f`, in one durable transaction
    /// with the sequence number that records it ([`bacalhau_channel::store::apply`]): a replay
    /// and a message after a gap are not handed to `f`. The only way to record a message as
    /// applied, so no handler can forget the check.
    pub async fn apply<T, F>(&self, seq: u64, f: F) -> Result<Applied<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut NodeTxn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(move |t| {
            t.touched.insert(Row::Sequence(channel::IN.into()));
            channel::apply(t, ORCHESTRATOR, seq, f)
        })
        .await
    }

    /// The last orchestrator → node sequence applied.
    pub fn applied_in(&self) -> Result<u64, StoreError> {
        Ok(channel::applied(&self.durable.read()?, ORCHESTRATOR)?)
    }

    /// Outgoing messages above `after`, oldest first, at most `limit`.
    pub fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Message)>, StoreError> {
        Ok(channel::outbox_after(
            &self.durable.read()?,
            ORCHESTRATOR,
            after,
            limit,
        )?)
    }

    /// One execution this node knows.
    pub fn execution(&self, id: &str) -> Result<Option<LocalExecution>, StoreError> {
        let txn = self.durable.read()?;
        join(&txn.open_table(EXECUTIONS)?, &txn.open_table(STATES)?, id)
    }

    /// An execution's state alone: cheap, for frequent checks.
    pub fn state(&self, id: &str) -> Result<Option<ExecutionStateType>, StoreError> {
        let txn = self.durable.read()?;
        let states = txn.open_table(STATES)?;
        let found = states.get(id)?;
        Ok(found
            .map(|bytes| decode::<StateRecord>(bytes.value()))
            .transpose()?
            .map(|r| r.state))
    }

    /// Every execution this node knows.
    pub fn executions(&self) -> Result<Vec<LocalExecution>, StoreError> {
        let txn = self.durable.read()?;
        let executions = txn.open_table(EXECUTIONS)?;
        let states = txn.open_table(STATES)?;
        let mut found = Vec::new();
        for entry in executions.iter()? {
            let (key, _) = entry?;
            if let Some(local) = join(&executions, &states, key.value())? {
                found.push(local);
            }
        }
        Ok(found)
    }
}

/// The operations of one write transaction.
pub struct NodeTxn<'t> {
    txn: &'t WriteTransaction,
    /// Every row written, noted for the redo log.
    touched: &'t mut BTreeSet<Row>,
}

impl NodeTxn<'_> {
    /// An execution by ID.
    pub fn execution(&self, id: &str) -> Result<Option<LocalExecution>, StoreError> {
        join(
            &self.txn.open_table(EXECUTIONS)?,
            &self.txn.open_table(STATES)?,
            id,
        )
    }

    /// An execution's state and message alone.
    pub fn state(&self, id: &str) -> Result<Option<(ExecutionStateType, String)>, StoreError> {
        let states = self.txn.open_table(STATES)?;
        let found = states.get(id)?;
        Ok(found
            .map(|bytes| decode::<StateRecord>(bytes.value()))
            .transpose()?
            .map(|r| (r.state, r.message)))
    }

    /// Stores an execution and its state.
    pub fn put_execution(&mut self, local: &LocalExecution) -> Result<(), StoreError> {
        let id = local.execution.id.as_str();
        self.txn
            .open_table(EXECUTIONS)?
            .insert(id, encode(&local.execution)?.as_slice())?;
        self.touched.insert(Row::Execution(id.to_string()));
        self.put_state(id, local.state, &local.message)
    }

    /// Records an execution's new state without rewriting the execution.
    pub fn put_state(
        &mut self,
        id: &str,
        state: ExecutionStateType,
        message: &str,
    ) -> Result<(), StoreError> {
        let record = StateRecord {
            state,
            message: message.to_string(),
        };
        self.txn
            .open_table(STATES)?
            .insert(id, encode(&record)?.as_slice())?;
        self.touched.insert(Row::State(id.to_string()));
        Ok(())
    }

    /// Queues a message for the orchestrator; returns its sequence number.
    pub fn enqueue(&mut self, message: &Message) -> Result<u64, StoreError> {
        let seq = channel::enqueue(self.txn, ORCHESTRATOR, message)?;
        self.touched.insert(Row::Sequence(channel::OUT.into()));
        self.touched.insert(Row::Outbox(seq));
        Ok(seq)
    }

    /// Drops outgoing messages up to `seq`, which the orchestrator applied. Not noted for the
    /// redo log: lost in a crash, a trim costs nothing (the orchestrator applied the messages,
    /// and the next handshake resumes after them and trims again), and a group of trims alone
    /// is committed without a sync (two or so per execution).
    pub fn trim(&mut self, seq: u64) -> Result<(), StoreError> {
        channel::acknowledged(self.txn, ORCHESTRATOR, seq)?;
        Ok(())
    }

    /// The last orchestrator → node sequence applied.
    pub fn applied_in(&self) -> Result<u64, StoreError> {
        Ok(channel::applied(self.txn, ORCHESTRATOR)?)
    }
}

impl ChannelTxn for NodeTxn<'_> {
    fn channel_txn(&self) -> &WriteTransaction {
        self.txn
    }
}

/// Stores written before the channel's tables were shared kept the outbox keyed by number
/// alone and the two sequence numbers in a `meta` table; this moves them into the channel's
/// tables with their numbers unchanged (the orchestrator resumes by them). A store already in
/// the channel's layout is left alone.
fn migrate_channel_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    const OLD_OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
    const OLD_META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let waiting: Vec<(u64, Message)> = match txn.open_table(OLD_OUTBOX) {
        Ok(table) => table
            .iter()?
            .map(|entry| {
                let (seq, bytes) = entry?;
                Ok((seq.value(), decode(bytes.value())?))
            })
            .collect::<Result<_, StoreError>>()?,
        // The channel's outbox (keyed by peer and number) is already there.
        Err(redb::TableError::TableTypeMismatch { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    txn.delete_table(OLD_OUTBOX)?;
    let (queued, applied) = {
        let meta = txn.open_table(OLD_META)?;
        let number = |key: &str| -> Result<u64, StoreError> {
            Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
        };
        (number("out_seq")?, number("applied_in")?)
    };
    txn.delete_table(OLD_META)?;
    channel::create_tables(txn)?;
    channel::adopt(txn, ORCHESTRATOR, queued, applied, &waiting)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::ExecutionId;

    fn cancel(i: u64) -> Message {
        Message::CancelExecution {
            execution_id: ExecutionId::from(format!("e-{i}")),
            reason: String::new(),
        }
    }

    /// A store in the layout before the channel's tables were shared (outbox keyed by number,
    /// numbers in `meta`) opens with its waiting messages and numbers intact, so an upgraded
    /// node resumes where it stopped.
    #[tokio::test]
    async fn a_store_in_the_older_layout_keeps_its_outbox_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compute.redb");
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut outbox = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new("outbox"))
                    .unwrap();
                for seq in [6, 7] {
                    outbox
                        .insert(seq, serde_json::to_vec(&cancel(seq)).unwrap().as_slice())
                        .unwrap();
                }
                let mut meta = txn
                    .open_table(TableDefinition::<&str, u64>::new("meta"))
                    .unwrap();
                meta.insert("out_seq", 7).unwrap();
                meta.insert("applied_in", 12).unwrap();
            }
            txn.commit().unwrap();
        }
        for _ in 0..2 {
            let store = NodeStore::open(&path).unwrap();
            assert_eq!(store.applied_in().unwrap(), 12);
            assert_eq!(
                store.outbox_after(0, 10).unwrap(),
                vec![(6, cancel(6)), (7, cancel(7))]
            );
        }
        let store = NodeStore::open(&path).unwrap();
        let next = store.write(|t| t.enqueue(&cancel(8))).await.unwrap();
        assert_eq!(next, 8, "numbering goes on after the migrated messages");
        assert_eq!(store.apply(12, |_| Ok(())).await.unwrap(), Applied::Replay);
    }

    /// Every row of the store, table by table, as the redo log names them.
    fn dump(store: &NodeStore) -> Vec<(Row, Option<Value>)> {
        let txn = store.durable.read().unwrap();
        let mut rows = Vec::new();
        for (table, row) in [
            (EXECUTIONS, Row::Execution as fn(String) -> Row),
            (STATES, Row::State),
        ] {
            for entry in txn.open_table(table).unwrap().iter().unwrap() {
                let (key, value) = entry.unwrap();
                rows.push((
                    row(key.value().to_string()),
                    Some(Value::Bytes(value.value().to_vec())),
                ));
            }
        }
        for entry in txn.outbox().unwrap().iter().unwrap() {
            let (key, value) = entry.unwrap();
            rows.push((
                Row::Outbox(key.value().1),
                Some(Value::Bytes(value.value().to_vec())),
            ));
        }
        for entry in txn.sequences().unwrap().iter().unwrap() {
            let (key, value) = entry.unwrap();
            rows.push((
                Row::Sequence(key.value().0.to_string()),
                Some(Value::Number(value.value())),
            ));
        }
        rows
    }

    #[test]
    fn a_record_of_an_unknown_layout_is_refused_with_a_reason() {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap();
        let txn = db.begin_write().unwrap();
        let redo = NodeRedo {
            journal: Journal::default(),
        };
        let e = redo.replay(&txn, &[9, 0]).unwrap_err().to_string();
        assert!(e.contains("unknown layout (Some(9)"), "{e}");
        assert!(redo.replay(&txn, &[]).is_err());
    }

    /// The redo log holds every write: a store rebuilt from nothing but the log (as after a
    /// crash that left only the log's records) holds exactly what the original does, and a
    /// clean close leaves the log empty with every write in the file.
    #[tokio::test]
    async fn a_store_rebuilt_from_its_redo_log_holds_what_the_original_does() {
        let dir = tempfile::tempdir().unwrap();
        let original_path = dir.path().join("original.redb");
        let original = NodeStore::open(&original_path).unwrap();
        let local = |id: &str, state| LocalExecution {
            execution: Execution {
                id: ExecutionId::from(id),
                ..Execution::default()
            },
            state,
            message: format!("{id} is {state:?}"),
        };
        original
            .write(move |t| {
                t.put_execution(&local("e-1", ExecutionStateType::BidAccepted))?;
                t.put_execution(&local("e-2", ExecutionStateType::Running))?;
                for i in 0..4 {
                    t.enqueue(&cancel(i))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        original
            .apply(1, |t| {
                t.put_state("e-2", ExecutionStateType::Completed, "done")?;
                t.trim(2)
            })
            .await
            .unwrap();
        let log_path = bacalhau_durable::redo::log_path;
        let rebuilt_path = dir.path().join("rebuilt.redb");
        // Copied while the original is open: its records are there, no checkpoint yet.
        std::fs::copy(log_path(&original_path), log_path(&rebuilt_path)).unwrap();
        let rebuilt = NodeStore::open(&rebuilt_path).unwrap();
        let expected = dump(&original);
        assert_eq!(expected.len(), 8, "{expected:?}");
        // A trim is not logged: the rebuilt store has the trimmed messages back, as a node
        // restarted after a crash may, and trims them again at its next handshake.
        assert_eq!(rebuilt.outbox_after(0, 10).unwrap().len(), 4);
        rebuilt.write(|t| t.trim(2)).await.unwrap();
        assert_eq!(dump(&rebuilt), expected);
        assert_eq!(rebuilt.outbox_after(0, 10).unwrap().len(), 2);
        assert_eq!(
            rebuilt.state("e-2").unwrap(),
            Some(ExecutionStateType::Completed)
        );
        let logged = |path| bacalhau_durable::log::Log::records(&log_path(path)).unwrap();
        assert!(
            logged(&rebuilt_path).is_empty(),
            "applied once, the log is emptied, and the trim was not logged"
        );
        drop(original);
        assert!(
            logged(&original_path).is_empty(),
            "a clean close empties the log"
        );
        assert_eq!(dump(&NodeStore::open(&original_path).unwrap()), expected);
    }

    #[tokio::test]
    async fn outbox_survives_reopen_and_trims_on_ack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compute.redb");
        {
            let store = NodeStore::open(&path).unwrap();
            store
                .write(|t| {
                    for i in 0..3 {
                        t.enqueue(&cancel(i))?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
            store.apply(1, |_| Ok(())).await.unwrap();
        }
        let store = NodeStore::open(&path).unwrap();
        assert_eq!(store.applied_in().unwrap(), 1);
        assert_eq!(store.outbox_after(0, 10).unwrap().len(), 3);
        store.write(|t| t.trim(2)).await.unwrap();
        let left = store.outbox_after(0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, 3);
    }

    #[tokio::test]
    async fn a_replayed_message_is_skipped_without_running_its_handler() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("compute.redb")).unwrap();
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        for seq in [1, 2, 2, 1, 3, 3, 5] {
            let ran = std::sync::Arc::clone(&ran);
            let applied = store
                .apply(seq, move |_| {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(seq)
                })
                .await
                .unwrap();
            match applied {
                Applied::Done(done) => assert_eq!(done, seq),
                Applied::Replay => assert!(seq <= 3),
                // 4 never came: 5 is not applied.
                Applied::Missing { expected } => assert_eq!((seq, expected), (5, 4)),
            }
        }
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "1, 2, 3 once each"
        );
        assert_eq!(store.applied_in().unwrap(), 3);
        // A handler that fails records nothing: the message is applied when it comes again.
        let failed = store
            .apply(4, |_| Err::<(), _>(StoreError::Db("refused".into())))
            .await;
        assert!(failed.is_err());
        assert_eq!(store.applied_in().unwrap(), 3);
        assert_eq!(store.apply(4, |_| Ok(())).await.unwrap(), Applied::Done(()));
    }
}
