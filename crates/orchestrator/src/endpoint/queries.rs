//! Queries: a job by ID, prefix or name, its versions, executions, history and results, job
//! listings in pages, the audit log and the store's figures. Nothing here writes.

use super::{Orchestrator, STORE_FILE, not_found};
use crate::error::OrchestratorError;
use crate::store::{JobIndex, Reader, StoreError};
use bacalhau_models::selector::LabelSelectorRequirement;
use bacalhau_models::{
    Execution, Job, JobHistory, JobHistoryType, JobId, JobStateType, SpecConfig, time,
};

/// How often [`Orchestrator::wait_job`] reads the job again when no commit woke it.
pub const WAIT_REREAD: std::time::Duration = std::time::Duration::from_millis(250);

/// Which jobs to list and in what order.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only this namespace; `*` for all; empty for `default`.
    pub namespace: String,
    /// Only jobs whose labels match every requirement.
    pub labels: Vec<LabelSelectorRequirement>,
    /// Page size; 0 for the default.
    pub limit: usize,
    /// Newest first when true.
    pub reverse: bool,
    /// A token from a previous page.
    pub next_token: Option<String>,
    /// Only jobs in one of these states; empty for every state.
    pub states: Vec<JobStateType>,
}

/// Which versions of a job a query covers: upstream's `job_version` and `all_job_versions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobVersions {
    /// Every version.
    #[default]
    All,
    /// Only the job's current version.
    Latest,
    /// Only this version.
    Only(u64),
}

impl JobVersions {
    /// Whether something of `version` is covered, for a job whose current version is `latest`.
    pub fn covers(self, version: u64, latest: u64) -> bool {
        match self {
            Self::All => true,
            Self::Latest => version == latest,
            Self::Only(wanted) => version == wanted,
        }
    }
}

/// Which history events to return.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// `all`, `job` or `execution`; empty for all.
    pub event_type: String,
    /// Only events of this execution.
    pub execution_id: Option<String>,
    /// Only events at or after this Unix time, in seconds.
    pub since: i64,
    /// Only events of these versions of the job.
    pub versions: JobVersions,
    /// Page size; 0 for all.
    pub limit: usize,
    /// A token from a previous page.
    pub next_token: Option<String>,
}

/// The page size of job listings when none is asked for.
pub const DEFAULT_PAGE: usize = 100;

impl Orchestrator {
    /// Finds a job by full ID, unique ID prefix, or name in `namespace`.
    pub fn job(&self, id_or_name: &str, namespace: &str) -> Result<Job, OrchestratorError> {
        let reader = self.store.read()?;
        resolve(&reader, id_or_name, namespace)
    }

    /// Waits until job `id_or_name` has ended or, with `after`, has a history event numbered
    /// above it, for at most `timeout`; answers the job then (as it is at the deadline when
    /// neither came). Woken by the store's commits; a follower of a replicated store, which
    /// its leader's commits do not wake, reads again every [`WAIT_REREAD`].
    pub async fn wait_job(
        &self,
        id_or_name: &str,
        namespace: &str,
        after: Option<u64>,
        timeout: std::time::Duration,
    ) -> Result<Job, OrchestratorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let id = self.job(id_or_name, namespace)?.id;
        // Watching begins before the read, so an event written between them still wakes us.
        let mut watch = self.store.watch_job(&id);
        loop {
            let reader = self.store.read()?;
            let job = resolve(&reader, id.as_str(), namespace)?;
            let news = match after {
                Some(after) => reader.last_event_of(&id)? > after,
                None => false,
            };
            if news || job.state.state_type.is_terminal() {
                return Ok(job);
            }
            drop(reader);
            tokio::select! {
                () = watch.changed() => {}
                () = tokio::time::sleep(WAIT_REREAD) => {}
                () = tokio::time::sleep_until(deadline) => return Ok(job),
            }
        }
    }

    /// One version of a job's spec.
    pub fn job_version(
        &self,
        id_or_name: &str,
        namespace: &str,
        version: u64,
    ) -> Result<Job, OrchestratorError> {
        let reader = self.store.read()?;
        let job = resolve(&reader, id_or_name, namespace)?;
        reader
            .job_version(&job.id, version)?
            .ok_or_else(|| not_found("job version", format!("{} version {version}", job.id)))
    }

    /// Every version of a job, oldest first.
    pub fn job_versions(
        &self,
        id_or_name: &str,
        namespace: &str,
    ) -> Result<Vec<Job>, OrchestratorError> {
        let reader = self.store.read()?;
        let job = resolve(&reader, id_or_name, namespace)?;
        Ok(reader.job_versions(&job.id)?)
    }

    /// A page of jobs and the token of the next page, if any.
    pub fn list_jobs(
        &self,
        query: &JobQuery,
    ) -> Result<(Vec<Job>, Option<String>), OrchestratorError> {
        let limit = if query.limit == 0 {
            DEFAULT_PAGE
        } else {
            query.limit
        };
        let namespace = if query.namespace.is_empty() {
            bacalhau_models::DEFAULT_NAMESPACE
        } else {
            query.namespace.as_str()
        };
        let mut cursor = match &query.next_token {
            Some(token) => Some(parse_job_token(token)?),
            None => None,
        };
        let reader = self.store.read()?;
        let walk = Walk {
            reader: &reader,
            groups: index_groups(query, namespace),
            reverse: query.reverse,
        };
        let mut jobs = Vec::new();
        loop {
            let (batch, exhausted) = walk.next(cursor.as_ref(), limit.max(64))?;
            for (create_time, id) in batch {
                cursor = Some((create_time, id.to_string()));
                let Some(job) = reader.job(&id)? else {
                    continue;
                };
                if namespace != "*" && job.namespace != namespace {
                    continue;
                }
                if !query.labels.iter().all(|r| r.matches(&job.labels)) {
                    continue;
                }
                if !query.states.is_empty() && !query.states.contains(&job.state.state_type) {
                    continue;
                }
                jobs.push(job);
                if jobs.len() == limit {
                    // More may follow; the token resumes after this job.
                    let token = cursor.as_ref().map(|(t, id)| format!("{t}.{id}"));
                    let more = !walk.next(cursor.as_ref(), 1)?.0.is_empty();
                    return Ok((jobs, token.filter(|_| more)));
                }
            }
            if exhausted {
                return Ok((jobs, None));
            }
        }
    }

    /// The executions of a job's `versions`, in creation order.
    pub fn executions(
        &self,
        id_or_name: &str,
        namespace: &str,
        versions: JobVersions,
    ) -> Result<Vec<Execution>, OrchestratorError> {
        let reader = self.store.read()?;
        let job = resolve(&reader, id_or_name, namespace)?;
        let mut executions = reader.executions_of(&job.id)?;
        executions.retain(|e| versions.covers(e.job_version, job.version));
        Ok(executions)
    }

    /// A job's history, filtered, and the token of the next page, if any.
    pub fn history(
        &self,
        id_or_name: &str,
        namespace: &str,
        query: &HistoryQuery,
    ) -> Result<(Vec<JobHistory>, Option<String>), OrchestratorError> {
        let reader = self.store.read()?;
        let job = resolve(&reader, id_or_name, namespace)?;
        let wanted_type = match query.event_type.as_str() {
            "" | "all" => None,
            "job" => Some(JobHistoryType::JobLevel),
            "execution" => Some(JobHistoryType::ExecutionLevel),
            other => {
                return Err(OrchestratorError::Invalid(format!(
                    "invalid event_type {other:?}: use all, job or execution"
                )));
            }
        };
        let since_ns = query.since.saturating_mul(1_000_000_000);
        let offset = match &query.next_token {
            Some(token) => token
                .parse::<usize>()
                .map_err(|_| OrchestratorError::Invalid(format!("invalid next_token {token:?}")))?,
            None => 0,
        };
        let events: Vec<JobHistory> = reader
            .history_of(&job.id)?
            .into_iter()
            .filter(|e| query.versions.covers(e.job_version, job.version))
            .filter(|e| wanted_type.is_none_or(|t| e.r#type == t))
            .filter(|e| {
                query.execution_id.as_deref().is_none_or(|x| {
                    e.execution_id
                        .as_ref()
                        .is_some_and(|id| id.as_str().starts_with(x))
                })
            })
            .filter(|e| since_ns == 0 || time::parse_rfc3339(&e.time).unwrap_or(0) >= since_ns)
            .skip(offset)
            .collect();
        if query.limit > 0 && events.len() > query.limit {
            let page = events.into_iter().take(query.limit).collect();
            return Ok((page, Some((offset + query.limit).to_string())));
        }
        Ok((events, None))
    }

    /// Where the completed executions of the job's current version published their results.
    pub fn results(
        &self,
        id_or_name: &str,
        namespace: &str,
    ) -> Result<Vec<SpecConfig>, OrchestratorError> {
        let reader = self.store.read()?;
        let job = resolve(&reader, id_or_name, namespace)?;
        let mut results: Vec<SpecConfig> = Vec::new();
        let published = reader
            .executions_of(&job.id)?
            .into_iter()
            .filter(|e| {
                e.job_version == job.version
                    && e.compute_state.state_type == bacalhau_models::ExecutionStateType::Completed
            })
            .filter_map(|e| e.published_result)
            .filter(|r| !r.is_empty());
        // The replicas of a verified job agree on one result: it is served once.
        for result in published {
            if !results.contains(&result) {
                results.push(result);
            }
        }
        Ok(results)
    }

    /// A job's lineage, `depth` steps up and down: which jobs produced the data it read and
    /// which read what it produced, linked by content identity.
    pub fn lineage(
        &self,
        id_or_name: &str,
        namespace: &str,
        depth: usize,
    ) -> Result<bacalhau_models::lineage::LineageNode, OrchestratorError> {
        let reader = self.store.read()?;
        let job = resolve(&reader, id_or_name, namespace)?;
        Ok(crate::lineage::tree(&reader, &job, depth)?)
    }

    /// Up to `limit` events of the audit log (job and node events, hash-chained) after
    /// sequence number `since`, in order.
    pub fn audit_log(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<JobHistory>, OrchestratorError> {
        Ok(self.store.read()?.audit_log(since, limit)?)
    }

    /// The store's size in bytes: its file and the redo log beside it (with the log's blocks
    /// written ahead of its records: it is the disk they take).
    pub fn store_size(&self) -> Result<u64, OrchestratorError> {
        let path = self.config.data_dir.join(STORE_FILE);
        let file = std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| StoreError::Db(format!("cannot read {}: {e}", path.display())))?;
        // No log yet is an empty one.
        let log = std::fs::metadata(crate::store::log_path(&path)).map_or(0, |m| m.len());
        Ok(file + log)
    }

    /// How many jobs are stored.
    pub fn job_count(&self) -> Result<u64, OrchestratorError> {
        Ok(self.store.read()?.job_count()?)
    }
}

fn parse_job_token(token: &str) -> Result<(i64, String), OrchestratorError> {
    token
        .split_once('.')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_string())))
        .ok_or_else(|| OrchestratorError::Invalid(format!("invalid next_token {token:?}")))
}

/// The indexes a listing intersects, as groups: a job can be listed only if it is in one
/// index of every group. Each label equality (`team=ml`, `team in (ml,web)`) is a group, and so
/// is the namespace with the states asked for (or the whole namespace), or, in every
/// namespace, the states asked for. No group: all jobs in creation order. Whatever the
/// indexes, each job read is still checked against the whole query.
fn index_groups(query: &JobQuery, namespace: &str) -> Vec<Vec<JobIndex>> {
    use bacalhau_models::selector::Operator;
    let mut groups: Vec<Vec<JobIndex>> = query
        .labels
        .iter()
        .filter(|r| {
            matches!(
                r.operator,
                Operator::Equals | Operator::DoubleEquals | Operator::In
            )
        })
        .map(|r| {
            r.values
                .iter()
                .map(|value| JobIndex::Label(r.key.clone(), value.clone()))
                .collect()
        })
        .collect();
    match (namespace, query.states.is_empty()) {
        ("*", true) => {}
        ("*", false) => groups.push(query.states.iter().map(|s| JobIndex::State(*s)).collect()),
        (namespace, true) => groups.push(vec![JobIndex::Namespace(namespace.to_string())]),
        (namespace, false) => groups.push(
            query
                .states
                .iter()
                .map(|s| JobIndex::NamespaceState(namespace.to_string(), *s))
                .collect(),
        ),
    }
    groups
}

/// Walks job IDs in creation order: every job, one group of indexes merged, or several
/// groups intersected.
struct Walk<'a> {
    reader: &'a Reader,
    groups: Vec<Vec<JobIndex>>,
    reverse: bool,
}

impl Walk<'_> {
    /// Up to `n` IDs after `cursor`, and whether they are the last.
    fn next(
        &self,
        cursor: Option<&(i64, String)>,
        n: usize,
    ) -> Result<(Vec<(i64, JobId)>, bool), StoreError> {
        let after = cursor.map(|(t, id)| (*t, id.as_str()));
        match self.groups.as_slice() {
            [] => {
                let batch = self.reader.job_ids_by_create_time(self.reverse, after, n)?;
                let exhausted = batch.len() < n;
                Ok((batch, exhausted))
            }
            [one] => self.merged(one, after, n),
            several => self.intersected(several, after, n),
        }
    }

    /// One group: its indexes' entries merged. The first `n` of the merge are among the
    /// first `n` of each index.
    fn merged(
        &self,
        group: &[JobIndex],
        after: Option<(i64, &str)>,
        n: usize,
    ) -> Result<(Vec<(i64, JobId)>, bool), StoreError> {
        let mut merged = Vec::new();
        let mut each_short = true;
        for index in group {
            let batch = self.reader.job_ids_in(index, self.reverse, after, n)?;
            each_short &= batch.len() < n;
            merged.extend(batch);
        }
        merged.sort();
        merged.dedup();
        if self.reverse {
            merged.reverse();
        }
        let exhausted = each_short && merged.len() <= n;
        merged.truncate(n);
        Ok((merged, exhausted))
    }

    /// Several groups: a leapfrog join. Each group in turn seeks to the candidate; one that
    /// lands past it moves the candidate there, and a candidate every group lands on is in
    /// all of them. The work follows the smallest group, not the largest.
    fn intersected(
        &self,
        groups: &[Vec<JobIndex>],
        after: Option<(i64, &str)>,
        n: usize,
    ) -> Result<(Vec<(i64, JobId)>, bool), StoreError> {
        let indexes = self.reader.job_indexes()?;
        let keys: Vec<Vec<String>> = groups
            .iter()
            .map(|g| g.iter().map(JobIndex::key).collect())
            .collect();
        // The nearest entry of any index of a group at or past `from`.
        let seek = |group: &[String], from: Option<(i64, &str)>, strict: bool| {
            let mut nearest: Option<(i64, JobId)> = None;
            for key in group {
                if let Some(found) = indexes.seek(key, self.reverse, from, strict)? {
                    let nearer = nearest.as_ref().is_none_or(|best| {
                        if self.reverse {
                            found > *best
                        } else {
                            found < *best
                        }
                    });
                    if nearer {
                        nearest = Some(found);
                    }
                }
            }
            Ok::<_, StoreError>(nearest)
        };
        let mut found = Vec::new();
        let Some(mut candidate) = seek(&keys[0], after, true)? else {
            return Ok((found, true));
        };
        let mut agreeing = 1;
        let mut turn = 1 % keys.len();
        loop {
            if agreeing == keys.len() {
                let past = seek(&keys[turn], Some((candidate.0, candidate.1.as_str())), true)?;
                found.push(candidate);
                if found.len() == n {
                    return Ok((found, false));
                }
                let Some(next) = past else {
                    return Ok((found, true));
                };
                candidate = next;
                agreeing = 1;
            } else {
                let Some(landed) = seek(
                    &keys[turn],
                    Some((candidate.0, candidate.1.as_str())),
                    false,
                )?
                else {
                    return Ok((found, true));
                };
                if landed == candidate {
                    agreeing += 1;
                } else {
                    candidate = landed;
                    agreeing = 1;
                }
            }
            turn = (turn + 1) % keys.len();
        }
    }
}

/// Finds a job by full ID, unique ID prefix, or name in `namespace`.
fn resolve(reader: &Reader, id_or_name: &str, namespace: &str) -> Result<Job, OrchestratorError> {
    if id_or_name.is_empty() {
        return Err(OrchestratorError::Invalid("missing job ID".into()));
    }
    if let Some(job) = reader.job(&JobId::from(id_or_name))? {
        return Ok(job);
    }
    let namespace = if namespace.is_empty() {
        bacalhau_models::DEFAULT_NAMESPACE
    } else {
        namespace
    };
    if let Some(id) = reader.job_id_by_name(namespace, id_or_name)?
        && let Some(job) = reader.job(&id)?
    {
        return Ok(job);
    }
    // Short IDs are prefixes of full IDs; a bare UUID prefix gets the `j-` back.
    let prefix = if id_or_name.starts_with("j-") {
        id_or_name.to_string()
    } else {
        format!("j-{id_or_name}")
    };
    let matches = reader.job_ids_with_prefix(&prefix, 5)?;
    match matches.as_slice() {
        [] => Err(not_found("job", id_or_name)),
        [one] => reader.job(one)?.ok_or_else(|| not_found("job", id_or_name)),
        many => Err(OrchestratorError::Ambiguous {
            prefix: id_or_name.to_string(),
            matches: many
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
