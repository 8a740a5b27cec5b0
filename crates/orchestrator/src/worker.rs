//! Scheduler workers: take an evaluation from the broker, snapshot the job, plan, apply.

use crate::broker::{EvaluationBroker, Work};
use crate::metrics::{JobLabels, Metrics, seconds_between};
use crate::nodes::NodeManager;
use crate::planner::{self, Applied, PlanError};
use crate::scheduler::common::fail_job;
use crate::scheduler::{Plan, Snapshot, scheduler_for};
use crate::store::{Store, StoreError};
use crate::timeline::Timeline;
use bacalhau_models::Evaluation;
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
    while let Some(work) = broker.dequeue().await {
        let job_id = work.evaluation.job_id.clone();
        let evaluation = work.evaluation.clone();
        let due = evaluation.create_time.max(evaluation.wait_until);
        metrics
            .queue_wait
            .observe(seconds_between(due, nodes.clock().now()));
        let processed = process(&store, &nodes, &metrics, &timeline, work)
            .instrument(tracing::debug_span!("evaluation", job_id = %job_id))
            .await;
        match processed {
            Ok(Some(applied)) => {
                metrics.evaluations_processed.inc();
                metrics
                    .scheduling_latency
                    .observe(seconds_between(evaluation.create_time, nodes.clock().now()));
                nodes.plan_applied(&applied);
                for follow_up in applied.follow_ups {
                    broker.enqueue(follow_up);
                }
                broker.ack(&job_id);
            }
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

async fn process(
    store: &Store,
    nodes: &NodeManager,
    metrics: &Metrics,
    timeline: &Timeline,
    work: Work,
) -> Result<Option<Applied>, ProcessError> {
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
    let Some(job_type) = snapshot.job.job_type() else {
        tracing::error!(job_id = %snapshot.job.id, r#type = %snapshot.job.r#type, "stored job has an unknown type");
        forget(store, &evaluation, superseded).await?;
        return Ok(None);
    };
    // A scheduler is pure code over a snapshot; should it panic on some job, that job fails
    // with the reason instead of taking this worker (and every later evaluation) down.
    let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scheduler_for(job_type).plan(&evaluation, &snapshot, now)
    }));
    let plan = match planned {
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
            let mut plan = Plan::new(&evaluation, &snapshot.job);
            let live: Vec<&bacalhau_models::Execution> = snapshot
                .executions
                .iter()
                .filter(|e| !e.compute_state.state_type.is_terminal())
                .collect();
            fail_job(
                &mut plan,
                &snapshot,
                &live,
                format!("internal error while scheduling the job: {message}"),
                Default::default(),
                now,
            );
            plan
        }
    };
    let mut plan = plan;
    for (id, _) in &plan.stop {
        if let Some(seen) = snapshot.executions.iter().find(|e| &e.id == id) {
            plan.stops_seen.insert(id.clone(), seen.revision);
        }
    }
    let ended = plan
        .job_state
        .as_ref()
        .map(|state| state.state_type)
        .filter(|state| state.is_terminal());
    // Copied for the log only when its lines are wanted: this is every evaluation's path.
    let events: Vec<_> = if tracing::enabled!(tracing::Level::DEBUG) {
        plan.events
            .iter()
            .map(|e| (e.execution_id.clone(), e.event.message.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let started = std::time::Instant::now();
    let apply_start = nodes.clock().now();
    let (created, stopping) = (plan.create.len(), plan.stop.len());
    let applied = planner::apply(store, plan, superseded, now).await?;
    metrics.plan_apply.observe(started.elapsed().as_secs_f64());
    let job = &snapshot.job;
    let done = nodes.clock().now();
    let evaluation_span = crate::trace::record(&job.id, "evaluation", None, (now, done), || {
        vec![
            KeyValue::new("bacalhau.evaluation.id", evaluation.id.to_string()),
            KeyValue::new(
                "bacalhau.evaluation.trigger",
                format!("{:?}", evaluation.triggered_by),
            ),
        ]
    });
    crate::trace::record(
        &job.id,
        "plan",
        Some(&evaluation_span),
        (apply_start, done),
        || {
            vec![
                KeyValue::new("bacalhau.plan.created", created as i64),
                KeyValue::new("bacalhau.plan.stopped", stopping as i64),
            ]
        },
    );
    for (execution_id, message) in events {
        match execution_id {
            Some(execution_id) => {
                tracing::debug!(job_id = %job.id, %execution_id, "{message}")
            }
            None => tracing::debug!(job_id = %job.id, "{message}"),
        }
    }
    if let Some(state) = ended {
        metrics
            .jobs_ended
            .get_or_create(&JobLabels {
                r#type: job.r#type.clone(),
                state: state.as_str().to_string(),
            })
            .inc();
        let took = seconds_between(job.create_time, nodes.clock().now());
        metrics.job_duration.observe(took);
        timeline.job_ended(took);
        tracing::info!(job_id = %job.id, r#type = %job.r#type, state = %state, "job ended");
        crate::trace::record_job(
            &job.id,
            &job.r#type,
            (job.create_time, done),
            state.as_str(),
        );
    }
    Ok(Some(applied))
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
