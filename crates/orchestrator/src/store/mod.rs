//! The durable store: jobs, their versions, executions, evaluations, history, nodes and the
//! per-node outboxes in redb, written with group commit (`bacalhau-durable`): many submissions
//! share one fsync, and each caller is answered only after its data is durable.
//! **Invariant:** a write closure makes all its checks before its first write, so a closure
//! that fails leaves nothing behind in the shared transaction; one that panics aborts the
//! shared transaction (see `bacalhau-durable`).

mod index;
mod open;
mod redo;
pub mod replication;
mod tables;
mod watch;

use bacalhau_channel::store::{self as channel, ChannelTxn};
use bacalhau_durable::redo::LoggedCommit;
pub use bacalhau_durable::redo::log_path;
use bacalhau_durable::{Durable, DurableError};
use bacalhau_models::content::{ContentKey, Identity};
use bacalhau_models::{
    Evaluation, Execution, ExecutionId, Job, JobHistory, JobHistoryType, JobId, NodeId, NodeState,
};
use open::{Open, OpenTables};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use redo::ChangeLog;
use replication::{Journal, Replicate, ReplicatedCommit, Row};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tables::*;

pub use index::JobIndex;
pub use watch::JobWatch;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store I/O: {0}")]
    Db(String),
    /// A stored record could not be decoded.
    #[error("corrupt record in {table}: {reason}")]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The writer thread is gone (the store is shutting down).
    #[error("store is closed")]
    Closed,
    /// A replicated store's group did not commit the write (this member does not lead it, or
    /// the group has no majority).
    #[error("{0}")]
    NotCommitted(String),
    /// A node channel's tables failed.
    #[error(transparent)]
    Channel(#[from] channel::StoreError),
}

impl From<DurableError> for StoreError {
    fn from(e: DurableError) -> Self {
        match e {
            DurableError::Db(message) => Self::Db(message),
            DurableError::Closed => Self::Closed,
            DurableError::NotCommitted(message) => Self::NotCommitted(message),
            failed @ (DurableError::Panicked(_) | DurableError::Aborted) => {
                Self::Db(failed.to_string())
            }
        }
    }
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
db_errors!(redb::StorageError, redb::TableError);

/// The store's commit hook (local or replicated), timed when a histogram is given.
struct Timed {
    inner: Box<dyn bacalhau_durable::Commit>,
    seconds: Option<prometheus_client::metrics::histogram::Histogram>,
}

impl bacalhau_durable::Commit for Timed {
    fn begin(&mut self) -> Result<(), DurableError> {
        self.inner.begin()
    }

    fn commit(&mut self, txn: WriteTransaction) -> Result<(), DurableError> {
        let started = std::time::Instant::now();
        let committed = self.inner.commit(txn);
        if let Some(seconds) = &self.seconds {
            seconds.observe(started.elapsed().as_secs_f64());
        }
        committed
    }

    fn aborted(&mut self) {
        self.inner.aborted();
    }

    fn recover(&mut self, db: &redb::Database) -> Result<(), DurableError> {
        self.inner.recover(db)
    }

    fn close(&mut self, db: &redb::Database) -> Result<(), DurableError> {
        self.inner.close(db)
    }
}

/// The orchestrator's durable store.
#[derive(Clone)]
pub struct Store {
    durable: Durable<OpenTables>,
    /// The rows the current group touched, for the commit hook to log or replicate.
    journal: Arc<Mutex<Journal>>,
    /// Who waits for news of a job (woken after the commit that wrote it).
    watchers: Arc<watch::Watchers>,
}

impl Store {
    /// Opens (or creates) the store file at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_timed(path, None, None)
    }

    /// Opens a member's copy of a replicated store: every group of writes is committed by
    /// `group` (see [`replication`]) rather than to the file directly.
    pub fn open_replicated(path: &Path, group: Arc<dyn Replicate>) -> Result<Self, StoreError> {
        Self::open_timed(path, Some(group), None)
    }

    /// [`Store::open`] (or, with a `group`, [`Store::open_replicated`]), with the time each
    /// group takes to commit observed in `commit_seconds` when given.
    pub fn open_timed(
        path: &Path,
        group: Option<Arc<dyn Replicate>>,
        commit_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
    ) -> Result<Self, StoreError> {
        let open = |commit| Durable::open_grouped(path, "store-writer", create_tables, commit);
        // Both hooks need every touched row: the cluster's to replicate the group, the
        // single orchestrator's to log it (see `redo`).
        let journal = Arc::new(Mutex::new(Journal::default()));
        let inner: Box<dyn bacalhau_durable::Commit> = match group {
            None => Box::new(LoggedCommit::new(
                path,
                ChangeLog::new(Arc::clone(&journal)),
            )),
            Some(group) => Box::new(ReplicatedCommit {
                journal: Arc::clone(&journal),
                group,
            }),
        };
        Ok(Self {
            durable: open(Timed {
                inner,
                seconds: commit_seconds,
            })?,
            journal,
            watchers: Arc::default(),
        })
    }

    /// Compacts the store file at `path` (which no one may have open), returning the space of
    /// dropped records to the file system; answers its size before and after. A missing file
    /// is left alone.
    pub fn compact(path: &Path) -> Result<Option<(u64, u64)>, StoreError> {
        let size = |path: &Path| {
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| StoreError::Db(format!("cannot read {}: {e}", path.display())))
        };
        if !path.exists() {
            return Ok(None);
        }
        let before = size(path)?;
        let mut db = redb::Database::open(path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        db.compact()
            .map_err(|e| StoreError::Db(format!("cannot compact {}: {e}", path.display())))?;
        drop(db);
        Ok(Some((before, size(path)?)))
    }

    /// The database under the store, for a replicated store's state machine, which applies
    /// the group's changes ([`replication::apply`]) and keeps its own position beside them.
    pub fn database(&self) -> Arc<redb::Database> {
        self.durable.database()
    }

    /// Runs `f` inside a write transaction shared with other concurrent writes and returns its
    /// result once the transaction is durably committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Writer<'_, '_>) -> Result<T, E> + Send + 'static,
    {
        let journal = Arc::clone(&self.journal);
        let (result, news) = self
            .durable
            .write_in(move |open: &mut Open<'_>| {
                // Only the writer thread takes this lock, one closure at a time.
                let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
                let before = journal.len();
                let mut writer = Writer::new(open, &mut journal);
                let result = f(&mut writer);
                let news = std::mem::take(&mut writer.news);
                drop(writer);
                if result.is_err() {
                    // It wrote nothing (checks come first), so it touched nothing either.
                    journal.truncate(before);
                }
                Ok((result.map_err(Wrapped::Inner)?, news))
            })
            .await
            .map_err(|wrapped| match wrapped {
                Wrapped::Inner(e) => e,
                Wrapped::Durable(e) => E::from(StoreError::from(e)),
            })?;
        self.watchers.wake(&news);
        Ok(result)
    }

    /// Watches job `id` for news: [`JobWatch::changed`] resolves after a write that added one
    /// of its history events is durable. Begin watching before reading, so nothing written
    /// between the read and the wait is missed. A replicated store's follower is not woken
    /// by what its leader writes: its callers read again on a timer of their own.
    pub fn watch_job(&self, id: &JobId) -> JobWatch {
        self.watchers.watch(id)
    }

    /// A consistent read-only view of the store.
    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            txn: self.durable.read()?,
        })
    }
}

/// A caller's error or the database's, through the durable layer.
enum Wrapped<E> {
    Inner(E),
    Durable(DurableError),
}

impl<E> From<DurableError> for Wrapped<E> {
    fn from(e: DurableError) -> Self {
        Self::Durable(e)
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Db(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

/// The end of a string-key range that holds every key starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

fn name_key(namespace: &str, name: &str) -> String {
    format!("{namespace}\u{0}{name}")
}

/// The keys of `EXECUTIONS` that hold job `number`'s executions.
fn executions_of(number: u64) -> std::ops::Range<(u64, &'static str)> {
    (number, "")..(number.saturating_add(1), "")
}

/// Read queries shared by [`Reader`] and [`Writer`].
macro_rules! read_queries {
    () => {
        /// The number job `id`'s rows are kept under, when it has one.
        fn number_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
            if let Some(number) = self.remembered(id) {
                return Ok(Some(number));
            }
            let table = self.job_numbers_table()?;
            let found = table.get(id)?.map(|n| n.value());
            if let Some(number) = found {
                self.remember(id, number);
            }
            Ok(found)
        }

        /// A job by its full ID.
        pub fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
            let Some(number) = self.number_of(id.as_str())? else {
                return Ok(None);
            };
            let table = self.jobs_table()?;
            let found = table.get(number)?;
            found.map(|v| decode(JOBS_NAME, v.value())).transpose()
        }

        /// The ID of the job named `name` in `namespace`.
        pub fn job_id_by_name(
            &self,
            namespace: &str,
            name: &str,
        ) -> Result<Option<JobId>, StoreError> {
            let table = self.job_names_table()?;
            if let Some(found) = table.get(name_key(namespace, name).as_str())? {
                return Ok(Some(JobId::from(found.value())));
            }
            // A job named by its own ID (the default name) has no row there: the ID finds it.
            let named_by_id = self
                .job(&JobId::from(name))?
                .filter(|job| job.namespace == namespace && job.name == name);
            Ok(named_by_id.map(|job| job.id))
        }

        /// Full job IDs starting with `prefix`, at most `limit` of them.
        pub fn job_ids_with_prefix(
            &self,
            prefix: &str,
            limit: usize,
        ) -> Result<Vec<JobId>, StoreError> {
            let numbers = self.job_numbers_table()?;
            let jobs = self.jobs_table()?;
            let end = prefix_end(prefix);
            let mut ids = Vec::new();
            for entry in numbers.range(prefix..end.as_str())? {
                if ids.len() >= limit {
                    break;
                }
                let (key, number) = entry?;
                // A number outlives its job's records (dropped by retention).
                if jobs.get(number.value())?.is_some() {
                    ids.push(JobId::from(key.value()));
                }
            }
            Ok(ids)
        }

        /// One version of a job's spec.
        pub fn job_version(&self, id: &JobId, version: u64) -> Result<Option<Job>, StoreError> {
            let Some(number) = self.number_of(id.as_str())? else {
                return Ok(None);
            };
            let table = self.job_versions_table()?;
            let found = table.get((number, version))?;
            found
                .map(|v| decode(JOB_VERSIONS_NAME, v.value()))
                .transpose()
        }

        /// Every version of a job's spec, oldest first.
        pub fn job_versions(&self, id: &JobId) -> Result<Vec<Job>, StoreError> {
            let Some(number) = self.number_of(id.as_str())? else {
                return Ok(Vec::new());
            };
            let table = self.job_versions_table()?;
            let mut versions = Vec::new();
            for entry in table.range((number, 0u64)..=(number, u64::MAX))? {
                let (_, value) = entry?;
                versions.push(decode(JOB_VERSIONS_NAME, value.value())?);
            }
            Ok(versions)
        }

        /// Execution `id` of job `job_id` (executions are kept under their job).
        pub fn execution(
            &self,
            job_id: &JobId,
            id: &ExecutionId,
        ) -> Result<Option<Execution>, StoreError> {
            let Some(number) = self.number_of(job_id.as_str())? else {
                return Ok(None);
            };
            let table = self.executions_table()?;
            let found = table.get((number, id.as_str()))?;
            found
                .map(|v| decode(EXECUTIONS_NAME, v.value()))
                .transpose()
        }

        /// Every execution of a job, in creation order.
        pub fn executions_of(&self, job_id: &JobId) -> Result<Vec<Execution>, StoreError> {
            let Some(number) = self.number_of(job_id.as_str())? else {
                return Ok(Vec::new());
            };
            let executions = self.executions_table()?;
            let mut found = Vec::new();
            for entry in executions.range(executions_of(number))? {
                let (_, bytes) = entry?;
                found.push(decode::<Execution>(EXECUTIONS_NAME, bytes.value())?);
            }
            found.sort_by(|a, b| a.create_time.cmp(&b.create_time).then(a.id.cmp(&b.id)));
            Ok(found)
        }

        /// The number of the job's latest history event (0 when it has none).
        pub fn last_event_of(&self, job_id: &JobId) -> Result<u64, StoreError> {
            let Some(number) = self.number_of(job_id.as_str())? else {
                return Ok(0);
            };
            let table = self.history_table()?;
            let last = table
                .range((number, 0u64)..=(number, u64::MAX))?
                .next_back()
                .transpose()?;
            Ok(last.map_or(0, |(key, _)| key.value().1))
        }

        /// A job's history, oldest first.
        pub fn history_of(&self, job_id: &JobId) -> Result<Vec<JobHistory>, StoreError> {
            let Some(number) = self.number_of(job_id.as_str())? else {
                return Ok(Vec::new());
            };
            let table = self.history_table()?;
            let mut events = Vec::new();
            for entry in table.range((number, 0u64)..=(number, u64::MAX))? {
                let (_, value) = entry?;
                events.push(decode(HISTORY_NAME, value.value())?);
            }
            Ok(events)
        }

        /// Up to `limit` events of the audit log after sequence number `since`, in order. An
        /// event whose record is gone is left out, which a verifier sees as a gap.
        pub fn audit_log(&self, since: u64, limit: usize) -> Result<Vec<JobHistory>, StoreError> {
            let order = self.history_by_seq_table()?;
            let jobs = self.history_table()?;
            let nodes = self.node_history_table()?;
            let mut events = Vec::new();
            for entry in order.range(since.saturating_add(1)..)? {
                if events.len() >= limit {
                    break;
                }
                let (seq, owner) = entry?;
                let seq = seq.value();
                let owner = owner.value();
                let record = if owner == NODE_EVENT {
                    nodes
                        .get(seq)?
                        .map(|v| decode(NODE_HISTORY_NAME, v.value()))
                } else {
                    jobs.get((owner, seq))?
                        .map(|v| decode(HISTORY_NAME, v.value()))
                };
                if let Some(event) = record.transpose()? {
                    events.push(event);
                }
            }
            Ok(events)
        }

        /// Every evaluation not yet completed.
        pub fn pending_evaluations(&self) -> Result<Vec<Evaluation>, StoreError> {
            let table = self.evaluations_table()?;
            let mut evaluations = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                evaluations.push(decode(EVALUATIONS_NAME, value.value())?);
            }
            Ok(evaluations)
        }

        /// Job IDs in creation order, starting after `after` (a `(create_time, id)` cursor).
        pub fn job_ids_by_create_time(
            &self,
            reverse: bool,
            after: Option<(i64, &str)>,
            limit: usize,
        ) -> Result<Vec<(i64, JobId)>, StoreError> {
            let table = self.jobs_by_create_table()?;
            let mut ids = Vec::new();
            let mut push = |entry: Result<
                (
                    redb::AccessGuard<'_, (i64, &str)>,
                    redb::AccessGuard<'_, ()>,
                ),
                redb::StorageError,
            >|
             -> Result<bool, StoreError> {
                let (key, _) = entry?;
                let (time, id) = key.value();
                if let Some((after_time, after_id)) = after
                    && (time, id) == (after_time, after_id)
                {
                    return Ok(true);
                }
                ids.push((time, JobId::from(id)));
                Ok(ids.len() < limit)
            };
            match (reverse, after) {
                (false, None) => {
                    for entry in table.iter()? {
                        if !push(entry)? {
                            break;
                        }
                    }
                }
                (false, Some(cursor)) => {
                    for entry in table.range(cursor..)? {
                        if !push(entry)? {
                            break;
                        }
                    }
                }
                (true, None) => {
                    for entry in table.iter()?.rev() {
                        if !push(entry)? {
                            break;
                        }
                    }
                }
                (true, Some(cursor)) => {
                    for entry in table.range(..=cursor)?.rev() {
                        if !push(entry)? {
                            break;
                        }
                    }
                }
            }
            Ok(ids)
        }

        /// The IDs of the jobs in `index`, in creation order (newest first when `reverse`),
        /// starting after `after` (a `(create_time, id)` cursor).
        pub fn job_ids_in(
            &self,
            index: &JobIndex,
            reverse: bool,
            after: Option<(i64, &str)>,
            limit: usize,
        ) -> Result<Vec<(i64, JobId)>, StoreError> {
            let table = self.job_index_table()?;
            let key = index.key();
            let end = index::end_of(&key);
            let start = (key.as_str(), i64::MIN, "");
            let stop = (end.as_str(), i64::MIN, "");
            let mut ids = Vec::new();
            let range = match (reverse, after) {
                (false, None) => table.range(start..stop)?,
                (false, Some((t, id))) => table.range((key.as_str(), t, id)..stop)?,
                (true, None) => table.range(start..stop)?,
                (true, Some((t, id))) => table.range(start..(key.as_str(), t, id))?,
            };
            let mut push = |entry: Result<
                (
                    redb::AccessGuard<'_, (&str, i64, &str)>,
                    redb::AccessGuard<'_, ()>,
                ),
                redb::StorageError,
            >|
             -> Result<bool, StoreError> {
                let (entry, _) = entry?;
                let (_, time, id) = entry.value();
                if after == Some((time, id)) {
                    return Ok(true);
                }
                ids.push((time, JobId::from(id)));
                Ok(ids.len() < limit)
            };
            if reverse {
                for entry in range.rev() {
                    if !push(entry)? {
                        break;
                    }
                }
            } else {
                for entry in range {
                    if !push(entry)? {
                        break;
                    }
                }
            }
            Ok(ids)
        }

        /// A node by its ID.
        pub fn node(&self, id: &NodeId) -> Result<Option<NodeState>, StoreError> {
            let table = self.nodes_table()?;
            let found = table.get(id.as_str())?;
            found.map(|v| decode(NODES_NAME, v.value())).transpose()
        }

        /// Every node, by ID.
        pub fn nodes(&self) -> Result<Vec<NodeState>, StoreError> {
            let table = self.nodes_table()?;
            let mut nodes = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                nodes.push(decode(NODES_NAME, value.value())?);
            }
            Ok(nodes)
        }

        /// The cached run of a task with content key `key`.
        pub fn cache_entry(
            &self,
            key: &ContentKey,
        ) -> Result<Option<crate::lineage::CacheEntry>, StoreError> {
            let table = self.cache_table()?;
            let found = table.get(key.as_str())?;
            found.map(|v| decode(CACHE_NAME, v.value())).transpose()
        }

        /// The jobs that read or produced the data `identity` names (by its link), with the
        /// execution that did.
        pub fn links(&self, identity: &Identity) -> Result<Vec<crate::lineage::Link>, StoreError> {
            let link = identity.link();
            let table = self.links_table()?;
            let end = prefix_end("");
            let mut found = Vec::new();
            for entry in table.range((link.as_str(), "")..(link.as_str(), end.as_str()))? {
                let (key, value) = entry?;
                let (_, role_job) = key.value();
                if let Some(parsed) = crate::lineage::Link::parse(role_job, value.value()) {
                    found.push(parsed);
                }
            }
            Ok(found)
        }

        /// IDs of jobs not in a terminal state.
        pub fn active_job_ids(&self) -> Result<Vec<JobId>, StoreError> {
            let table = self.active_jobs_table()?;
            let mut ids = Vec::new();
            for entry in table.iter()? {
                let (_, id) = entry?;
                ids.push(JobId::from(id.value()));
            }
            Ok(ids)
        }

        /// Messages for `node` with a sequence above `after`, oldest first, at most `limit`.
        pub fn outbox_after(
            &self,
            node: &NodeId,
            after: u64,
            limit: usize,
        ) -> Result<Vec<(u64, bacalhau_protocol::Message)>, StoreError> {
            Ok(channel::outbox_after(
                self.view(),
                node.as_str(),
                after,
                limit,
            )?)
        }

        /// The number of the last message queued for `node`.
        pub fn last_queued(&self, node: &NodeId) -> Result<u64, StoreError> {
            Ok(channel::last_queued(self.view(), node.as_str())?)
        }

        /// How many messages wait for `node`'s acknowledgement.
        pub fn outbox_len(&self, node: &NodeId) -> Result<u64, StoreError> {
            Ok(channel::outbox_len(self.view(), node.as_str())?)
        }

        /// The last of `node`'s messages applied here.
        pub fn applied_from(&self, node: &NodeId) -> Result<u64, StoreError> {
            Ok(channel::applied(self.view(), node.as_str())?)
        }

        /// How many ended jobs rest in each (type, terminal state), from the counts
        /// `put_job` keeps.
        pub fn ended_job_counts(
            &self,
        ) -> Result<Vec<(String, bacalhau_models::JobStateType, u64)>, StoreError> {
            let meta = self.meta_table()?;
            let end = prefix_end(JOBS_ENDED_PREFIX);
            let mut counts = Vec::new();
            for row in meta.range(JOBS_ENDED_PREFIX..end.as_str())? {
                let (key, count) = row?;
                let key = key.value();
                let Some((job_type, state)) = key[JOBS_ENDED_PREFIX.len()..].rsplit_once('/')
                else {
                    continue;
                };
                if let Some(state) = bacalhau_models::JobStateType::parse_name(state) {
                    counts.push((job_type.to_string(), state, count.value()));
                }
            }
            Ok(counts)
        }

        /// The type and state of every active (not ended) job.
        pub fn active_job_kinds(
            &self,
        ) -> Result<Vec<(String, bacalhau_models::JobStateType)>, StoreError> {
            let active = self.active_jobs_table()?;
            let jobs = self.jobs_table()?;
            let mut kinds = Vec::new();
            for row in active.iter()? {
                let (number, _) = row?;
                if let Some(bytes) = jobs.get(number.value())? {
                    let kind: JobKind = decode(JOBS_NAME, bytes.value())?;
                    kinds.push((kind.r#type, kind.state.state_type));
                }
            }
            Ok(kinds)
        }

        /// How many jobs the store holds.
        pub fn job_count(&self) -> Result<u64, StoreError> {
            use redb::ReadableTableMetadata;
            Ok(self.jobs_table()?.len()?)
        }
    };
}

/// A consistent read-only snapshot of the store.
pub struct Reader {
    txn: ReadTransaction,
}

impl Reader {
    read_queries!();

    /// A reader looks a job's number up each time (it is one lookup per query).
    fn remembered(&self, _id: &str) -> Option<u64> {
        None
    }

    fn remember(&self, _id: &str, _number: u64) {}

    fn view(&self) -> &ReadTransaction {
        &self.txn
    }

    /// The job indexes, opened once for many seeks (an intersection of several indexes).
    pub fn job_indexes(&self) -> Result<JobIndexes, StoreError> {
        Ok(JobIndexes(self.job_index_table()?))
    }
}

/// The job indexes of one read, for seeking: what an intersection of indexes needs.
pub struct JobIndexes(redb::ReadOnlyTable<(&'static str, i64, &'static str), ()>);

impl JobIndexes {
    /// The first job of the index with key `key` at or past `from` in creation order (at or
    /// before it when `reverse`; `strict`: past or before it only), as `(create time, ID)`.
    pub fn seek(
        &self,
        key: &str,
        reverse: bool,
        from: Option<(i64, &str)>,
        strict: bool,
    ) -> Result<Option<(i64, JobId)>, StoreError> {
        let end = index::end_of(key);
        let start = (key, i64::MIN, "");
        let stop = (end.as_str(), i64::MIN, "");
        let mut range = match (reverse, from) {
            (_, None) => self.0.range(start..stop)?,
            (false, Some((t, id))) => self.0.range((key, t, id)..stop)?,
            (true, Some((t, id))) => self.0.range(start..=(key, t, id))?,
        };
        loop {
            let entry = if reverse {
                range.next_back()
            } else {
                range.next()
            };
            let Some(entry) = entry else {
                return Ok(None);
            };
            let (entry, _) = entry?;
            let (_, time, id) = entry.value();
            if strict && from == Some((time, id)) {
                continue;
            }
            return Ok(Some((time, JobId::from(id))));
        }
    }
}

/// The writable view a write closure receives; it also answers every read query. Its tables
/// are the group's ([`Open`]): opened once for every write of the group.
pub struct Writer<'a, 't> {
    open: &'a Open<'t>,
    /// Where the rows written are noted, for the commit hook to log or replicate.
    journal: &'a mut Journal,
    /// The jobs given a history event, whose watchers to wake after the commit.
    news: Vec<JobId>,
}

impl ChannelTxn for Writer<'_, '_> {
    fn channel_txn(&self) -> &WriteTransaction {
        self.open.txn
    }
}

impl<'a, 't> Writer<'a, 't> {
    fn new(open: &'a Open<'t>, journal: &'a mut Journal) -> Self {
        Self {
            open,
            journal,
            news: Vec::new(),
        }
    }

    read_queries!();

    /// The job numbers are the group's: a closure asks for the same job's number five to
    /// eight times, and a number never changes once given.
    fn remembered(&self, id: &str) -> Option<u64> {
        self.open.remembered(id)
    }

    fn remember(&self, id: &str, number: u64) {
        self.open.remember(id, number);
    }

    fn view(&self) -> &WriteTransaction {
        self.open.txn
    }

    /// Notes a row about to be written, for the commit hook.
    fn touch(&mut self, row: impl FnOnce() -> Row) {
        self.journal.touch(row());
    }

    /// The number job `id`'s rows are kept under, given now (the next in order) when it has
    /// none yet.
    fn number_for(&mut self, id: &str) -> Result<u64, StoreError> {
        if let Some(number) = self.number_of(id)? {
            return Ok(number);
        }
        let mut meta = self.meta_table()?;
        let number = meta.get(LAST_JOB_NUMBER)?.map_or(0, |n| n.value()) + 1;
        meta.insert(LAST_JOB_NUMBER, number)?;
        drop(meta);
        self.job_numbers_table()?.insert(id, number)?;
        self.remember(id, number);
        self.touch(|| Row::Meta(LAST_JOB_NUMBER.into()));
        self.touch(|| Row::JobNumber(id.into()));
        Ok(number)
    }

    /// Stores a job as its latest state, indexing its name, creation time and activity.
    pub fn put_job(&mut self, job: &Job) -> Result<(), StoreError> {
        let bytes = encode(job)?;
        let id = job.id.as_str();
        let number = self.number_for(id)?;
        self.touch(|| Row::ActiveJob(number));
        self.touch(|| Row::Job(number));
        let mut active = self.active_jobs_table()?;
        let ended = job.state.state_type.is_terminal();
        let was_active = if ended {
            active.remove(number)?.is_some()
        } else {
            active.insert(number, id)?.is_some()
        };
        drop(active);
        let mut jobs = self.jobs_table()?;
        let previous = jobs.insert(number, bytes.as_slice())?;
        // Only a job that had ended already (a rerun, a stop of an ended job) needs its old
        // record read: an active or new one was in no ended count.
        let was_ended = match previous.filter(|_| !was_active) {
            Some(old) => {
                let kind: JobKind = decode(JOBS_NAME, old.value())?;
                kind.state
                    .state_type
                    .is_terminal()
                    .then(|| jobs_ended_key(&kind.r#type, kind.state.state_type))
            }
            None => None,
        };
        drop(jobs);
        let now_ended = ended.then(|| jobs_ended_key(&job.r#type, job.state.state_type));
        if was_ended != now_ended {
            let mut meta = self.meta_table()?;
            if let Some(key) = &was_ended {
                let count = meta.get(key.as_str())?.map_or(0, |v| v.value());
                meta.insert(key.as_str(), count.saturating_sub(1))?;
            }
            if let Some(key) = &now_ended {
                let count = meta.get(key.as_str())?.map_or(0, |v| v.value());
                meta.insert(key.as_str(), count + 1)?;
            }
            drop(meta);
            for key in was_ended.into_iter().chain(now_ended) {
                self.touch(|| Row::Meta(key));
            }
        }
        // Rows that seldom change are read before they are written: a write rewrites the
        // page, and the name's key is as random as the job's. A job named by its own ID
        // (the default) needs no row: `job_id_by_name` finds it by the ID.
        let name = name_key(&job.namespace, &job.name);
        let mut names = self.job_names_table()?;
        if job.name != id
            && names
                .get(name.as_str())?
                .is_none_or(|named| named.value() != id)
        {
            names.insert(name.as_str(), id)?;
            drop(names);
            self.touch(|| Row::JobName(name));
        } else {
            drop(names);
        }
        let mut by_create = self.jobs_by_create_table()?;
        if by_create.get((job.create_time, id))?.is_none() {
            by_create.insert((job.create_time, id), ())?;
            drop(by_create);
            self.touch(|| Row::JobByCreate(job.create_time, id.into()));
        } else {
            drop(by_create);
        }
        self.index_job(id, number, job.create_time, JobIndex::keys_of(job))
    }

    /// Enters job `id` under `keys` and out of the indexes it was in before and is no more.
    fn index_job(
        &mut self,
        id: &str,
        number: u64,
        create_time: i64,
        keys: std::collections::BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let mut indexed = self.job_indexed_table()?;
        let before = match indexed.get(number)? {
            Some(listed) => index::parse_listed(listed.value()),
            None => Default::default(),
        };
        if before == keys {
            return Ok(());
        }
        if keys.is_empty() {
            indexed.remove(number)?;
        } else {
            indexed.insert(number, index::listed(&keys).as_str())?;
        }
        drop(indexed);
        self.touch(|| Row::JobIndexed(number));
        let mut table = self.job_index_table()?;
        for gone in before.difference(&keys) {
            table.remove((gone.as_str(), create_time, id))?;
        }
        for new in keys.difference(&before) {
            table.insert((new.as_str(), create_time, id), ())?;
        }
        drop(table);
        for changed in before.symmetric_difference(&keys) {
            self.touch(|| Row::JobIndex(changed.clone(), create_time, id.into()));
        }
        Ok(())
    }

    /// Stores a version of a job's spec.
    pub fn put_job_version(&mut self, job: &Job) -> Result<(), StoreError> {
        let bytes = encode(job)?;
        let number = self.number_for(job.id.as_str())?;
        self.touch(|| Row::JobVersion(number, job.version));
        self.job_versions_table()?
            .insert((number, job.version), bytes.as_slice())?;
        Ok(())
    }

    /// Stores an execution under its job.
    pub fn put_execution(&mut self, execution: &Execution) -> Result<(), StoreError> {
        let bytes = encode(execution)?;
        let number = self.number_for(execution.job_id.as_str())?;
        let id = execution.id.as_str();
        self.touch(|| Row::Execution(number, id.into()));
        self.executions_table()?
            .insert((number, id), bytes.as_slice())?;
        Ok(())
    }

    /// Stores a pending evaluation.
    pub fn put_evaluation(&mut self, evaluation: &Evaluation) -> Result<(), StoreError> {
        let bytes = encode(evaluation)?;
        self.touch(|| Row::Evaluation(evaluation.id.as_str().into()));
        self.evaluations_table()?
            .insert(evaluation.id.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// Removes a finished evaluation; evaluations are work items, not history.
    pub fn delete_evaluation(
        &mut self,
        id: &bacalhau_models::EvaluationId,
    ) -> Result<(), StoreError> {
        self.touch(|| Row::Evaluation(id.as_str().into()));
        self.evaluations_table()?.remove(id.as_str())?;
        Ok(())
    }

    /// Appends an event to the audit log (a job's history, or the node events): gives it the
    /// next global sequence number and chains it to the previous event by hash.
    pub fn add_history(&mut self, mut event: JobHistory) -> Result<u64, StoreError> {
        let node_event = event.r#type == JobHistoryType::NodeLevel;
        let owner = if node_event {
            NODE_EVENT
        } else {
            self.number_for(event.job_id.as_str())?
        };
        let mut meta = self.meta_table()?;
        let seq = meta.get(HISTORY_SEQ)?.map(|v| v.value()).unwrap_or(0) + 1;
        meta.insert(HISTORY_SEQ, seq)?;
        let mut head = self.chain_head_table()?;
        event.seq_num = seq;
        event.prev_hash = head
            .get(CHAIN_HEAD_KEY)?
            .map(|v| v.value().to_string())
            .unwrap_or_default();
        if event.actor.is_empty() {
            event.actor = bacalhau_models::history::SYSTEM_ACTOR.to_string();
        }
        let bytes = event.seal();
        head.insert(CHAIN_HEAD_KEY, event.hash.as_str())?;
        if node_event {
            self.node_history_table()?.insert(seq, bytes.as_slice())?;
        } else {
            self.history_table()?
                .insert((owner, seq), bytes.as_slice())?;
            if self.news.last() != Some(&event.job_id) {
                self.news.push(event.job_id.clone());
            }
        }
        self.history_by_seq_table()?.insert(seq, owner)?;
        drop((meta, head));
        self.touch(|| Row::Meta(HISTORY_SEQ.into()));
        self.touch(|| Row::ChainHead(CHAIN_HEAD_KEY.into()));
        self.touch(|| Row::HistoryBySeq(seq));
        if node_event {
            self.touch(|| Row::NodeHistory(seq));
        } else {
            self.touch(|| Row::History(owner, seq));
        }
        Ok(seq)
    }

    /// Queues a message for `node`, giving it the node's next sequence number.
    pub fn enqueue_message(
        &mut self,
        node: &NodeId,
        message: &bacalhau_protocol::Message,
    ) -> Result<u64, StoreError> {
        let seq = channel::enqueue(self.open.txn, node.as_str(), message)?;
        self.touch(|| Row::Sequence(channel::OUT.into(), node.as_str().into()));
        self.touch(|| Row::Outbox(node.as_str().into(), seq));
        Ok(seq)
    }

    /// Drops the messages for `node` up to `seq`, which the node has applied.
    pub fn trim_outbox(&mut self, node: &NodeId, seq: u64) -> Result<(), StoreError> {
        for n in channel::acknowledged(self.open.txn, node.as_str(), seq)? {
            self.touch(|| Row::Outbox(node.as_str().into(), n));
        }
        Ok(())
    }

    /// Applies `node`'s message `seq` with `handle`, by the channel's rules
    /// ([`channel::apply`]: the next message only, in this transaction with its number).
    pub fn apply_message<T, E>(
        &mut self,
        node: &NodeId,
        seq: u64,
        handle: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<channel::Applied<T>, E>
    where
        E: From<channel::StoreError>,
    {
        self.touch(|| Row::Sequence(channel::IN.into(), node.as_str().into()));
        channel::apply(self, node.as_str(), seq, handle)
    }

    /// Stores a node's state.
    pub fn put_node(&mut self, node: &NodeState) -> Result<(), StoreError> {
        let bytes = encode(node)?;
        self.touch(|| Row::Node(node.info.node_id.as_str().into()));
        self.nodes_table()?
            .insert(node.info.node_id.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// Drops an ended job's records: the job, its versions, its name (when it still names this
    /// job), its place in the creation index and its executions, and takes it out of the
    /// ended-job counts. Its history stays: the audit log keeps every event. Returns `false`
    /// (writing nothing) for a job that is not there or has not ended.
    pub fn delete_job(&mut self, id: &JobId) -> Result<bool, StoreError> {
        let Some(job) = self.job(id)? else {
            return Ok(false);
        };
        if !job.state.state_type.is_terminal() {
            return Ok(false);
        }
        // A job that was read has a number.
        let Some(number) = self.number_of(id.as_str())? else {
            return Ok(false);
        };
        let versions: Vec<u64> = {
            let table = self.job_versions_table()?;
            let mut versions = Vec::new();
            for entry in table.range((number, 0)..=(number, u64::MAX))? {
                versions.push(entry?.0.value().1);
            }
            versions
        };
        let executions: Vec<String> = {
            let table = self.executions_table()?;
            let mut found = Vec::new();
            for entry in table.range(executions_of(number))? {
                found.push(entry?.0.value().1.to_string());
            }
            found
        };
        let named = name_key(&job.namespace, &job.name);
        let names_this = self
            .job_names_table()?
            .get(named.as_str())?
            .is_some_and(|v| v.value() == id.as_str());
        // Every check is made: the writes follow. The job keeps its number: its history
        // stays under it.
        self.touch(|| Row::Job(number));
        self.jobs_table()?.remove(number)?;
        let ended = jobs_ended_key(&job.r#type, job.state.state_type);
        {
            let mut meta = self.meta_table()?;
            let count = meta.get(ended.as_str())?.map_or(0, |v| v.value());
            meta.insert(ended.as_str(), count.saturating_sub(1))?;
        }
        self.touch(|| Row::Meta(ended));
        if names_this {
            self.touch(|| Row::JobName(named.clone()));
            self.job_names_table()?.remove(named.as_str())?;
        }
        self.touch(|| Row::JobByCreate(job.create_time, id.as_str().into()));
        self.jobs_by_create_table()?
            .remove((job.create_time, id.as_str()))?;
        self.index_job(id.as_str(), number, job.create_time, Default::default())?;
        for version in versions {
            self.touch(|| Row::JobVersion(number, version));
            self.job_versions_table()?.remove((number, version))?;
        }
        for execution in executions {
            self.touch(|| Row::Execution(number, execution.clone()));
            self.executions_table()?
                .remove((number, execution.as_str()))?;
        }
        Ok(true)
    }

    /// Keeps `entry` as the cached run for content key `key` (replacing an older one).
    pub fn put_cache_entry(
        &mut self,
        key: &ContentKey,
        entry: &crate::lineage::CacheEntry,
    ) -> Result<(), StoreError> {
        let bytes = encode(entry)?;
        self.touch(|| Row::Cache(key.as_str().into()));
        self.cache_table()?.insert(key.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// Drops the cached run for `key` (its result is no longer fetchable).
    pub fn delete_cache_entry(&mut self, key: &ContentKey) -> Result<(), StoreError> {
        self.touch(|| Row::Cache(key.as_str().into()));
        self.cache_table()?.remove(key.as_str())?;
        Ok(())
    }

    /// Records that `link` read or produced the data `identity` names.
    pub fn put_link(
        &mut self,
        identity: &Identity,
        link: &crate::lineage::Link,
    ) -> Result<(), StoreError> {
        let identity = identity.link();
        let role_job = link.role_job();
        self.touch(|| Row::Link(identity.as_str().into(), role_job.clone()));
        self.links_table()?.insert(
            (identity.as_str(), role_job.as_str()),
            link.execution_id.as_str(),
        )?;
        Ok(())
    }

    /// Removes a node.
    pub fn delete_node(&mut self, id: &NodeId) -> Result<(), StoreError> {
        self.touch(|| Row::Node(id.as_str().into()));
        self.nodes_table()?.remove(id.as_str())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
