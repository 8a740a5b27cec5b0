//! The orchestrator's front door: submission, stop, rerun, diff and every query the API serves.

use crate::broker::EvaluationBroker;
use crate::error::OrchestratorError;
use crate::nodes::{NodeManager, NodeManagerConfig};
use crate::scheduler::job_event;
use crate::store::{Reader, Store, StoreError};
use crate::worker;
use bacalhau_models::history::topics;
use bacalhau_models::job::{JobDefaults, describe_errors};
use bacalhau_models::selector::LabelSelectorRequirement;
use bacalhau_models::{
    Evaluation, EvaluationId, Execution, Job, JobHistory, JobHistoryType, JobId, JobStateType,
    NodeId, NodeState, SpecConfig, State, Timestamp, TriggeredBy, time,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// How the orchestrator is set up.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// Where the store file lives.
    pub data_dir: PathBuf,
    /// Defaults applied to submitted jobs.
    pub job_defaults: JobDefaults,
    /// How many scheduler workers run at once.
    pub workers: usize,
    /// How compute nodes are admitted and watched.
    pub nodes: NodeManagerConfig,
}

/// The answer to a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The job's ID.
    pub job_id: JobId,
    /// The evaluation created for it.
    pub evaluation_id: EvaluationId,
    /// Things the user should know (ignored fields...).
    pub warnings: Vec<String>,
}

/// The answer to a rerun.
#[derive(Debug, Clone)]
pub struct Rerun {
    /// The job's ID.
    pub job_id: JobId,
    /// The new version that runs.
    pub job_version: u64,
    /// The evaluation created for it.
    pub evaluation_id: EvaluationId,
}

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

/// The store's file name in the orchestrator's data directory.
const STORE_FILE: &str = "orchestrator.redb";

/// The page size of job listings when none is asked for.
pub const DEFAULT_PAGE: usize = 100;

/// The orchestrator: a store, a broker and the scheduler workers behind them.
pub struct Orchestrator {
    store: Store,
    broker: Arc<EvaluationBroker>,
    nodes: Arc<NodeManager>,
    config: OrchestratorConfig,
    workers: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

fn now() -> Timestamp {
    time::to_nanos(SystemTime::now())
}

fn not_found(kind: &'static str, id: impl Into<String>) -> OrchestratorError {
    OrchestratorError::NotFound {
        kind,
        id: id.into(),
    }
}

impl Orchestrator {
    /// Opens the store under `config.data_dir`, requeues unfinished evaluations and starts the
    /// scheduler workers.
    pub async fn start(config: OrchestratorConfig) -> Result<Self, OrchestratorError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StoreError::Db(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = Store::open(&config.data_dir.join(STORE_FILE))?;
        let broker = Arc::new(EvaluationBroker::new());
        let pending = store.read()?.pending_evaluations()?;
        tracing::info!(
            n_evaluations = pending.len(),
            "requeued unfinished evaluations"
        );
        for evaluation in pending {
            broker.enqueue(evaluation);
        }
        let nodes = Arc::new(NodeManager::new(
            store.clone(),
            Arc::clone(&broker),
            config.nodes.clone(),
        )?);
        let mut workers: Vec<_> = (0..config.workers.max(1))
            .map(|i| {
                tokio::spawn(worker::run(
                    format!("scheduler-worker-{i}"),
                    store.clone(),
                    Arc::clone(&broker),
                    Arc::clone(&nodes),
                ))
            })
            .collect();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        workers.push(tokio::spawn(
            Arc::clone(&nodes).run_heartbeat_checker(stopped),
        ));
        Ok(Self {
            store,
            broker,
            nodes,
            config,
            workers,
            stop,
        })
    }

    /// Stops the workers and waits for them; pending evaluations stay stored for next time.
    pub async fn shutdown(self) {
        self.broker.close();
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
    }

    /// The store, for components that share it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The broker, for components that create evaluations (node joins, execution updates).
    pub fn broker(&self) -> &Arc<EvaluationBroker> {
        &self.broker
    }

    /// The node manager, which serves node connections.
    pub fn node_manager(&self) -> &Arc<NodeManager> {
        &self.nodes
    }

    /// Checks, normalizes and stores a job (or a new version of the job of the same name) with
    /// its history and evaluation, in one transaction.
    pub async fn submit(
        &self,
        mut job: Job,
        force: bool,
        actor: &str,
    ) -> Result<Submitted, OrchestratorError> {
        let actor = actor.to_string();
        let warnings = job.sanitize_submission();
        job.id = JobId::generate();
        job.normalize(&self.config.job_defaults);
        if let Err(errors) = job.validate() {
            return Err(OrchestratorError::Invalid(describe_errors(&errors)));
        }
        let now = now();
        let (submitted, evaluation) = self
            .store
            .write(move |w| {
                let existing = match w.job_id_by_name(&job.namespace, &job.name)? {
                    Some(id) => w.job(&id)?,
                    None => None,
                };
                let (job, message, trigger) = match existing {
                    Some(current) => {
                        if same_spec(&current, &job) && !force {
                            return Err(OrchestratorError::Conflict {
                                message: format!(
                                    "no changes detected for new job spec. Job Name: '{}', Job Id: '{}'",
                                    current.name, current.id
                                ),
                                hint: Some("Use the --force flag to override this warning".into()),
                            });
                        }
                        let mut updated = job;
                        updated.id = current.id.clone();
                        updated.create_time = current.create_time;
                        updated.version = current.version + 1;
                        updated.revision = current.revision + 1;
                        (updated, "Job updated", TriggeredBy::JobUpdate)
                    }
                    None => {
                        let mut created = job;
                        created.create_time = now;
                        created.version = 1;
                        created.revision = 1;
                        (created, "Job submitted", TriggeredBy::JobRegister)
                    }
                };
                let mut job = job;
                job.state = State::new(JobStateType::Pending);
                job.modify_time = now;
                let evaluation = Evaluation::for_job(&job, trigger, now);
                w.put_job(&job)?;
                w.put_job_version(&job)?;
                w.add_history(
                    job_event(&job, topics::SUBMISSION, message, BTreeMap::new(), now).by(actor),
                )?;
                w.put_evaluation(&evaluation)?;
                Ok::<_, OrchestratorError>((job.id.clone(), evaluation))
            })
            .await?;
        let evaluation_id = evaluation.id.clone();
        self.broker.enqueue(evaluation);
        Ok(Submitted {
            job_id: submitted,
            evaluation_id,
            warnings,
        })
    }

    /// Checks and normalizes a spec without storing it, returning it as it would be stored.
    pub fn dry_run(&self, job: Job) -> Result<(Job, Vec<String>), OrchestratorError> {
        self.check(job)
            .map_err(|errors| OrchestratorError::Invalid(describe_errors(&errors)))
    }

    /// [`Orchestrator::dry_run`] with every problem apart, each naming its field.
    pub fn check(
        &self,
        mut job: Job,
    ) -> Result<(Job, Vec<String>), Vec<bacalhau_models::ValidationError>> {
        let warnings = job.sanitize_submission();
        job.normalize(&self.config.job_defaults);
        job.validate()?;
        Ok((job, warnings))
    }

    /// A unified diff between the stored job of the same name and `job`, as YAML.
    pub fn diff(&self, mut job: Job) -> Result<(String, Vec<String>), OrchestratorError> {
        let warnings = job.sanitize_submission();
        job.normalize(&self.config.job_defaults);
        job.validate()
            .map_err(|errors| OrchestratorError::Invalid(describe_errors(&errors)))?;
        let reader = self.store.read()?;
        let current = match reader.job_id_by_name(&job.namespace, &job.name)? {
            Some(id) => reader.job(&id)?,
            None => None,
        };
        let before = current.as_ref().map(spec_yaml).unwrap_or_default();
        let after = spec_yaml(&job);
        let diff = similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .header("current", "new")
            .to_string();
        Ok((diff, warnings))
    }

    /// Finds a job by full ID, unique ID prefix, or name in `namespace`.
    pub fn job(&self, id_or_name: &str, namespace: &str) -> Result<Job, OrchestratorError> {
        let reader = self.store.read()?;
        resolve(&reader, id_or_name, namespace)
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
        let mut jobs = Vec::new();
        loop {
            let batch = reader.job_ids_by_create_time(
                query.reverse,
                cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
                limit.max(64),
            )?;
            let exhausted = batch.len() < limit.max(64);
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
                    let more = !reader
                        .job_ids_by_create_time(
                            query.reverse,
                            cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
                            1,
                        )?
                        .is_empty();
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
        Ok(reader
            .executions_of(&job.id)?
            .into_iter()
            .filter(|e| {
                e.job_version == job.version
                    && e.compute_state.state_type == bacalhau_models::ExecutionStateType::Completed
            })
            .filter_map(|e| e.published_result)
            .filter(|r| !r.is_empty())
            .collect())
    }

    /// Stops a job: records the stop and lets the scheduler cancel its executions. Returns the
    /// evaluation created, or `None` when the job was already stopped.
    pub async fn stop(
        &self,
        id_or_name: &str,
        namespace: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Option<EvaluationId>, OrchestratorError> {
        let job_id = self.job(id_or_name, namespace)?.id;
        let actor = actor.to_string();
        let reason = if reason.is_empty() {
            "Job stopped by user".to_string()
        } else {
            reason.to_string()
        };
        let now = now();
        let evaluation = self
            .store
            .write(move |w| {
                let mut job = w
                    .job(&job_id)?
                    .ok_or_else(|| not_found("job", job_id.to_string()))?;
                match job.state.state_type {
                    JobStateType::Stopped => return Ok(None),
                    state @ (JobStateType::Completed | JobStateType::Failed) => {
                        return Err(OrchestratorError::Conflict {
                            message: format!("cannot stop job in state {state}"),
                            hint: None,
                        });
                    }
                    _ => {}
                }
                let mut details = BTreeMap::new();
                details.insert("Reason".to_string(), reason.clone());
                let stop_event = job_event(
                    &job,
                    topics::SCHEDULING,
                    "Job requested to stop before completion",
                    details,
                    now,
                )
                .by(actor.clone());
                let previous = job.state.state_type;
                job.state = State::with_message(JobStateType::Stopped, reason);
                job.revision += 1;
                job.modify_time = now;
                let mut state_details = BTreeMap::new();
                state_details.insert("NewState".to_string(), "Stopped".to_string());
                state_details.insert("PreviousState".to_string(), previous.to_string());
                let state_event = job_event(
                    &job,
                    topics::STATE_UPDATE,
                    format!("Stopped: {}", job.state.message),
                    state_details,
                    now,
                )
                .by(actor);
                let evaluation = Evaluation::for_job(&job, TriggeredBy::JobCancel, now);
                w.put_job(&job)?;
                w.add_history(stop_event)?;
                w.add_history(state_event)?;
                w.put_evaluation(&evaluation)?;
                Ok::<_, OrchestratorError>(Some(evaluation))
            })
            .await?;
        Ok(evaluation.map(|evaluation| {
            let id = evaluation.id.clone();
            self.broker.enqueue(evaluation);
            id
        }))
    }

    /// Runs a finished job again as a new version with the spec of `version` (0: the latest).
    pub async fn rerun(
        &self,
        id_or_name: &str,
        namespace: &str,
        version: u64,
        reason: &str,
        actor: &str,
    ) -> Result<Rerun, OrchestratorError> {
        let job_id = self.job(id_or_name, namespace)?.id;
        let actor = actor.to_string();
        let reason = if reason.is_empty() {
            "Job rerun requested".to_string()
        } else {
            reason.to_string()
        };
        let now = now();
        let (rerun, evaluation) = self
            .store
            .write(move |w| {
                let current = w
                    .job(&job_id)?
                    .ok_or_else(|| not_found("job", job_id.to_string()))?;
                if matches!(
                    current.state.state_type,
                    JobStateType::Pending | JobStateType::Queued | JobStateType::Undefined
                ) {
                    return Err(OrchestratorError::Conflict {
                        message: format!("cannot rerun job in state {}", current.state.state_type),
                        hint: Some(
                            "try to use the job run command instead of the job rerun command"
                                .into(),
                        ),
                    });
                }
                let mut job = if version == 0 {
                    current.clone()
                } else {
                    w.job_version(&job_id, version)?.ok_or_else(|| {
                        not_found("job version", format!("{job_id} version {version}"))
                    })?
                };
                job.version = current.version + 1;
                job.revision = current.revision + 1;
                job.create_time = current.create_time;
                job.modify_time = now;
                job.state = State::with_message(JobStateType::Pending, "job rerun");
                let mut details = BTreeMap::new();
                details.insert("Reason".to_string(), reason.clone());
                let evaluation = Evaluation::for_job(&job, TriggeredBy::JobRerun, now);
                w.put_job(&job)?;
                w.put_job_version(&job)?;
                w.add_history(
                    job_event(
                        &job,
                        topics::SUBMISSION,
                        "Job rerun requested",
                        details,
                        now,
                    )
                    .by(actor),
                )?;
                w.put_evaluation(&evaluation)?;
                Ok::<_, OrchestratorError>((
                    Rerun {
                        job_id: job.id.clone(),
                        job_version: job.version,
                        evaluation_id: evaluation.id.clone(),
                    },
                    evaluation,
                ))
            })
            .await?;
        self.broker.enqueue(evaluation);
        Ok(rerun)
    }

    /// Streams the log of one of the executions of a job's `versions`: the one named (ID or
    /// prefix), else the most recently changed one that did not fail to start.
    pub async fn logs(
        &self,
        id_or_name: &str,
        namespace: &str,
        versions: JobVersions,
        execution_id: Option<&str>,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<crate::nodes::LogEvent>, OrchestratorError>
    {
        let job = self.job(id_or_name, namespace)?;
        let mut executions = self.store.read()?.executions_of(&job.id)?;
        executions.retain(|e| versions.covers(e.job_version, job.version));
        let execution = match execution_id {
            Some(wanted) => executions
                .iter()
                .find(|e| e.id.as_str() == wanted || e.id.as_str().starts_with(wanted))
                .ok_or_else(|| not_found("execution", wanted))?,
            None => executions
                .iter()
                .filter(|e| {
                    !matches!(
                        e.compute_state.state_type,
                        bacalhau_models::ExecutionStateType::AskForBidRejected
                            | bacalhau_models::ExecutionStateType::BidRejected
                    )
                })
                .max_by_key(|e| e.modify_time)
                .ok_or_else(|| OrchestratorError::Conflict {
                    message: match versions {
                        JobVersions::Only(version) => {
                            format!("no executions found for job {} version {version}", job.id)
                        }
                        _ => format!("no executions found for job {}", job.id),
                    },
                    hint: Some("the job has not been scheduled on a node yet".into()),
                })?,
        };
        self.nodes
            .stream_log(&execution.node_id, &execution.id, tail, follow)
            .await
            .map_err(|message| OrchestratorError::Conflict {
                message,
                hint: None,
            })
    }

    /// Every node, by ID, optionally filtered by membership and connection status.
    pub fn nodes(
        &self,
        membership: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<NodeState>, OrchestratorError> {
        Ok(self
            .nodes
            .states()
            .into_iter()
            .filter(|n| membership.is_none_or(|m| n.membership.as_str().eq_ignore_ascii_case(m)))
            .filter(|n| {
                status.is_none_or(|s| n.connection_state.status.as_str().eq_ignore_ascii_case(s))
            })
            .collect())
    }

    /// A node by full ID or unique prefix.
    pub fn node(&self, id: &str) -> Result<NodeState, OrchestratorError> {
        let states = self.nodes.states();
        if let Some(exact) = states.iter().find(|n| n.info.node_id.as_str() == id) {
            return Ok(exact.clone());
        }
        let matches: Vec<NodeState> = states
            .into_iter()
            .filter(|n| n.info.node_id.as_str().starts_with(id))
            .collect();
        match matches.len() {
            0 => Err(not_found("node", id)),
            1 => Ok(matches
                .into_iter()
                .next()
                .ok_or_else(|| not_found("node", id))?),
            _ => Err(OrchestratorError::Ambiguous {
                prefix: id.to_string(),
                matches: matches
                    .iter()
                    .map(|n| n.info.node_id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Asks a compute node (full ID or unique prefix) to fetch `cid` from `peers` and pin it,
    /// within `timeout` (`bacalhau data add`); returns the node and the bytes it fetched.
    pub async fn pin(
        &self,
        node: &str,
        cid: &str,
        peers: Vec<String>,
        timeout: std::time::Duration,
    ) -> Result<(NodeId, u64), OrchestratorError> {
        let state = self.node(node)?;
        if !state.info.node_type.eq_ignore_ascii_case("Compute") {
            return Err(OrchestratorError::Invalid(format!(
                "node {} is not a compute node: only compute nodes hold data",
                state.info.node_id
            )));
        }
        let node_id = state.info.node_id;
        let bytes = self.nodes.pin(&node_id, cid, peers, timeout).await?;
        Ok((node_id, bytes))
    }

    /// Approves, rejects or deletes a node (`approve`, `reject`, `delete`).
    pub async fn update_node(
        &self,
        id: &str,
        action: &str,
        actor: &str,
    ) -> Result<(), OrchestratorError> {
        let action = bacalhau_models::node::NodeAction::parse(action).ok_or_else(|| {
            OrchestratorError::Invalid(format!(
                "unknown node action {action:?}: use approve, reject or delete"
            ))
        })?;
        let node_id: NodeId = self.node(id)?.info.node_id;
        self.nodes.update_membership(&node_id, action, actor).await
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

    /// The store file's size in bytes.
    pub fn store_size(&self) -> Result<u64, OrchestratorError> {
        let path = self.config.data_dir.join(STORE_FILE);
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| StoreError::Db(format!("cannot read {}: {e}", path.display())).into())
    }

    /// How many jobs are stored.
    pub fn job_count(&self) -> Result<u64, OrchestratorError> {
        Ok(self.store.read()?.job_count()?)
    }
}

/// Compares what the user controls of two specs, ignoring what the server sets.
fn same_spec(a: &Job, b: &Job) -> bool {
    spec_yaml(a) == spec_yaml(b)
}

/// The user-controlled part of a job as YAML, for comparisons and diffs: the fields the
/// server sets (ID, state, versions, times, system meta) are left out.
fn spec_yaml(job: &Job) -> String {
    let mut value = serde_json::to_value(job).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for key in [
            "ID",
            "State",
            "Version",
            "Revision",
            "CreateTime",
            "ModifyTime",
        ] {
            map.remove(key);
        }
        if let Some(meta) = map.get_mut("Meta").and_then(|m| m.as_object_mut()) {
            meta.retain(|k, _| !k.starts_with(bacalhau_models::job::SYSTEM_META_PREFIX));
        }
    }
    serde_yaml_ng::to_string(&value).unwrap_or_default()
}

fn parse_job_token(token: &str) -> Result<(i64, String), OrchestratorError> {
    token
        .split_once('.')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_string())))
        .ok_or_else(|| OrchestratorError::Invalid(format!("invalid next_token {token:?}")))
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

#[cfg(test)]
mod tests;
