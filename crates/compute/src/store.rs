//! The compute node's durable store: its executions, its outbox to the orchestrator and the
//! sequence numbers of both directions, in redb. Every state change is one write, and writes
//! made at the same time share a commit (`bacalhau-durable`'s group commit).

use bacalhau_channel::reliable::{Delivery, delivery};
use bacalhau_durable::{Durable, DurableError};
use bacalhau_models::{Execution, ExecutionStateType};
use bacalhau_protocol::Message;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Execution ID → the execution with its job, written once: jobs can be large (inline data).
const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// Execution ID → its state on this node, rewritten on every change.
const STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("execution_states");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last sequence number given to an outgoing message.
const OUT_SEQ: &str = "out_seq";
/// The last orchestrator → node sequence number applied.
const APPLIED_IN: &str = "applied_in";

/// What can go wrong in the node's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("compute store I/O: {0}")]
    Db(String),
    /// A record could not be decoded.
    #[error("corrupt record in the compute store: {0}")]
    Corrupt(String),
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

/// What [`NodeStore::apply`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// Applied; the handler's result.
    Done(T),
    /// Applied before: nothing changed.
    Replay,
    /// An earlier message is missing: nothing applied; the connection should be dropped so the
    /// handshake resumes from the last applied one.
    Missing {
        /// The message that should have come.
        expected: u64,
    },
}

impl<T> Applied<T> {
    /// The message that should have come first, when one is missing.
    pub fn missing(&self) -> Option<u64> {
        match self {
            Applied::Missing { expected } => Some(*expected),
            _ => None,
        }
    }

    /// The handler's result, if it ran.
    pub fn done(self) -> Option<T> {
        match self {
            Applied::Done(value) => Some(value),
            _ => None,
        }
    }
}

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
            txn.open_table(OUTBOX)?;
            txn.open_table(META)?;
            Ok(())
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
    /// with the sequence number, following the channel's rules
    /// (`bacalhau_channel::reliable::delivery`): a message at or below the last one applied (a
    /// replay after a reconnect) is skipped without running `f`, one that leaves a gap is not
    /// applied either. The only way to record a message as applied, so no handler can forget
    /// the check.
    pub async fn apply<T, F>(&self, seq: u64, f: F) -> Result<Applied<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut NodeTxn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(move |t| match delivery(t.applied_in()?, seq) {
            Delivery::Replay => Ok(Applied::Replay),
            Delivery::Gap { expected } => Ok(Applied::Missing { expected }),
            Delivery::Apply => {
                let applied = f(t)?;
                t.set_applied_in(seq)?;
                Ok(Applied::Done(applied))
            }
        })
        .await
    }

    /// The last orchestrator → node sequence applied.
    pub fn applied_in(&self) -> Result<u64, StoreError> {
        let txn = self.durable.read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(APPLIED_IN)?.map(|v| v.value()).unwrap_or(0))
    }

    /// Outgoing messages above `after`, oldest first, at most `limit`.
    pub fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Message)>, StoreError> {
        let txn = self.durable.read()?;
        let table = txn.open_table(OUTBOX)?;
        let mut messages = Vec::new();
        for entry in table.range(after.saturating_add(1)..)?.take(limit) {
            let (key, value) = entry?;
            let message = serde_json::from_slice(value.value())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            messages.push((key.value(), message));
        }
        Ok(messages)
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
        let mut meta = self.txn.open_table(META)?;
        let seq = meta.get(OUT_SEQ)?.map(|v| v.value()).unwrap_or(0) + 1;
        meta.insert(OUT_SEQ, seq)?;
        let bytes = serde_json::to_vec(message).map_err(|e| StoreError::Db(e.to_string()))?;
        self.txn.open_table(OUTBOX)?.insert(seq, bytes.as_slice())?;
        Ok(seq)
    }

    /// Drops outgoing messages up to `seq`, which the orchestrator applied.
    pub fn trim(&mut self, seq: u64) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(OUTBOX)?;
        let acknowledged: Vec<u64> = table
            .range(..=seq)?
            .map(|entry| entry.map(|(key, _)| key.value()))
            .collect::<Result<_, _>>()?;
        for s in acknowledged {
            table.remove(s)?;
        }
        Ok(())
    }

    /// The last orchestrator → node sequence applied.
    pub fn applied_in(&self) -> Result<u64, StoreError> {
        let meta = self.txn.open_table(META)?;
        Ok(meta.get(APPLIED_IN)?.map(|v| v.value()).unwrap_or(0))
    }

    /// Records the last orchestrator → node sequence applied (through [`NodeStore::apply`]
    /// only).
    fn set_applied_in(&mut self, seq: u64) -> Result<(), StoreError> {
        self.txn.open_table(META)?.insert(APPLIED_IN, seq)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::ExecutionId;

    #[tokio::test]
    async fn outbox_survives_reopen_and_trims_on_ack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compute.redb");
        {
            let store = NodeStore::open(&path).unwrap();
            store
                .write(|t| {
                    for i in 0..3 {
                        t.enqueue(&Message::CancelExecution {
                            execution_id: ExecutionId::from(format!("e-{i}")),
                            reason: String::new(),
                        })?;
                    }
                    t.set_applied_in(9)
                })
                .await
                .unwrap();
        }
        let store = NodeStore::open(&path).unwrap();
        assert_eq!(store.applied_in().unwrap(), 9);
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
