//! Durable writes with group commit over a redb database.
//!
//! [`Durable::write`] queues a closure for the database's one writer thread, which runs every
//! closure queued while the previous commit was in flight inside a single write transaction
//! and commits once: many writers share one fsync, and each is answered only after its data
//! is durable. Readers use [`Durable::read`] snapshots and never wait for writers.
//! **Invariant:** a write closure makes all its checks before its first write, so a closure
//! that returns an error leaves nothing behind in the shared transaction.
//! **Invariant:** a closure that panics (a bug) does not take the writer with it: the shared
//! transaction is aborted, its caller gets [`DurableError::Panicked`] and the callers whose
//! closures had already run in it get [`DurableError::Aborted`] (nothing of theirs was
//! written; they may try again); later writes carry on. Every closure's writes are all or none.
//! A store may give the closures of a group more than the transaction: a [`Group`] scope made
//! once per group (its open tables, say, since opening a redb table looks its name up in the
//! table tree each time) and dropped before the group commits.

pub mod log;
pub mod redo;

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
    /// The write closure panicked (a bug); nothing it wrote was kept.
    #[error("a store write failed: {0}")]
    Panicked(String),
    /// Another write of the same group panicked: the group's transaction was aborted and
    /// nothing of this write was kept; trying again is safe.
    #[error("the store write was rolled back with a failed one; try again")]
    Aborted,
    /// The [`Commit`] hook could not make the writes durable (a replicated store that is not
    /// its group's leader, or lost its majority): nothing of the group was written.
    #[error("{0}")]
    NotCommitted(String),
}

/// How a group's transaction is made durable. The default commits it to the local file; a
/// replicated store instead reads what the group wrote, drops the transaction and has every
/// member apply the same writes (see the orchestrator's `store::replication`).
pub trait Commit: Send + 'static {
    /// Called before a group's transaction begins. An error fails every write of the group
    /// (their closures still run, against a transaction that is then dropped).
    fn begin(&mut self) -> Result<(), DurableError> {
        Ok(())
    }
    /// Makes the group's writes durable; every caller of the group is answered with the
    /// outcome.
    fn commit(&mut self, txn: WriteTransaction) -> Result<(), DurableError>;
    /// The group's transaction was aborted (a closure panicked); forget what it wrote.
    fn aborted(&mut self) {}
    /// Called once at open, after the first transaction and before any write: brings the
    /// database up to date with what the hook keeps beside it (a redo log's records).
    fn recover(&mut self, _db: &Database) -> Result<(), DurableError> {
        Ok(())
    }
    /// Called once when the store closes, after the last group: makes everything durable in
    /// the database itself.
    fn close(&mut self, _db: &Database) -> Result<(), DurableError> {
        Ok(())
    }
}

/// Commits to the local file: the store of a single orchestrator and of every compute node.
pub struct LocalCommit;

impl Commit for LocalCommit {
    fn commit(&mut self, txn: WriteTransaction) -> Result<(), DurableError> {
        Ok(txn.commit()?)
    }
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
/// A queued write: runs its closure in the group's scope and says whether it panicked (the
/// shared transaction must then be aborted), and what to do once the group is durable (or
/// failed).
type WriteOp<G> = Box<dyn for<'t> FnOnce(&mut <G as Group>::Scope<'t>) -> (bool, Finisher) + Send>;

/// What the write closures of one group share: a scope made from the group's transaction
/// before its first closure runs and dropped after its last, before the commit (so whatever
/// it holds open, tables included, is closed by then).
pub trait Group: Send + 'static {
    /// The scope each closure of a group receives.
    type Scope<'t>;
    /// The scope of a group whose transaction is `txn`.
    fn scope(txn: &WriteTransaction) -> Self::Scope<'_>;
}

/// The plain group: its closures receive the transaction alone.
pub struct Plain;

impl Group for Plain {
    type Scope<'t> = &'t WriteTransaction;

    fn scope(txn: &WriteTransaction) -> &WriteTransaction {
        txn
    }
}

/// Upper bound on writes sharing one commit, so one commit's latency stays bounded.
const MAX_GROUP: usize = 512;

/// A redb database with a group-committing writer thread.
pub struct Durable<G: Group = Plain> {
    db: Arc<Database>,
    writer: Arc<WriterHandle<G>>,
}

impl<G: Group> Clone for Durable<G> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            writer: Arc::clone(&self.writer),
        }
    }
}

/// Owns the writer thread: when the last [`Durable`] clone goes, the thread drains its queue,
/// exits and releases the database file, so it can be reopened at once.
struct WriterHandle<G: Group> {
    sender: Option<mpsc::SyncSender<WriteOp<G>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<G: Group> Drop for WriterHandle<G> {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Durable {
    /// Opens (or creates) the database at `path`, runs `init` in a first transaction (to
    /// create tables, or bring an older layout up to date; nothing is kept if it fails), and
    /// starts the writer thread named `name`.
    pub fn open<E: std::fmt::Display>(
        path: &Path,
        name: &str,
        init: impl FnOnce(&WriteTransaction) -> Result<(), E>,
    ) -> Result<Self, DurableError> {
        Self::open_with(path, name, init, LocalCommit)
    }

    /// [`Durable::open`] with the groups made durable by `commit` instead of a local commit.
    pub fn open_with<E: std::fmt::Display>(
        path: &Path,
        name: &str,
        init: impl FnOnce(&WriteTransaction) -> Result<(), E>,
        commit: impl Commit,
    ) -> Result<Self, DurableError> {
        Self::open_grouped(path, name, init, commit)
    }

    /// Runs `f` inside a write transaction shared with other concurrent writes and returns its
    /// result once the transaction is durably committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DurableError> + Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_in(move |txn: &mut &WriteTransaction| f(txn))
            .await
    }
}

impl<G: Group> Durable<G> {
    /// [`Durable::open_with`] whose write closures receive the scope of group kind `G`.
    pub fn open_grouped<E: std::fmt::Display>(
        path: &Path,
        name: &str,
        init: impl FnOnce(&WriteTransaction) -> Result<(), E>,
        mut commit: impl Commit,
    ) -> Result<Self, DurableError> {
        let db = Arc::new(Database::create(path)?);
        let txn = db.begin_write()?;
        init(&txn).map_err(|e| DurableError::Db(format!("cannot prepare the store: {e}")))?;
        txn.commit()?;
        commit.recover(&db)?;
        let (sender, ops) = mpsc::sync_channel::<WriteOp<G>>(4096);
        let writer_db = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run_writer::<G>(&writer_db, &ops, &mut commit))
            .map_err(|e| DurableError::Db(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            db,
            writer: Arc::new(WriterHandle {
                sender: Some(sender),
                thread: Some(thread),
            }),
        })
    }

    /// Runs `f` in the scope of a group of writes sharing one transaction and returns its
    /// result once the transaction is durably committed.
    pub async fn write_in<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DurableError> + Send + 'static,
        F: for<'t> FnOnce(&mut G::Scope<'t>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: WriteOp<G> = Box::new(move |scope| {
            // A panicking closure (a bug) fails its own write, not the writer thread.
            let (panicked, result) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || f(scope),
            )) {
                Ok(result) => (false, result),
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    tracing::error!(panic = %message, "a store write panicked; its transaction is aborted");
                    (true, Err(E::from(DurableError::Panicked(message))))
                }
            };
            let finish: Finisher = Box::new(move |committed: Result<(), DurableError>| {
                let outcome = match (committed, result) {
                    (Ok(()), result) | (Err(_), result @ Err(_)) => result,
                    (Err(e), Ok(_)) => Err(E::from(e)),
                };
                let _ = reply.send(outcome);
            });
            (panicked, finish)
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

    /// The database itself, for a replicated store's members to apply what their leader
    /// committed (never while this writer holds a transaction: redb has one writer at a time,
    /// and a [`Commit`] hook drops its group's transaction before waiting on the others).
    pub fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }
}

fn run_writer<G: Group>(db: &Database, ops: &mpsc::Receiver<WriteOp<G>>, commit: &mut dyn Commit) {
    while let Ok(first) = ops.recv() {
        let ready = commit.begin();
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut pending = batch.into_iter().peekable();
        let mut finishers: Vec<Finisher> = Vec::with_capacity(pending.len());
        // Each pass runs closures in one transaction until they are all done (that
        // transaction is the group's) or one panics (it is aborted, and the rest of the group
        // goes on in a fresh one).
        let mut txn = None;
        while pending.peek().is_some() {
            let shared = match db.begin_write() {
                Ok(txn) => txn,
                Err(e) => {
                    // Dropping the ops drops their reply channels: the callers get `Closed`.
                    tracing::error!(error = %e, "cannot begin a write transaction");
                    pending.by_ref().for_each(drop);
                    break;
                }
            };
            let panicked = {
                let mut scope = G::scope(&shared);
                pending.by_ref().find_map(|op| {
                    let (panicked, finish) = op(&mut scope);
                    if panicked {
                        Some(finish)
                    } else {
                        finishers.push(finish);
                        None
                    }
                })
            };
            let Some(finish) = panicked else {
                txn = Some(shared);
                break;
            };
            // The panicking closure may have written part of its work: the whole
            // transaction goes, and the writes that shared it are told so.
            if let Err(e) = shared.abort() {
                tracing::error!(error = %e, "cannot abort a panicked write");
            }
            commit.aborted();
            for earlier in finishers.drain(..) {
                earlier(Err(DurableError::Aborted));
            }
            finish(Err(DurableError::Aborted));
        }
        let Some(txn) = txn else { continue };
        let committed = match ready {
            Ok(()) => commit.commit(txn),
            Err(e) => {
                drop(txn);
                commit.aborted();
                Err(e)
            }
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, n_writes = finishers.len(), "store commit failed");
        }
        for finish in finishers {
            finish(committed.clone());
        }
    }
    if let Err(e) = commit.close(db) {
        tracing::error!(error = %e, "cannot close the store cleanly");
    }
}

/// The text a panic carried.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|m| m.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
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
        let durable = Durable::open(&dir.path().join("db.redb"), "w", |_| {
            Ok::<(), DurableError>(())
        })
        .unwrap();
        let result: Result<(), DurableError> = durable
            .write(|_| Err(DurableError::Db("refused".into())))
            .await;
        assert!(matches!(result, Err(DurableError::Db(m)) if m == "refused"));
    }

    #[tokio::test]
    async fn a_panicking_closure_keeps_nothing_and_the_writer_lives_on() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(&dir.path().join("db.redb"), "w", |txn| {
            txn.open_table(T).map(|_| ())
        })
        .unwrap();
        let writes_then_panics = durable.write(|txn| {
            txn.open_table(T)?.insert(1, 1)?;
            if txn.open_table(T)?.get(1)?.is_some() {
                panic!("a bug after the first write");
            }
            Ok::<_, DurableError>(())
        });
        let (panicked, ()) = tokio::join!(writes_then_panics, async {});
        assert!(
            matches!(&panicked, Err(DurableError::Panicked(m)) if m.contains("a bug")),
            "{panicked:?}"
        );
        // The writer lives on.
        durable
            .write(|txn| {
                txn.open_table(T)?.insert(4, 4)?;
                Ok::<_, DurableError>(())
            })
            .await
            .unwrap();
        let read = durable.read().unwrap();
        let table = read.open_table(T).unwrap();
        let keys: Vec<u64> = table
            .iter()
            .unwrap()
            .map(|entry| entry.unwrap().0.value())
            .collect();
        assert_eq!(keys, vec![4], "nothing of the panicked write is kept");
    }

    /// A group kind that counts the scopes made, and what each closure saw.
    struct Counted;

    static SCOPES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl Group for Counted {
        type Scope<'t> = (usize, &'t WriteTransaction);

        fn scope(txn: &WriteTransaction) -> Self::Scope<'_> {
            (
                SCOPES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1,
                txn,
            )
        }
    }

    /// Three writes queued together share one scope; a panic in the second gives the third a
    /// fresh one (its transaction was aborted).
    #[test]
    fn a_group_shares_one_scope_and_a_panic_starts_another() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db.redb")).unwrap();
        for panics in [false, true] {
            SCOPES.store(0, std::sync::atomic::Ordering::SeqCst);
            let (sender, ops) = mpsc::sync_channel::<WriteOp<Counted>>(8);
            let (seen, saw) = mpsc::channel();
            for n in 0..3 {
                let seen = seen.clone();
                let op: WriteOp<Counted> = Box::new(move |scope| {
                    let _ = seen.send((n, scope.0));
                    let finish: Finisher = Box::new(|_| {});
                    (panics && n == 1, finish)
                });
                sender.send(op).unwrap();
            }
            drop(sender);
            run_writer::<Counted>(&db, &ops, &mut LocalCommit);
            let scopes: Vec<(i32, usize)> = saw.try_iter().collect();
            let expected = if panics {
                vec![(0, 1), (1, 1), (2, 2)]
            } else {
                vec![(0, 1), (1, 1), (2, 1)]
            };
            assert_eq!(scopes, expected);
        }
    }

    /// Drives the writer directly, so the group is known: the panic comes second of three.
    #[test]
    fn a_panic_aborts_its_group_and_tells_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db.redb")).unwrap();
        let init = db.begin_write().unwrap();
        init.open_table(T).unwrap();
        init.commit().unwrap();
        let (sender, ops) = mpsc::sync_channel::<WriteOp<Plain>>(8);
        let (answers, answered) = mpsc::channel();
        for (key, panics) in [(1u64, false), (2, true), (3, false)] {
            let answers = answers.clone();
            let op: WriteOp<Plain> = Box::new(move |txn| {
                let mut table = txn.open_table(T).unwrap();
                table.insert(key, key).unwrap();
                drop(table);
                let finish: Finisher = Box::new(move |outcome| {
                    let _ = answers.send((key, outcome));
                });
                (panics, finish)
            });
            sender.send(op).unwrap();
        }
        drop(sender);
        run_writer::<Plain>(&db, &ops, &mut LocalCommit);
        let mut outcomes: Vec<(u64, Result<(), DurableError>)> = answered.try_iter().collect();
        outcomes.sort_by_key(|(key, _)| *key);
        assert!(
            matches!(outcomes[0], (1, Err(DurableError::Aborted))),
            "{outcomes:?}"
        );
        assert!(
            matches!(outcomes[1], (2, Err(DurableError::Aborted))),
            "{outcomes:?}"
        );
        // The write after the panic went into a fresh transaction and was kept.
        assert!(matches!(outcomes[2], (3, Ok(()))), "{outcomes:?}");
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let keys: Vec<u64> = table
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert_eq!(keys, vec![3]);
    }
}
