//! Lineage records and the result cache, both keyed by content.
//!
//! When a node reports an execution completed, [`record_completion`] (in the same transaction
//! as the report) links each input's identity to the job as read and the result's identity
//! to the job as produced (`lineage_links`), writes a `Lineage` event into the job's history
//! (so the hash-chained audit log holds every link), and, for a job that asked for the cache,
//! keeps the run under the task's content key (`result_cache`).
//!
//! At submission, a job that asks for the cache and whose key is known from its spec alone
//! ([`bacalhau_models::content::job_key`]) is looked up ([`lookup`]); a hit completes it in the
//! submission's own transaction with a copy of the earlier execution's result ([`serve`]):
//! no evaluation, no node. An entry whose result no connected node holds any more is dropped
//! and the job runs.

use crate::scheduler::{NodeView, execution_event, job_event};
use crate::store::{StoreError, Writer};
use bacalhau_models::content::{
    self, CACHED_FROM_DETAIL, CONTENT_KEY_DETAIL, ContentKey, Identity,
};
use bacalhau_models::history::Topic;
use bacalhau_models::lineage::{LineageInput, LineageNode};
use bacalhau_models::{
    Execution, ExecutionDesiredStateType, ExecutionId, ExecutionStateType, Job, JobId,
    JobStateType, NodeId, RunCommandResult, SpecConfig, State, Task, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A run kept for its content key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The job that ran.
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// Its execution whose result is served.
    #[serde(rename = "ExecutionID")]
    pub execution_id: ExecutionId,
    /// The node that ran it.
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    /// Where the result was published.
    #[serde(rename = "PublishedResult", default)]
    pub published_result: Option<SpecConfig>,
    /// Its output and exit code.
    #[serde(rename = "RunOutput", default)]
    pub run_output: Option<RunCommandResult>,
    /// How long the execution took, from its creation to its completion, in nanoseconds:
    /// what a hit saves.
    #[serde(rename = "RunNanos", default)]
    pub run_nanos: i64,
    /// When the entry was written.
    #[serde(rename = "CreateTime", default)]
    pub create_time: Timestamp,
}

/// How a job is linked to data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The job read it.
    Read,
    /// The job produced it.
    Produced,
}

/// A job's link to some data, through one of its executions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Read or produced.
    pub role: Role,
    /// The job.
    pub job_id: JobId,
    /// The execution that did.
    pub execution_id: ExecutionId,
}

impl Link {
    /// The second half of the link's key: `in/<job>` or `out/<job>`.
    pub(crate) fn role_job(&self) -> String {
        let role = match self.role {
            Role::Read => "in",
            Role::Produced => "out",
        };
        format!("{role}/{}", self.job_id)
    }

    pub(crate) fn parse(role_job: &str, execution: &str) -> Option<Self> {
        let (role, job) = role_job.split_once('/')?;
        let role = match role {
            "in" => Role::Read,
            "out" => Role::Produced,
            _ => return None,
        };
        Some(Self {
            role,
            job_id: JobId::from(job),
            execution_id: ExecutionId::from(execution),
        })
    }
}

/// Whether the cache can serve the results of `task`: those it can check are still there. An
/// `ipfs` result is held by the nodes that advertise its CID; without a publisher (or with
/// `noop`) the whole result is the output kept in the record. A `local` archive or an `s3`
/// object is known by place, and whether it is still there cannot be told from here.
pub fn cacheable(task: &Task) -> Result<(), String> {
    match task.publisher.r#type.as_str() {
        "" | "noop" | "ipfs" => Ok(()),
        other => Err(format!(
            "Tasks[0].Publisher.Type: results published with {other:?} are known by place; the cache serves ipfs results (checked by CID) or output without a publisher"
        )),
    }
}

/// Records what a completed execution read and produced, and keeps it in the cache when its
/// job asked: the caller's transaction, so the links exist exactly when the completion does.
pub(crate) fn record_completion(
    w: &mut Writer<'_, '_>,
    job: &Job,
    execution: &Execution,
    now: Timestamp,
) -> Result<(), StoreError> {
    let inputs = content::input_identities(execution);
    // Only a published CID can be another job's input; an output is not hashed here, on the
    // store's writer thread, to be thrown away.
    let result = content::published_cid(execution);
    let key = content::execution_key(execution);
    // Nothing read, nothing published by content (a noop job): no link and no event.
    if !inputs.is_empty() || result.is_some() {
        record_links(
            w,
            job,
            execution,
            &inputs,
            result.as_ref(),
            key.as_ref(),
            now,
        )?;
    }
    let Some(key) = key else {
        return Ok(());
    };
    if !content::wants_cache(job) || content::verify_count(job).is_some() {
        return Ok(());
    }
    // A served copy leaves the entry as it is: it names the run that computed the result and
    // the time that run took.
    if execution
        .compute_state
        .details
        .contains_key(CACHED_FROM_DETAIL)
        || job.task().is_none_or(|t| cacheable(t).is_err())
    {
        return Ok(());
    }
    // Kept only under the key the next submission can compute from its spec: the node's key
    // (from what it fetched and ran) must be that one, or the entry could never be found.
    let findable = content::job_key(job).is_ok_and(|spec_key| {
        if spec_key != key {
            tracing::warn!(job_id = %job.id, execution_id = %execution.id, node = %key, spec = %spec_key, "the node's content key differs from the spec's: not cached");
        }
        spec_key == key
    });
    if findable {
        w.put_cache_entry(
            &key,
            &CacheEntry {
                job_id: job.id.clone(),
                execution_id: execution.id.clone(),
                node_id: execution.node_id.clone(),
                published_result: execution.published_result.clone(),
                run_output: execution.run_output.clone(),
                run_nanos: now.saturating_sub(execution.create_time),
                create_time: now,
            },
        )?;
    }
    Ok(())
}

/// The links and the `Lineage` event of a completed execution.
fn record_links(
    w: &mut Writer<'_, '_>,
    job: &Job,
    execution: &Execution,
    inputs: &[(String, Identity)],
    result: Option<&Identity>,
    key: Option<&ContentKey>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let read = Link {
        role: Role::Read,
        job_id: job.id.clone(),
        execution_id: execution.id.clone(),
    };
    for (_, identity) in inputs {
        w.put_link(identity, &read)?;
    }
    if let Some(result) = result {
        w.put_link(
            result,
            &Link {
                role: Role::Produced,
                ..read.clone()
            },
        )?;
    }
    let mut details = BTreeMap::new();
    for (target, identity) in inputs {
        details.insert(format!("Input:{target}"), identity.to_string());
    }
    if let Some(result) = result {
        details.insert("Result".into(), result.to_string());
    }
    if let Some(key) = key {
        details.insert(CONTENT_KEY_DETAIL.into(), key.to_string());
    }
    let mut event = execution_event(
        job,
        &execution.id,
        Topic::Lineage,
        format!(
            "Read {} input(s); result {}",
            inputs.len(),
            result.map_or("known by place".into(), |r| r.to_string())
        ),
        now,
    );
    event.event.details = details;
    w.add_history(event)?;
    Ok(())
}

/// What the cache holds for a key.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// A run whose result `node` serves.
    Hit { entry: CacheEntry, node: NodeId },
    /// Nothing.
    Miss,
    /// A run whose result no connected node holds any more: the entry is dropped.
    Gone(CacheEntry),
}

/// Looks `key` up: a hit needs its result fetchable now (an `ipfs` result's root pinned on a
/// connected node, the one that ran it first).
pub(crate) fn lookup(
    w: &Writer<'_, '_>,
    key: &ContentKey,
    nodes: &[NodeView],
) -> Result<Lookup, StoreError> {
    let Some(entry) = w.cache_entry(key)? else {
        return Ok(Lookup::Miss);
    };
    let cid = entry
        .published_result
        .as_ref()
        .filter(|r| r.r#type == "ipfs")
        .and_then(|r| r.param_str("CID"))
        .map(|cid| Identity::cid(cid).link());
    let Some(cid) = cid else {
        // The output in the record is the whole result.
        let node = entry.node_id.clone();
        return Ok(Lookup::Hit { entry, node });
    };
    let root = cid.root_cid().unwrap_or_default();
    let holds = |view: &&NodeView| {
        view.connected
            && view
                .state
                .info
                .compute_node_info
                .data_locality
                .ipfs
                .iter()
                .any(|held| held == root)
    };
    let holder = nodes
        .iter()
        .filter(holds)
        .min_by_key(|view| view.id() != &entry.node_id)
        .map(|view| view.id().clone());
    Ok(match holder {
        Some(node) => Lookup::Hit { entry, node },
        None => Lookup::Gone(entry),
    })
}

/// Completes `job` (new, not yet written) from a cached run, in the submission's transaction:
/// an execution on the node that holds the result, copying its result, and the events.
pub(crate) fn serve(
    w: &mut Writer<'_, '_>,
    job: &mut Job,
    key: &ContentKey,
    entry: &CacheEntry,
    node: &NodeId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let id = ExecutionId::generate();
    let source = format!("{}/{}", entry.job_id, entry.execution_id);
    let message = format!(
        "Served from the cache of job {}, execution {}",
        entry.job_id, entry.execution_id
    );
    let mut compute_state = State::with_message(ExecutionStateType::Completed, message.clone());
    compute_state
        .details
        .insert(CACHED_FROM_DETAIL.into(), source.clone());
    compute_state
        .details
        .insert(CONTENT_KEY_DETAIL.into(), key.to_string());
    if let Some(task) = job.task() {
        for input in &task.input_sources {
            if let Ok(identity) = content::spec_identity(input) {
                compute_state.details.insert(
                    format!("{}{}", content::INPUT_CONTENT_DETAIL, input.target),
                    identity.to_string(),
                );
            }
        }
    }
    let execution = Execution {
        name: id.to_string(),
        id,
        namespace: job.namespace.clone(),
        node_id: node.clone(),
        job_id: job.id.clone(),
        job_version: job.version,
        desired_state: State::new(ExecutionDesiredStateType::Stopped),
        compute_state,
        published_result: entry.published_result.clone(),
        run_output: entry.run_output.clone(),
        revision: 1,
        create_time: now,
        modify_time: now,
        ..Default::default()
    };
    w.put_execution(&execution)?;
    let mut details = BTreeMap::new();
    details.insert(CACHED_FROM_DETAIL.into(), source);
    details.insert(CONTENT_KEY_DETAIL.into(), key.to_string());
    details.insert(
        "SavedSeconds".into(),
        format!("{:.3}", entry.run_nanos as f64 / 1e9),
    );
    let mut served = execution_event(job, &execution.id, Topic::Cache, message, now);
    served.event.details = details;
    w.add_history(served)?;
    let mut state_details = BTreeMap::new();
    state_details.insert("NewState".into(), JobStateType::Completed.to_string());
    state_details.insert("PreviousState".into(), job.state.state_type.to_string());
    w.add_history(job_event(
        job,
        Topic::StateUpdate,
        JobStateType::Completed.to_string(),
        state_details,
        now,
    ))?;
    job.state = State::new(JobStateType::Completed);
    record_completion(w, job, &execution, now)
}

/// Records that a cache entry was dropped because its result is gone, on the job that found it.
pub(crate) fn dropped(
    w: &mut Writer<'_, '_>,
    job: &Job,
    key: &ContentKey,
    entry: &CacheEntry,
    now: Timestamp,
) -> Result<(), StoreError> {
    w.delete_cache_entry(key)?;
    let mut details = BTreeMap::new();
    details.insert(CONTENT_KEY_DETAIL.into(), key.to_string());
    details.insert(
        CACHED_FROM_DETAIL.into(),
        format!("{}/{}", entry.job_id, entry.execution_id),
    );
    w.add_history(job_event(
        job,
        Topic::Cache,
        format!(
            "Cache entry of job {} dropped: no connected node holds its result any more; running",
            entry.job_id
        ),
        details,
        now,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_read_back() {
        let link = Link {
            role: Role::Produced,
            job_id: JobId::from("j-1"),
            execution_id: ExecutionId::from("e-1"),
        };
        assert_eq!(link.role_job(), "out/j-1");
        assert_eq!(Link::parse(&link.role_job(), "e-1"), Some(link));
        assert_eq!(Link::parse("sideways/j-1", "e-1"), None);
    }

    #[test]
    fn only_results_checkable_from_here_are_cached() {
        let mut task = Task::default();
        assert!(cacheable(&task).is_ok());
        task.publisher = SpecConfig::of_type("ipfs");
        assert!(cacheable(&task).is_ok());
        task.publisher = SpecConfig::of_type("local");
        assert!(cacheable(&task).unwrap_err().contains("local"));
    }
}

/// Which way a lineage tree grows from its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upstream,
    Downstream,
}

/// The lineage of `job`: the jobs that produced what it read, back `depth` steps, and the
/// jobs that read what it produced, forward as far. A job met twice on one side is shown once;
/// later meetings are marked truncated.
pub(crate) fn tree(
    reader: &crate::store::Reader,
    job: &Job,
    depth: usize,
) -> Result<LineageNode, StoreError> {
    let mut root = node(reader, job)?;
    let mut seen = std::collections::BTreeSet::from([job.id.clone()]);
    grow(reader, &mut root, Direction::Upstream, depth, &mut seen)?;
    let mut seen = std::collections::BTreeSet::from([job.id.clone()]);
    grow(reader, &mut root, Direction::Downstream, depth, &mut seen)?;
    Ok(root)
}

/// One job's own part of the tree: its inputs and result as its latest completed execution
/// recorded them (from the spec when it has none).
fn node(reader: &crate::store::Reader, job: &Job) -> Result<LineageNode, StoreError> {
    let execution = reader
        .executions_of(&job.id)?
        .into_iter()
        .filter(|e| {
            e.job_version == job.version
                && e.compute_state.state_type == ExecutionStateType::Completed
        })
        .max_by_key(|e| e.modify_time);
    let recorded: BTreeMap<String, Identity> = execution
        .as_ref()
        .map(content::input_identities)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let inputs = job
        .task()
        .map(|task| {
            task.input_sources
                .iter()
                .map(|input| {
                    let spec = content::spec_identity(input);
                    let place = match &spec {
                        Ok(_) => String::new(),
                        Err(place) => place.to_string(),
                    };
                    let identity = recorded.get(&input.target).cloned().or_else(|| spec.ok());
                    LineageInput {
                        target: input.target.clone(),
                        source_type: input.source.r#type.clone(),
                        place,
                        identity,
                        produced_by: Vec::new(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(LineageNode {
        job_id: job.id.clone(),
        name: job.name.clone(),
        state: job.state.state_type.to_string(),
        execution_id: execution.as_ref().map(|e| e.id.clone()),
        inputs,
        result: execution.as_ref().and_then(content::result_identity),
        consumed_by: Vec::new(),
        truncated: false,
    })
}

/// The most jobs a lineage tree shows for one piece of data (its readers or producers), so a
/// dataset read by thousands of jobs still answers quickly.
pub const MAX_LINKED_JOBS: usize = 100;

/// The other jobs linked to `identity` in `role`, each once, at most [`MAX_LINKED_JOBS`].
fn linked(
    reader: &crate::store::Reader,
    identity: &Identity,
    role: Role,
    except: &JobId,
) -> Result<Vec<Job>, StoreError> {
    let mut jobs = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for link in reader.links(identity)? {
        if jobs.len() == MAX_LINKED_JOBS {
            break;
        }
        if link.role == role
            && &link.job_id != except
            && ids.insert(link.job_id.clone())
            && let Some(job) = reader.job(&link.job_id)?
        {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

fn grow(
    reader: &crate::store::Reader,
    at: &mut LineageNode,
    direction: Direction,
    depth: usize,
    seen: &mut std::collections::BTreeSet<JobId>,
) -> Result<(), StoreError> {
    if depth == 0 {
        return Ok(());
    }
    let child = |reader: &crate::store::Reader,
                 job: &Job,
                 seen: &mut std::collections::BTreeSet<JobId>|
     -> Result<LineageNode, StoreError> {
        let mut next = node(reader, job)?;
        if seen.insert(job.id.clone()) {
            grow(reader, &mut next, direction, depth - 1, seen)?;
        } else {
            next.truncated = true;
        }
        Ok(next)
    };
    match direction {
        Direction::Upstream => {
            for input in &mut at.inputs {
                let Some(identity) = input.identity.clone() else {
                    continue;
                };
                for job in linked(reader, &identity, Role::Produced, &at.job_id)? {
                    input.produced_by.push(child(reader, &job, seen)?);
                }
            }
        }
        Direction::Downstream => {
            let Some(result) = at.result.clone() else {
                return Ok(());
            };
            for job in linked(reader, &result, Role::Read, &at.job_id)? {
                at.consumed_by.push(child(reader, &job, seen)?);
            }
        }
    }
    Ok(())
}
