//! Durable writes with group commit over a redb database.
//!
//! [`Durable::write`] queues a closure for the database's one writer thread, which runs every
//! closure queued while the previous commit was in flight inside a single write transaction
//! and commits once: many writers share one fsync, and each is answered only after its data
//! is durable. Readers use [`Durable::read`] snapshots and never wait for writers.
//! **Invariant:** a write closure makes all its checks before its first write, so a closure
//! that fails leaves nothing behind in the shared transaction.

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use std::path::Path;
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

/// What can go wrong with the database itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DurableError {
    /// The database failed.
    #[error("store I/O: {0}")]
    Db(String),
    /// The writer thread is gone (the store is shutting down).
    #[error("store is closed")]
    Closed,
}

macro_rules! db_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for DurableError {
            fn from(e: $t) -> Self {
                DurableError::Db(e.to_string())
            }
        }
    )+};
}
db_errors!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

type Finisher = Box<dyn FnOnce(Result<(), DurableError>) + Send>;
type WriteOp = Box<dyn FnOnce(&WriteTransaction) -> Finisher + Send>;

/// Upper bound on writes sharing one commit, so one commit's latency stays bounded.
const MAX_GROUP: usize = 512;

/// A redb database with a group-committing writer thread.
#[derive(Clone)]
pub struct Durable {
    db: Arc<Database>,
    writer: Arc<WriterHandle>,
}

/// Owns the writer thread: when the last [`Durable`] clone goes, the thread drains its queue,
/// exits and releases the database file, so it can be reopened at once.
struct WriterHandle {
    sender: Option<mpsc::SyncSender<WriteOp>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Durable {
    /// Opens (or creates) the database at `path`, runs `init` in a first transaction (to
    /// create tables), and starts the writer thread named `name`.
    pub fn open(
        path: &Path,
        name: &str,
        init: impl FnOnce(&WriteTransaction) -> Result<(), redb::TableError>,
    ) -> Result<Self, DurableError> {
        let db = Arc::new(Database::create(path)?);
        let txn = db.begin_write()?;
        init(&txn)?;
        txn.commit()?;
        let (sender, ops) = mpsc::sync_channel::<WriteOp>(4096);
        let writer_db = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run_writer(&writer_db, &ops))
            .map_err(|e| DurableError::Db(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            db,
            writer: Arc::new(WriterHandle {
                sender: Some(sender),
                thread: Some(thread),
            }),
        })
    }

    /// Runs `f` inside a write transaction shared with other concurrent writes and returns its
    /// result once the transaction is durably committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DurableError> + Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: WriteOp = Box::new(move |txn| {
            let result = f(txn);
            Box::new(move |committed: Result<(), DurableError>| {
                let outcome = match committed {
                    Ok(()) => result,
                    Err(e) => Err(E::from(e)),
                };
                let _ = reply.send(outcome);
            })
        });
        let sender = self
            .writer
            .sender
            .as_ref()
            .ok_or(E::from(DurableError::Closed))?;
        match sender.try_send(op) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(op)) => {
                // A full queue must not block the async runtime's thread.
                let sender = sender.clone();
                tokio::task::spawn_blocking(move || sender.send(op))
                    .await
                    .map_err(|_| E::from(DurableError::Closed))?
                    .map_err(|_| E::from(DurableError::Closed))?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(E::from(DurableError::Closed)),
        }
        answer.await.map_err(|_| E::from(DurableError::Closed))?
    }

    /// A consistent read-only snapshot.
    pub fn read(&self) -> Result<ReadTransaction, DurableError> {
        Ok(self.db.begin_read()?)
    }
}

fn run_writer(db: &Database, ops: &mpsc::Receiver<WriteOp>) {
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                // Dropping the ops drops their reply channels: each caller gets `Closed`.
                tracing::error!(error = %e, n_writes = batch.len(), "cannot begin a write transaction");
                continue;
            }
        };
        let finishers: Vec<Finisher> = batch.into_iter().map(|op| op(&txn)).collect();
        let committed = txn.commit().map_err(DurableError::from);
        if let Err(e) = &committed {
            tracing::error!(error = %e, n_writes = finishers.len(), "store commit failed");
        }
        for finish in finishers {
            finish(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTable, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    #[tokio::test]
    async fn concurrent_writes_commit_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let durable =
                Durable::open(&path, "test-writer", |txn| txn.open_table(T).map(|_| ())).unwrap();
            let mut tasks = Vec::new();
            for i in 0..64u64 {
                let durable = durable.clone();
                tasks.push(tokio::spawn(async move {
                    durable
                        .write(move |txn| {
                            txn.open_table(T)?.insert(i, i * 2)?;
                            Ok::<_, DurableError>(())
                        })
                        .await
                }));
            }
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        }
        let durable =
            Durable::open(&path, "test-writer", |txn| txn.open_table(T).map(|_| ())).unwrap();
        let read = durable.read().unwrap();
        let table = read.open_table(T).unwrap();
        assert_eq!(table.iter().unwrap().count(), 64);
        assert_eq!(table.get(7).unwrap().unwrap().value(), 14);
    }

    #[tokio::test]
    async fn a_failing_closure_returns_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(&dir.path().join("db.redb"), "w", |_| Ok(())).unwrap();
        let result: Result<(), DurableError> = durable
            .write(|_| Err(DurableError::Db("refused".into())))
            .await;
        assert!(matches!(result, Err(DurableError::Db(m)) if m == "refused"));
    }
}
