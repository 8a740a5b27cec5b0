//! Table definitions of the store; values are JSON-encoded models.

use redb::{TableDefinition, WriteTransaction};

pub(super) const JOBS_NAME: &str = "jobs_by_number";
pub(super) const JOB_VERSIONS_NAME: &str = "job_versions_by_number";
pub(super) const EXECUTIONS_NAME: &str = "executions_by_job";
pub(super) const EVALUATIONS_NAME: &str = "evaluations";
pub(super) const HISTORY_NAME: &str = "history_by_job";
pub(super) const NODES_NAME: &str = "nodes";

// Per-job rows are keyed by the job's number, given in submission order (`JOB_NUMBERS`), not
// by its random ID: a commit's jobs then share the pages at the right edge of each table
// instead of each dirtying a page of its own in every table (redb rewrites every page a
// commit touches; with random keys that was ~14× write amplification and a rate falling
// with the store's size). Only `JOB_NUMBERS` and `JOB_NAMES` take a random key, once per
// job; an execution is found through its job (every caller knows it).

/// Job ID → the job's number: the key of its rows. Kept when the job's records are dropped
/// (its history stays, under the number).
pub(super) const JOB_NUMBERS: TableDefinition<&str, u64> = TableDefinition::new("job_numbers");
/// Job number → latest job.
pub(super) const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new(JOBS_NAME);
/// (job number, version) → that version's job.
pub(super) const JOB_VERSIONS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new(JOB_VERSIONS_NAME);
/// `namespace \0 name` → job ID, for jobs not named by their own ID.
pub(super) const JOB_NAMES: TableDefinition<&str, &str> = TableDefinition::new("job_names");
/// (create time, job ID) → (), for listing in creation order.
pub(super) const JOBS_BY_CREATE: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("jobs_by_create");
/// (job number, execution ID) → execution.
pub(super) const EXECUTIONS: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new(EXECUTIONS_NAME);
/// Evaluation ID → pending evaluation.
pub(super) const EVALUATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new(EVALUATIONS_NAME);
/// (job number, global sequence) → history event.
pub(super) const HISTORY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new(HISTORY_NAME);
/// Global sequence → the job number of a job event, or [`NODE_EVENT`] for a node event: the
/// audit log in order.
pub(super) const HISTORY_BY_SEQ: TableDefinition<u64, u64> = TableDefinition::new("history_order");
/// `HISTORY_BY_SEQ`'s owner of a node event (job numbers start at 1).
pub(super) const NODE_EVENT: u64 = 0;
/// Global sequence → node event (approval, rejection, refused join).
pub(super) const NODE_HISTORY: TableDefinition<u64, &[u8]> =
    TableDefinition::new(NODE_HISTORY_NAME);
pub(super) const NODE_HISTORY_NAME: &str = "node_history";
/// [`CHAIN_HEAD_KEY`] → the hash of the log's last event, which the next one links to.
pub(super) const CHAIN_HEAD: TableDefinition<&str, &str> = TableDefinition::new("chain_head");
pub(super) const CHAIN_HEAD_KEY: &str = "head";
/// Node ID → node state.
pub(super) const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new(NODES_NAME);
/// Job number → job ID, for jobs not in a terminal state: what node joins and capacity
/// re-evaluate.
pub(super) const ACTIVE_JOBS: TableDefinition<u64, &str> =
    TableDefinition::new("active_job_numbers");
/// Content key → the cached run of a task with that key (JSON `cache::CacheEntry`).
pub(super) const CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new(CACHE_NAME);
pub(super) const CACHE_NAME: &str = "result_cache";
/// (identity's link text, `in/<job ID>` or `out/<job ID>`) → execution ID: which jobs read
/// (`in`) or produced (`out`) the data an identity names; lineage in both directions.
pub(super) const LINKS: TableDefinition<(&str, &str), &str> = TableDefinition::new("lineage_links");
/// (index key, create time, job ID) → (): the jobs of each index of `index::JobIndex`, in
/// creation order.
pub(super) const JOB_INDEX: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("job_index");
/// Job number → the index keys its job is entered under (a JSON array): what a change removes.
pub(super) const JOB_INDEXED: TableDefinition<u64, &str> =
    TableDefinition::new("job_indexed_by_number");
/// META key present once `JOB_INDEX` covers every stored job (stores written before the
/// indexes existed are indexed once at open).
pub(super) const JOBS_INDEXED: &str = "jobs_indexed/2";
/// Counters.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last history sequence number handed out.
pub(super) const HISTORY_SEQ: &str = "history_seq";
/// The last job number handed out.
pub(super) const LAST_JOB_NUMBER: &str = "job_number";
/// META keys `jobs_ended/<type>/<state>`: how many jobs of a type rest in a terminal state, kept
/// by `put_job` so the figures need no scan of every job (active jobs are few and counted
/// from `ACTIVE_JOBS`).
pub(super) const JOBS_ENDED_PREFIX: &str = "jobs_ended/";
/// META key present once the `jobs_ended/` counts cover every stored job (stores written
/// before the counts existed are counted once at open).
pub(super) const JOBS_ENDED_COUNTED: &str = "jobs_ended_counted";

/// The META key counting ended jobs of `job_type` in `state`.
pub(super) fn jobs_ended_key(job_type: &str, state: bacalhau_models::JobStateType) -> String {
    format!("{JOBS_ENDED_PREFIX}{job_type}/{state}")
}

/// Creates every table so readers never meet a missing one.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(JOB_NUMBERS)?;
    txn.open_table(JOBS)?;
    txn.open_table(JOB_VERSIONS)?;
    txn.open_table(JOB_NAMES)?;
    txn.open_table(JOBS_BY_CREATE)?;
    txn.open_table(EXECUTIONS)?;
    txn.open_table(EVALUATIONS)?;
    txn.open_table(HISTORY)?;
    txn.open_table(HISTORY_BY_SEQ)?;
    txn.open_table(NODE_HISTORY)?;
    txn.open_table(CHAIN_HEAD)?;
    txn.open_table(NODES)?;
    txn.open_table(META)?;
    txn.open_table(ACTIVE_JOBS)?;
    txn.open_table(CACHE)?;
    txn.open_table(LINKS)?;
    txn.open_table(JOB_INDEX)?;
    txn.open_table(JOB_INDEXED)?;
    // The node channels' outboxes and sequence numbers, keyed by node ID.
    bacalhau_channel::store::create_tables(txn)?;
    legacy::renumber(txn)?;
    count_ended_jobs(txn)?;
    index_jobs(txn)?;
    Ok(())
}

/// Indexes the jobs of a store written before the indexes existed (once; the marker says it
/// is done). Every member of a cluster does the same on the same rows.
fn index_jobs(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    use redb::ReadableTable;
    let mut meta = txn.open_table(META)?;
    if meta.get(JOBS_INDEXED)?.is_some() {
        return Ok(());
    }
    let jobs = txn.open_table(JOBS)?;
    let mut index = txn.open_table(JOB_INDEX)?;
    let mut indexed = txn.open_table(JOB_INDEXED)?;
    for row in jobs.iter()? {
        let (number, bytes) = row?;
        // A record that does not decode is reported where it is read; it is not indexed.
        let Ok(job) = serde_json::from_slice::<bacalhau_models::Job>(bytes.value()) else {
            continue;
        };
        let keys = super::index::JobIndex::keys_of(&job);
        for key in &keys {
            index.insert((key.as_str(), job.create_time, job.id.as_str()), ())?;
        }
        indexed.insert(number.value(), super::index::listed(&keys).as_str())?;
    }
    meta.insert(JOBS_INDEXED, 1)?;
    Ok(())
}

/// A job's type and state: what the ended-job counts need, decoded without the rest.
#[derive(serde::Deserialize)]
pub(super) struct JobKind {
    #[serde(rename = "Type", default)]
    pub r#type: String,
    #[serde(rename = "State", default)]
    pub state: bacalhau_models::State<bacalhau_models::JobStateType>,
}

/// Counts the ended jobs of a store written before the counts were kept (once; the marker
/// says it is done). Every member of a cluster does the same on the same rows.
fn count_ended_jobs(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    use redb::ReadableTable;
    let mut meta = txn.open_table(META)?;
    if meta.get(JOBS_ENDED_COUNTED)?.is_some() {
        return Ok(());
    }
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for row in txn.open_table(JOBS)?.iter()? {
        let (_, bytes) = row?;
        // A record that does not decode is reported where it is read; it is not counted.
        if let Ok(kind) = serde_json::from_slice::<JobKind>(bytes.value())
            && kind.state.state_type.is_terminal()
        {
            *counts
                .entry(jobs_ended_key(&kind.r#type, kind.state.state_type))
                .or_default() += 1;
        }
    }
    for (key, count) in counts {
        meta.insert(key.as_str(), count)?;
    }
    meta.insert(JOBS_ENDED_COUNTED, 1)?;
    Ok(())
}

/// The layout of stores written before per-job rows were keyed by job number, and their
/// move to the current one.
mod legacy {
    use super::*;
    use redb::{ReadableTable, TableHandle};

    const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
    const JOB_VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("job_versions");
    const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
    /// `jobID/execID` → execution ID.
    const JOB_EXECUTIONS: TableDefinition<&str, &str> = TableDefinition::new("job_executions");
    const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
    /// Global sequence → job ID, or "" for a node event.
    const HISTORY_BY_SEQ: TableDefinition<u64, &str> = TableDefinition::new("history_by_seq");
    const ACTIVE_JOBS: TableDefinition<&str, ()> = TableDefinition::new("active_jobs");
    const JOB_INDEXED: TableDefinition<&str, &str> = TableDefinition::new("job_indexed");

    /// Moves a store of the old layout (per-job rows keyed by job ID) to job numbers, once:
    /// the jobs are numbered in creation order, then the jobs only the audit log still names
    /// (their records dropped by retention) in the log's order, so every member of a cluster
    /// gives the same numbers. The old tables are deleted.
    pub(super) fn renumber(txn: &WriteTransaction) -> Result<(), redb::TableError> {
        let old = txn.list_tables()?.any(|table| table.name() == JOBS.name());
        if !old {
            return Ok(());
        }
        let mut numbers = txn.open_table(JOB_NUMBERS)?;
        let mut last = 0u64;
        let mut number = |numbers: &mut redb::Table<&str, u64>, id: &str| {
            if let Some(n) = numbers.get(id)? {
                return Ok::<u64, redb::StorageError>(n.value());
            }
            last += 1;
            numbers.insert(id, last)?;
            Ok(last)
        };
        for row in txn.open_table(JOBS_BY_CREATE)?.iter()? {
            let (key, _) = row?;
            number(&mut numbers, key.value().1)?;
        }
        {
            let old_order = txn.open_table(HISTORY_BY_SEQ)?;
            let mut order = txn.open_table(super::HISTORY_BY_SEQ)?;
            for row in old_order.iter()? {
                let (seq, owner) = row?;
                let owner = match owner.value() {
                    "" => NODE_EVENT,
                    id => number(&mut numbers, id)?,
                };
                order.insert(seq.value(), owner)?;
            }
        }
        // A job record without a place in the creation index (none should be) keeps its
        // record all the same.
        {
            let mut jobs = txn.open_table(super::JOBS)?;
            for row in txn.open_table(JOBS)?.iter()? {
                let (id, bytes) = row?;
                jobs.insert(number(&mut numbers, id.value())?, bytes.value())?;
            }
        }
        for (old, new) in [
            (JOB_VERSIONS, super::JOB_VERSIONS),
            (HISTORY, super::HISTORY),
        ] {
            // (job ID, version or sequence) → record, to (job number, the same) → record.
            let mut new = txn.open_table(new)?;
            for row in txn.open_table(old)?.iter()? {
                let (key, bytes) = row?;
                let (id, n) = key.value();
                new.insert((number(&mut numbers, id)?, n), bytes.value())?;
            }
        }
        {
            let old_executions = txn.open_table(EXECUTIONS)?;
            let mut executions = txn.open_table(super::EXECUTIONS)?;
            for row in txn.open_table(JOB_EXECUTIONS)?.iter()? {
                let (link, execution) = row?;
                let (link, execution) = (link.value(), execution.value());
                let Some(job) = link
                    .strip_suffix(execution)
                    .and_then(|job| job.strip_suffix('/'))
                else {
                    continue;
                };
                let Some(bytes) = old_executions.get(execution)? else {
                    continue;
                };
                let n = number(&mut numbers, job)?;
                executions.insert((n, execution), bytes.value())?;
            }
        }
        {
            let mut active = txn.open_table(super::ACTIVE_JOBS)?;
            for row in txn.open_table(ACTIVE_JOBS)?.iter()? {
                let (id, _) = row?;
                active.insert(number(&mut numbers, id.value())?, id.value())?;
            }
        }
        {
            let mut indexed = txn.open_table(super::JOB_INDEXED)?;
            for row in txn.open_table(JOB_INDEXED)?.iter()? {
                let (id, keys) = row?;
                indexed.insert(number(&mut numbers, id.value())?, keys.value())?;
            }
        }
        drop(numbers);
        txn.open_table(META)?.insert(LAST_JOB_NUMBER, last)?;
        txn.delete_table(JOBS)?;
        txn.delete_table(JOB_VERSIONS)?;
        txn.delete_table(EXECUTIONS)?;
        txn.delete_table(JOB_EXECUTIONS)?;
        txn.delete_table(HISTORY)?;
        txn.delete_table(HISTORY_BY_SEQ)?;
        txn.delete_table(ACTIVE_JOBS)?;
        txn.delete_table(JOB_INDEXED)?;
        Ok(())
    }
}
