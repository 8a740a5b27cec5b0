//! Table definitions of the store; values are JSON-encoded models.

use redb::{TableDefinition, WriteTransaction};

pub(super) const JOBS_NAME: &str = "jobs";
pub(super) const JOB_VERSIONS_NAME: &str = "job_versions";
pub(super) const EXECUTIONS_NAME: &str = "executions";
pub(super) const EVALUATIONS_NAME: &str = "evaluations";
pub(super) const HISTORY_NAME: &str = "history";
pub(super) const NODES_NAME: &str = "nodes";

/// Job ID → latest job.
pub(super) const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new(JOBS_NAME);
/// (job ID, version) → that version's job.
pub(super) const JOB_VERSIONS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new(JOB_VERSIONS_NAME);
/// `namespace \0 name` → job ID.
pub(super) const JOB_NAMES: TableDefinition<&str, &str> = TableDefinition::new("job_names");
/// (create time, job ID) → (), for listing in creation order.
pub(super) const JOBS_BY_CREATE: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("jobs_by_create");
/// Execution ID → execution.
pub(super) const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new(EXECUTIONS_NAME);
/// `jobID/execID` → execution ID.
pub(super) const JOB_EXECUTIONS: TableDefinition<&str, &str> =
    TableDefinition::new("job_executions");
/// Evaluation ID → pending evaluation.
pub(super) const EVALUATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new(EVALUATIONS_NAME);
/// (job ID, global sequence) → history event.
pub(super) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new(HISTORY_NAME);
/// Global sequence → the job ID of a job event, or "" for a node event: the audit log in order.
pub(super) const HISTORY_BY_SEQ: TableDefinition<u64, &str> =
    TableDefinition::new("history_by_seq");
/// Global sequence → node event (approval, rejection, refused join).
pub(super) const NODE_HISTORY: TableDefinition<u64, &[u8]> =
    TableDefinition::new(NODE_HISTORY_NAME);
pub(super) const NODE_HISTORY_NAME: &str = "node_history";
/// [`CHAIN_HEAD_KEY`] → the hash of the log's last event, which the next one links to.
pub(super) const CHAIN_HEAD: TableDefinition<&str, &str> = TableDefinition::new("chain_head");
pub(super) const CHAIN_HEAD_KEY: &str = "head";
/// Node ID → node state.
pub(super) const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new(NODES_NAME);
/// Job ID → (), for jobs not in a terminal state: what node joins and capacity re-evaluate.
pub(super) const ACTIVE_JOBS: TableDefinition<&str, ()> = TableDefinition::new("active_jobs");
/// Counters.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last history sequence number handed out.
pub(super) const HISTORY_SEQ: &str = "history_seq";

/// Creates every table so readers never meet a missing one.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(JOBS)?;
    txn.open_table(JOB_VERSIONS)?;
    txn.open_table(JOB_NAMES)?;
    txn.open_table(JOBS_BY_CREATE)?;
    txn.open_table(EXECUTIONS)?;
    txn.open_table(JOB_EXECUTIONS)?;
    txn.open_table(EVALUATIONS)?;
    txn.open_table(HISTORY)?;
    txn.open_table(HISTORY_BY_SEQ)?;
    txn.open_table(NODE_HISTORY)?;
    txn.open_table(CHAIN_HEAD)?;
    txn.open_table(NODES)?;
    txn.open_table(META)?;
    txn.open_table(ACTIVE_JOBS)?;
    // The node channels' outboxes and sequence numbers, keyed by node ID.
    bacalhau_channel::store::create_tables(txn)?;
    Ok(())
}
