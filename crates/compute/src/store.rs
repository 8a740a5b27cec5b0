//! The compute node's durable store: its executions, and the channel's outbox to the
//! orchestrator and sequence numbers (`bacalhau_channel::store`, laid out as the
//! orchestrator's), in redb. Every state change is one write, and writes made at the same time
//! share a commit (`bacalhau-durable`'s group commit).

use bacalhau_channel::store::{self as channel, ChannelTxn, ORCHESTRATOR};
use bacalhau_durable::{Durable, DurableError};
use bacalhau_models::{Execution, ExecutionStateType};
use bacalhau_protocol::Message;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::path::Path;

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

/// The node's store.
#[derive(Clone)]
pub struct NodeStore {
    durable: Durable,
}

impl NodeStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let durable = Durable::open(path, "compute-store", |txn| {
            txn.open_table(EXECUTIONS)?;
            txn.open_table(STATES)?;
            migrate_channel_tables(txn)?;
            channel::create_tables(txn)?;
            Ok::<(), StoreError>(())
        })?;
        Ok(Self { durable })
    }

    /// Runs `f` in a durable write, sharing a commit with writes made at the same time.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut NodeTxn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.durable.write(move |txn| f(&mut NodeTxn { txn })).await
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
        self.write(move |t| channel::apply(t, ORCHESTRATOR, seq, f))
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
        Ok(())
    }

    /// Queues a message for the orchestrator; returns its sequence number.
    pub fn enqueue(&mut self, message: &Message) -> Result<u64, StoreError> {
        Ok(channel::enqueue(self.txn, ORCHESTRATOR, message)?)
    }

    /// Drops outgoing messages up to `seq`, which the orchestrator applied.
    pub fn trim(&mut self, seq: u64) -> Result<(), StoreError> {
        Ok(channel::acknowledged(self.txn, ORCHESTRATOR, seq)?)
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
