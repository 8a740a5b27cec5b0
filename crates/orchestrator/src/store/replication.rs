//! The store's half of replication: what a group of writes changed, as [`Change`]s that any
//! member applies to the same tables, and the [`Commit`] hook that hands them to a
//! [`Replicate`] (the Raft group of `bacalhau-cluster`) instead of committing locally.
//!
//! A replicated write runs as every write does, in the group's transaction on the writer
//! thread, so its checks see every earlier write; [`Writer`](super::Writer) notes each row it
//! touches. At commit, the hook reads those rows' final values, drops the transaction and
//! blocks until the group has committed the changes and this member applied them (through
//! [`apply`], the state machine's one way in). The next group begins only then, so it reads
//! what the previous one wrote. Changes carry values, not operations: a member applies
//! them without running any logic of its own, so the stores (and the audit hash chain) are
//! byte-for-byte the same on every member.

use super::StoreError;
use super::tables::*;
use bacalhau_channel::store::{OUTBOX, SEQUENCES};
use bacalhau_durable::{Commit, DurableError};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A row of one of the store's tables, by its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Row {
    /// `job_numbers`: job ID.
    JobNumber(String),
    /// `jobs_by_number`: job number.
    Job(u64),
    /// `job_versions_by_number`: job number, version.
    JobVersion(u64, u64),
    /// `job_names`: namespace `\0` name.
    JobName(String),
    /// `jobs_by_create`: create time, job ID.
    JobByCreate(i64, String),
    /// `executions_by_job`: job number, execution ID.
    Execution(u64, String),
    /// `evaluations`: evaluation ID.
    Evaluation(String),
    /// `history_by_job`: job number, global sequence.
    History(u64, u64),
    /// `history_order`: global sequence.
    HistoryBySeq(u64),
    /// `node_history`: global sequence.
    NodeHistory(u64),
    /// `chain_head`: its one key.
    ChainHead(String),
    /// `nodes`: node ID.
    Node(String),
    /// `active_job_numbers`: job number.
    ActiveJob(u64),
    /// `meta`: counter name.
    Meta(String),
    /// The channel's `outbox`: node ID, sequence.
    Outbox(String, u64),
    /// `result_cache`: content key.
    Cache(String),
    /// `lineage_links`: identity, role and job.
    Link(String, String),
    /// The channel's `sequences`: direction, node ID.
    Sequence(String, String),
    /// `job_index`: index key, create time, job ID.
    JobIndex(String, i64, String),
    /// `job_indexed_by_number`: job number.
    JobIndexed(u64),
}

/// A row's value. Every byte value the store keeps is JSON, so it travels as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A JSON record (jobs, executions, messages...).
    Json(String),
    /// A text value (an index's target ID, the chain head's hash).
    Text(String),
    /// A set member (`active_jobs`, `jobs_by_create`).
    Unit,
    /// A counter or sequence number.
    Number(u64),
}

/// One row's new value (`None`: removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The row.
    pub row: Row,
    /// Its value after the write; `None` when the write removed it.
    pub value: Option<Value>,
}

/// Why a replicated write did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplicationError {
    /// This member is not the group's leader; writes go to the leader (its API address when
    /// known).
    #[error("this orchestrator is not the cluster's leader{}", leader_hint(.leader))]
    NotLeader {
        /// The leader's API address, when one is known.
        leader: Option<String>,
    },
    /// The group could not commit (no majority, shutting down...).
    #[error("the orchestrator cluster did not commit the write: {0}")]
    Failed(String),
}

fn leader_hint(leader: &Option<String>) -> String {
    leader
        .as_ref()
        .map(|l| format!(" (the leader is {l})"))
        .unwrap_or_else(|| " (no leader is known yet)".to_string())
}

/// What a replicated store asks of its group.
pub trait Replicate: Send + Sync + 'static {
    /// Blocks until this member may write: it leads the group and has applied every entry
    /// committed before its term. Called before each group of writes.
    fn ready(&self) -> Result<(), ReplicationError>;
    /// Blocks until the group has committed `changes` and this member has applied them.
    fn replicate(&self, changes: Vec<Change>) -> Result<(), ReplicationError>;
}

/// The rows the current group of writes touched, in the order first touched.
#[derive(Default)]
pub(super) struct Journal {
    rows: Vec<Row>,
    seen: HashSet<Row>,
}

impl Journal {
    pub(super) fn touch(&mut self, row: Row) {
        if self.seen.insert(row.clone()) {
            self.rows.push(row);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Forgets rows touched after the first `len` (a write that failed its checks).
    pub(super) fn truncate(&mut self, len: usize) {
        for row in self.rows.drain(len..) {
            self.seen.remove(&row);
        }
    }

    pub(super) fn take(&mut self) -> Vec<Row> {
        self.seen.clear();
        std::mem::take(&mut self.rows)
    }
}

/// The [`Commit`] hook of a replicated store.
pub(super) struct ReplicatedCommit {
    pub(super) journal: Arc<Mutex<Journal>>,
    pub(super) group: Arc<dyn Replicate>,
}

impl ReplicatedCommit {
    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Commit for ReplicatedCommit {
    fn begin(&mut self) -> Result<(), DurableError> {
        self.journal().take();
        self.group
            .ready()
            .map_err(|e| DurableError::NotCommitted(e.to_string()))
    }

    fn commit(&mut self, txn: WriteTransaction) -> Result<(), DurableError> {
        let rows = self.journal().take();
        let changes = changes(&txn, rows).map_err(|e| DurableError::Db(e.to_string()))?;
        // Nothing is kept from the staging transaction: the changes come back through
        // `apply`, on this member as on the others, once the group has committed them.
        txn.abort()?;
        if changes.is_empty() {
            return Ok(());
        }
        self.group
            .replicate(changes)
            .map_err(|e| DurableError::NotCommitted(e.to_string()))
    }

    fn aborted(&mut self) {
        self.journal().take();
    }
}

/// Calls `$callback!` with every [`Row`] variant: its fields, its table and its key (an
/// expression over the fields), so each use below names every table exactly once.
macro_rules! row_tables {
    ($callback:ident!($($args:tt)*)) => {
        $callback!(($($args)*)
            JobNumber(id) => JOB_NUMBERS, id.as_str();
            Job(number) => JOBS, *number;
            JobVersion(number, v) => JOB_VERSIONS, (*number, *v);
            JobName(name) => JOB_NAMES, name.as_str();
            JobByCreate(t, id) => JOBS_BY_CREATE, (*t, id.as_str());
            Execution(number, id) => EXECUTIONS, (*number, id.as_str());
            Evaluation(id) => EVALUATIONS, id.as_str();
            History(number, seq) => HISTORY, (*number, *seq);
            HistoryBySeq(seq) => HISTORY_BY_SEQ, *seq;
            NodeHistory(seq) => NODE_HISTORY, *seq;
            ChainHead(k) => CHAIN_HEAD, k.as_str();
            Node(id) => NODES, id.as_str();
            ActiveJob(number) => ACTIVE_JOBS, *number;
            Meta(k) => META, k.as_str();
            Outbox(node, seq) => OUTBOX, (node.as_str(), *seq);
            Sequence(dir, node) => SEQUENCES, (dir.as_str(), node.as_str());
            Cache(key) => CACHE, key.as_str();
            Link(identity, role) => LINKS, (identity.as_str(), role.as_str());
            JobIndex(index, t, id) => JOB_INDEX, (index.as_str(), *t, id.as_str());
            JobIndexed(number) => JOB_INDEXED, *number;
        )
    };
}

/// Runs `$body` with `$table` opened as the table of `$row`, its key bound to `$key`.
macro_rules! with_row {
    ($txn:expr, $row:expr, |$table:ident, $key:ident| $body:expr) => {
        row_tables!(with_row_arms!($txn, $row, $table, $key, $body))
    };
}

macro_rules! with_row_arms {
    (($txn:expr, $row:expr, $table:ident, $key:ident, $body:expr)
     $($variant:ident($($field:ident),*) => $def:expr, $key_expr:expr;)*) => {
        match $row {
            $(Row::$variant($($field),*) => {
                let $key = $key_expr;
                let mut $table = $txn.open_table($def)?;
                $body
            })*
        }
    };
}

/// Pushes each row of `$run` (all of one table) with the value it holds in `$txn`, the table
/// opened once for all of them.
macro_rules! read_run_arms {
    (($txn:expr, $run:expr, $out:expr)
     $($variant:ident($($field:ident),*) => $def:expr, $key_expr:expr;)*) => {
        match $run.first() {
            None => {}
            $(Some(Row::$variant(..)) => {
                let mut table = $txn.open_table($def)?;
                for row in $run {
                    let value = match &row {
                        Row::$variant($($field),*) => get(&mut table, $key_expr)?,
                        // Runs hold rows of one table only.
                        _ => continue,
                    };
                    $out.push(Change { row, value });
                }
            })*
        }
    };
}

/// Turns a stored value into a [`Value`] and back; one impl per value type of the tables.
trait Stored: redb::Value {
    fn to_value(value: Self::SelfType<'_>) -> Result<Value, StoreError>;
    fn from_value(value: &Value) -> Option<Self::SelfType<'_>>;
}

impl Stored for &[u8] {
    fn to_value(value: &[u8]) -> Result<Value, StoreError> {
        String::from_utf8(value.to_vec())
            .map(Value::Json)
            .map_err(|e| StoreError::Corrupt {
                table: "a replicated table",
                reason: format!("a value is not JSON text: {e}"),
            })
    }
    fn from_value(value: &Value) -> Option<&[u8]> {
        match value {
            Value::Json(text) => Some(text.as_bytes()),
            _ => None,
        }
    }
}

impl Stored for &str {
    fn to_value(value: &str) -> Result<Value, StoreError> {
        Ok(Value::Text(value.to_string()))
    }
    fn from_value(value: &Value) -> Option<&str> {
        match value {
            Value::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }
}

impl Stored for () {
    fn to_value((): ()) -> Result<Value, StoreError> {
        Ok(Value::Unit)
    }
    fn from_value(value: &Value) -> Option<()> {
        matches!(value, Value::Unit).then_some(())
    }
}

impl Stored for u64 {
    fn to_value(value: u64) -> Result<Value, StoreError> {
        Ok(Value::Number(value))
    }
    fn from_value(value: &Value) -> Option<u64> {
        match value {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// Each of `rows` with the value it holds in `txn` now: what a group wrote.
pub(super) fn changes(txn: &WriteTransaction, rows: Vec<Row>) -> Result<Vec<Change>, StoreError> {
    // Rows by table, each in the order first touched: a table is opened once per group, not
    // once per row (opening one is most of a row's read). A group touches each row once, so
    // the order across tables does not matter to `apply`.
    let mut runs: Vec<(std::mem::Discriminant<Row>, Vec<Row>)> = Vec::new();
    for row in rows {
        let table = std::mem::discriminant(&row);
        match runs.iter_mut().find(|(t, _)| *t == table) {
            Some((_, run)) => run.push(row),
            None => runs.push((table, vec![row])),
        }
    }
    let mut out = Vec::new();
    for (_, run) in runs {
        row_tables!(read_run_arms!(txn, run, out));
    }
    Ok(out)
}

/// The value the row at `key` of `table` holds.
fn get<K: redb::Key + 'static, V: Stored + 'static>(
    table: &mut redb::Table<'_, K, V>,
    key: K::SelfType<'_>,
) -> Result<Option<Value>, StoreError> {
    match table.get(key)? {
        Some(value) => Ok(Some(V::to_value(value.value())?)),
        None => Ok(None),
    }
}

/// Applies a group's changes in `txn`: the state machine's one way into the store.
pub fn apply(txn: &WriteTransaction, changes: &[Change]) -> Result<(), StoreError> {
    fn set<K: redb::Key + 'static, V: Stored + 'static>(
        table: &mut redb::Table<'_, K, V>,
        key: K::SelfType<'_>,
        value: Option<&Value>,
    ) -> Result<(), StoreError> {
        match value {
            Some(value) => {
                let value = V::from_value(value).ok_or_else(|| StoreError::Corrupt {
                    table: "a replicated change",
                    reason: format!("{value:?} is not of its table's kind"),
                })?;
                table.insert(key, value)?;
            }
            None => {
                table.remove(key)?;
            }
        }
        Ok(())
    }
    for change in changes {
        with_row!(txn, &change.row, |table, key| set(
            &mut table,
            key,
            change.value.as_ref()
        ))?;
    }
    Ok(())
}

/// Every row of every replicated table, as changes that rebuild the store from empty (a
/// snapshot).
pub fn dump(txn: &ReadTransaction) -> Result<Vec<Change>, StoreError> {
    fn all<K, V>(
        txn: &ReadTransaction,
        definition: TableDefinition<K, V>,
        out: &mut Vec<Change>,
        row: impl Fn(K::SelfType<'_>) -> Row,
    ) -> Result<(), StoreError>
    where
        K: redb::Key + 'static,
        V: Stored + 'static,
    {
        let table = txn.open_table(definition)?;
        for entry in table.iter()? {
            let (key, value) = entry?;
            out.push(Change {
                row: row(key.value()),
                value: Some(V::to_value(value.value())?),
            });
        }
        Ok(())
    }
    let mut out = Vec::new();
    all(txn, JOB_NUMBERS, &mut out, |k| Row::JobNumber(k.into()))?;
    all(txn, JOBS, &mut out, Row::Job)?;
    all(txn, JOB_VERSIONS, &mut out, |(n, v)| Row::JobVersion(n, v))?;
    all(txn, JOB_NAMES, &mut out, |k| Row::JobName(k.into()))?;
    all(txn, JOBS_BY_CREATE, &mut out, |(t, k)| {
        Row::JobByCreate(t, k.into())
    })?;
    all(txn, EXECUTIONS, &mut out, |(n, k)| {
        Row::Execution(n, k.into())
    })?;
    all(txn, EVALUATIONS, &mut out, |k| Row::Evaluation(k.into()))?;
    all(txn, HISTORY, &mut out, |(n, s)| Row::History(n, s))?;
    all(txn, HISTORY_BY_SEQ, &mut out, Row::HistoryBySeq)?;
    all(txn, NODE_HISTORY, &mut out, Row::NodeHistory)?;
    all(txn, CHAIN_HEAD, &mut out, |k| Row::ChainHead(k.into()))?;
    all(txn, NODES, &mut out, |k| Row::Node(k.into()))?;
    all(txn, ACTIVE_JOBS, &mut out, Row::ActiveJob)?;
    all(txn, META, &mut out, |k| Row::Meta(k.into()))?;
    all(txn, OUTBOX, &mut out, |(n, s)| Row::Outbox(n.into(), s))?;
    all(txn, SEQUENCES, &mut out, |(d, n)| {
        Row::Sequence(d.into(), n.into())
    })?;
    all(txn, CACHE, &mut out, |k| Row::Cache(k.into()))?;
    all(txn, LINKS, &mut out, |(i, r)| Row::Link(i.into(), r.into()))?;
    all(txn, JOB_INDEX, &mut out, |(k, t, id)| {
        Row::JobIndex(k.into(), t, id.into())
    })?;
    all(txn, JOB_INDEXED, &mut out, Row::JobIndexed)?;
    Ok(out)
}

/// Empties every replicated table (before installing a snapshot).
pub fn clear(txn: &WriteTransaction) -> Result<(), StoreError> {
    fn empty<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &WriteTransaction,
        definition: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        txn.open_table(definition)?.retain(|_, _| false)?;
        Ok(())
    }
    empty(txn, JOB_NUMBERS)?;
    empty(txn, JOBS)?;
    empty(txn, JOB_VERSIONS)?;
    empty(txn, JOB_NAMES)?;
    empty(txn, JOBS_BY_CREATE)?;
    empty(txn, EXECUTIONS)?;
    empty(txn, EVALUATIONS)?;
    empty(txn, HISTORY)?;
    empty(txn, HISTORY_BY_SEQ)?;
    empty(txn, NODE_HISTORY)?;
    empty(txn, CHAIN_HEAD)?;
    empty(txn, NODES)?;
    empty(txn, ACTIVE_JOBS)?;
    empty(txn, META)?;
    empty(txn, OUTBOX)?;
    empty(txn, SEQUENCES)?;
    empty(txn, CACHE)?;
    empty(txn, LINKS)?;
    empty(txn, JOB_INDEX)?;
    empty(txn, JOB_INDEXED)?;
    Ok(())
}
