//! Scheduler workers: take an evaluation from the broker, snapshot the job, plan, apply. A
//! submission or a node's report can also plan its job in its own transaction (`plan_in`).

use crate::broker::{EvaluationBroker, Work};
use crate::metrics::{JobLabels, Metrics, seconds_between};
use crate::nodes::NodeManager;
use crate::planner::{self, Applied, PlanError};
use crate::scheduler::common::fail_job;
use crate::scheduler::{NodeView, Plan, Snapshot, scheduler_for};
use crate::store::{Store, StoreError, Writer};
use crate::timeline::Timeline;
use bacalhau_models::{Evaluation, ExecutionId, JobId, JobStateType, Timestamp};
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

/// Runs the `scheduler-worker` loop until the broker closes.
pub async fn run(
    name: String,
    store: Store,
    broker: Arc<EvaluationBroker>,
    nodes: Arc<NodeManager>,
    metrics: Arc<Metrics>,
    timeline: Arc<Timeline>,
) {
    tracing::debug!(worker = %name, "scheduler worker started");
    let context = Context {
        broker: &broker,
        nodes: &nodes,
        metrics: &metrics,
        timeline: &timeline,
    };
    while let Some(work) = broker.dequeue().await {
        let job_id = work.evaluation.job_id.clone();
        let evaluation = work.evaluation.clone();
        let due = evaluation.create_time.max(evaluation.wait_until);
        metrics
            .queue_wait
            .observe(seconds_between(due, nodes.clock().now()));
        let processed = process(&store, &nodes, work)
            .instrument(tracing::debug_span!("evaluation", job_id = %job_id))
            .await;
        match processed {
            Ok(Some(planned)) => context.conclude(planned),
            Ok(None) => broker.ack(&job_id),
            Err(ProcessError::Plan(
                PlanError::Stale { .. } | PlanError::ExecutionChanged { .. },
            )) => {
                // Someone changed the job or one of its executions meanwhile: plan again on
                // fresh state, at once.
                broker.nack(evaluation, Duration::ZERO);
            }
            Err(e) => {
                tracing::warn!(worker = %name, job_id = %job_id, error = %e, "evaluation failed; retrying");
                broker.nack(evaluation, Duration::from_secs(1));
            }
        }
    }
    tracing::debug!(worker = %name, "scheduler worker stopped");
}

#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An evaluation planned and written, with what its bookkeeping needs once committed.
#[derive(Debug)]
pub(crate) struct Planned {
    /// What the plan changed.
    pub(crate) applied: Applied,
    evaluation: Evaluation,
    job_type: String,
    job_created: Timestamp,
    /// When planning began, and when the plan was handed to the store.
    planning: Timestamp,
    applying: Timestamp,
    created: usize,
    stopping: usize,
    /// The job's state when the plan ended it.
    ended: Option<JobStateType>,
    /// The plan's events, for the debug log (empty unless its lines are wanted).
    events: Vec<(Option<ExecutionId>, String)>,
}

impl Planned {
    /// The job planned.
    pub(crate) fn job_id(&self) -> &JobId {
        &self.evaluation.job_id
    }
}

/// What concluding a plan touches: the broker, the node connections and the figures.
pub(crate) struct Context<'a> {
    pub(crate) broker: &'a EvaluationBroker,
    pub(crate) nodes: &'a NodeManager,
    pub(crate) metrics: &'a Metrics,
    pub(crate) timeline: &'a Timeline,
}

impl Context<'_> {
    /// After a plan's commit: wakes the connections of the nodes it sends work to, queues its
    /// follow-ups, releases the job in the broker and records the figures, spans and log
    /// lines of the evaluation (and of the job, when it ended).
    pub(crate) fn conclude(&self, planned: Planned) {
        let done = self.nodes.clock().now();
        self.metrics.evaluations_processed.inc();
        self.metrics
            .scheduling_latency
            .observe(seconds_between(planned.evaluation.create_time, done));
        self.metrics
            .plan_apply
            .observe(seconds_between(planned.applying, done));
        self.nodes.plan_applied(&planned.applied);
        for follow_up in planned.applied.follow_ups {
            self.broker.enqueue(follow_up);
        }
        let evaluation = &planned.evaluation;
        let job_id = &evaluation.job_id;
        self.broker.ack(job_id);
        let evaluation_span =
            crate::trace::record(job_id, "evaluation", None, (planned.planning, done), || {
                vec![
                    KeyValue::new("bacalhau.evaluation.id", evaluation.id.to_string()),
                    KeyValue::new(
                        "bacalhau.evaluation.trigger",
                        format!("{:?}", evaluation.triggered_by),
                    ),
                ]
            });
        crate::trace::record(
            job_id,
            "plan",
            Some(&evaluation_span),
            (planned.applying, done),
            || {
                vec![
                    KeyValue::new("bacalhau.plan.created", planned.created as i64),
                    KeyValue::new("bacalhau.plan.stopped", planned.stopping as i64),
                ]
            },
        );
        for (execution_id, message) in planned.events {
            match execution_id {
                Some(execution_id) => {
                    tracing::debug!(%job_id, %execution_id, "{message}")
                }
                None => tracing::debug!(%job_id, "{message}"),
            }
        }
        if let Some(state) = planned.ended {
            self.metrics
                .jobs_ended
                .get_or_create(&JobLabels {
                    r#type: planned.job_type.clone(),
                    state: state.as_str().to_string(),
                })
                .inc();
            let took = seconds_between(planned.job_created, done);
            self.metrics.job_duration.observe(took);
            self.timeline.job_ended(took);
            tracing::info!(%job_id, r#type = %planned.job_type, state = %state, "job ended");
            crate::trace::record_job(
                job_id,
                &planned.job_type,
                (planned.job_created, done),
                state.as_str(),
            );
        }
    }
}

/// Plans `evaluation` and writes the plan in the caller's transaction, the one that made the
/// evaluation (a submission, a node's report of an execution's end): one commit instead of
/// two, and no trip through the broker. The caller must hold the job in the broker
/// ([`EvaluationBroker::claim`]), so no worker plans it meanwhile, and hand the answer to
/// [`Context::conclude`] after the commit. `None` when the job cannot be planned here (gone, or
/// of an unknown type): the caller stores the evaluation for a worker instead.
pub(crate) fn plan_in(
    w: &mut Writer<'_, '_>,
    evaluation: &Evaluation,
    nodes: Arc<Vec<NodeView>>,
    now: Timestamp,
) -> Result<Option<Planned>, StoreError> {
    let Some(job) = w.job(&evaluation.job_id)? else {
        return Ok(None);
    };
    let snapshot = Snapshot {
        executions: w.executions_of(&job.id)?,
        nodes,
        job,
    };
    let Some(plan) = decide(evaluation, &snapshot, now) else {
        return Ok(None);
    };
    let (mut planned, plan) = prepare(evaluation, &snapshot, plan, (now, now));
    // The snapshot was read in this transaction: nothing can have changed since.
    planned.applied = planner::apply_in(w, plan, &[], now).map_err(|e| match e {
        PlanError::Store(e) => e,
        other => StoreError::Db(format!("a plan made in its own transaction: {other}")),
    })?;
    Ok(Some(planned))
}

async fn process(
    store: &Store,
    nodes: &NodeManager,
    work: Work,
) -> Result<Option<Planned>, ProcessError> {
    let Work {
        evaluation,
        superseded,
    } = work;
    let now = nodes.clock().now();
    let snapshot = {
        let reader = store.read()?;
        let Some(job) = reader.job(&evaluation.job_id)? else {
            drop(reader);
            forget(store, &evaluation, superseded).await?;
            return Ok(None);
        };
        Snapshot {
            executions: reader.executions_of(&job.id)?,
            nodes: nodes.views(now),
            job,
        }
    };
    let Some(plan) = decide(&evaluation, &snapshot, now) else {
        forget(store, &evaluation, superseded).await?;
        return Ok(None);
    };
    let times = (now, nodes.clock().now());
    let (mut planned, plan) = prepare(&evaluation, &snapshot, plan, times);
    planned.applied = planner::apply(store, plan, superseded, now).await?;
    Ok(Some(planned))
}

/// The scheduler's plan for `evaluation` over `snapshot`; `None` for a job of an unknown type
/// (nothing to plan: its evaluation is dropped).
fn decide(evaluation: &Evaluation, snapshot: &Snapshot, now: Timestamp) -> Option<Plan> {
    let Some(job_type) = snapshot.job.job_type() else {
        tracing::error!(job_id = %snapshot.job.id, r#type = %snapshot.job.r#type, "stored job has an unknown type");
        return None;
    };
    // A scheduler is pure code over a snapshot; should it panic on some job, that job fails
    // with the reason instead of taking this worker (and every later evaluation) down.
    let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scheduler_for(job_type).plan(evaluation, snapshot, now)
    }));
    let mut plan = match planned {
        Ok(mut plan) => {
            if !plan.create.is_empty() {
                plan.ipfs_peers = crate::scheduler::ipfs_peers(&snapshot.job, &snapshot.nodes);
            }
            plan
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(job_id = %snapshot.job.id, panic = %message, "the scheduler panicked; failing the job");
            let mut plan = Plan::new(evaluation, &snapshot.job);
            let live: Vec<&bacalhau_models::Execution> = snapshot
                .executions
                .iter()
                .filter(|e| !e.compute_state.state_type.is_terminal())
                .collect();
            fail_job(
                &mut plan,
                snapshot,
                &live,
                format!("internal error while scheduling the job: {message}"),
                Default::default(),
                now,
            );
            plan
        }
    };
    for (id, _) in &plan.stop {
        if let Some(seen) = snapshot.executions.iter().find(|e| &e.id == id) {
            plan.stops_seen.insert(id.clone(), seen.revision);
        }
    }
    Some(plan)
}

/// What [`Context::conclude`] will need of a plan about to be applied (its `applied` still
/// empty), and the plan.
fn prepare(
    evaluation: &Evaluation,
    snapshot: &Snapshot,
    plan: Plan,
    (planning, applying): (Timestamp, Timestamp),
) -> (Planned, Plan) {
    let ended = plan
        .job_state
        .as_ref()
        .map(|state| state.state_type)
        .filter(|state| state.is_terminal());
    // Copied for the log only when its lines are wanted: this is every evaluation's path.
    let events = if tracing::enabled!(tracing::Level::DEBUG) {
        plan.events
            .iter()
            .map(|e| (e.execution_id.clone(), e.event.message.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let job = &snapshot.job;
    let planned = Planned {
        applied: Applied::default(),
        evaluation: evaluation.clone(),
        job_type: job.r#type.clone(),
        job_created: job.create_time,
        planning,
        applying,
        created: plan.create.len(),
        stopping: plan.stop.len(),
        ended,
        events,
    };
    (planned, plan)
}

/// Deletes evaluations that have nothing left to evaluate.
async fn forget(
    store: &Store,
    evaluation: &Evaluation,
    superseded: Vec<bacalhau_models::EvaluationId>,
) -> Result<(), StoreError> {
    let id = evaluation.id.clone();
    store
        .write(move |w| {
            w.delete_evaluation(&id)?;
            for other in &superseded {
                w.delete_evaluation(other)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
}
