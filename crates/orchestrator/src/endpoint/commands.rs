//! Job commands: submit (a new job or a new version of one), dry run, check, diff, stop and
//! rerun; each change is one store transaction with its history and evaluation.

use super::{Orchestrator, not_found};
use crate::error::OrchestratorError;
use crate::scheduler::job_event;
use bacalhau_models::content;
use bacalhau_models::history::Topic;
use bacalhau_models::job::describe_errors;
use bacalhau_models::{
    Evaluation, EvaluationId, Job, JobId, JobStateType, State, TriggeredBy, ValidationError,
};
use std::collections::BTreeMap;

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

impl Orchestrator {
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
        let now = self.clock().now();
        let job_type = job.r#type.clone();
        let mut warnings = warnings;
        // The result cache: asked in the job's meta, or the cluster's default for every job
        // it can key (written into the job so its record says so; no warning for those).
        let verified = content::verify_count(&job).is_some();
        let explicit = job.meta.contains_key(content::CACHE_META);
        let wanted = if explicit {
            content::wants_cache(&job)
        } else {
            self.config.job_defaults.cache_by_default && !verified
        };
        let cache_key = if wanted {
            let key = if verified {
                Err(format!(
                    "Meta[{}]: a verified job runs on its nodes to compare their results",
                    content::VERIFY_META
                ))
            } else {
                job.task()
                    .map_or(Ok(()), crate::lineage::cacheable)
                    .and_then(|()| content::job_key(&job).map_err(|e| e.to_string()))
            };
            match key {
                Ok(key) => {
                    job.meta.insert(content::CACHE_META.into(), "true".into());
                    Some(key)
                }
                Err(why) => {
                    if explicit {
                        warnings.push(format!("cache: not used, the job runs: {why}"));
                    }
                    None
                }
            }
        } else {
            None
        };
        // A new job is planned in its submission's transaction (see `worker::plan_in`); the
        // claim keeps any worker off it until then (and fails on a follower of a cluster).
        let claimed = self.broker.claim(&job.id).then(|| job.id.clone());
        let nodes = if cache_key.is_some() || claimed.is_some() {
            self.nodes.views(now)
        } else {
            std::sync::Arc::default()
        };
        let looked_up = cache_key.is_some();
        let planning = claimed.clone();
        let written = self
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
                // A new version of a named job is not served: its earlier version's executions
                // are stopped by the evaluation the update makes.
                let lookup = match &cache_key {
                    Some(key) if trigger == TriggeredBy::JobRegister => {
                        crate::lineage::lookup(w, key, &nodes)?
                    }
                    _ => crate::lineage::Lookup::Miss,
                };
                w.add_history(
                    job_event(&job, Topic::Submission, message, BTreeMap::new(), now).by(actor),
                )?;
                if let (Some(key), crate::lineage::Lookup::Hit { entry, node }) =
                    (&cache_key, &lookup)
                {
                    crate::lineage::serve(w, &mut job, key, entry, node, now)?;
                    w.put_job(&job)?;
                    w.put_job_version(&job)?;
                    return Ok((job.id.clone(), None, Some(entry.run_nanos), None));
                }
                let evaluation = Evaluation::for_job(&job, trigger, now);
                w.put_job(&job)?;
                w.put_job_version(&job)?;
                if let (Some(key), crate::lineage::Lookup::Gone(entry)) = (&cache_key, &lookup) {
                    crate::lineage::dropped(w, &job, key, entry, now)?;
                }
                let planned = match &planning {
                    Some(claimed) if *claimed == job.id => {
                        crate::worker::plan_in(w, &evaluation, nodes, now)?
                    }
                    _ => None,
                };
                if planned.is_none() {
                    w.put_evaluation(&evaluation)?;
                }
                Ok::<_, OrchestratorError>((job.id.clone(), Some(evaluation), None, planned))
            })
            .await;
        let (submitted, evaluation, served, planned) = match written {
            Ok(written) => written,
            Err(e) => {
                if let Some(claimed) = &claimed {
                    self.broker.ack(claimed);
                }
                return Err(e);
            }
        };
        if looked_up {
            self.metrics.count_cache_lookup(served);
        }
        self.metrics
            .submissions
            .get_or_create(&crate::metrics::TypeLabel {
                r#type: job_type.clone(),
            })
            .inc();
        let planned_here = planned.is_some();
        if let Some(planned) = planned {
            self.nodes.scheduling().conclude(planned);
        } else if let Some(claimed) = &claimed {
            self.broker.ack(claimed);
        }
        let Some(evaluation) = evaluation else {
            tracing::info!(job_id = %submitted, r#type = %job_type, "job served from the cache");
            self.metrics
                .jobs_ended
                .get_or_create(&crate::metrics::JobLabels {
                    r#type: job_type,
                    state: JobStateType::Completed.to_string(),
                })
                .inc();
            return Ok(Submitted {
                job_id: submitted,
                evaluation_id: EvaluationId::default(),
                warnings,
            });
        };
        let evaluation_id = evaluation.id.clone();
        tracing::info!(job_id = %submitted, r#type = %job_type, "job submitted");
        crate::trace::record(
            &submitted,
            "submit",
            None,
            (now, self.clock().now()),
            || {
                vec![opentelemetry::KeyValue::new(
                    "bacalhau.job.type",
                    job_type.clone(),
                )]
            },
        );
        if !planned_here {
            self.broker.enqueue(evaluation);
        }
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
    pub fn check(&self, mut job: Job) -> Result<(Job, Vec<String>), Vec<ValidationError>> {
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
        let now = self.clock().now();
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
                    Topic::Scheduling,
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
                    Topic::StateUpdate,
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
        let now = self.clock().now();
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
                    job_event(&job, Topic::Submission, "Job rerun requested", details, now)
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
