//! Steps every scheduler takes first: stop what must stop (terminal job, timeouts, lost nodes,
//! old versions) and report the executions that remain live.

use super::{Plan, Snapshot, StopReason};
use bacalhau_models::{Evaluation, Execution, JobStateType, State, Timestamp, TriggeredBy};
use std::collections::BTreeMap;

/// What survives triage.
pub struct Triage<'a> {
    /// Non-terminal executions of the current version that keep running.
    pub live: Vec<&'a Execution>,
}

/// Stops executions that must stop and returns the live ones, or `None` when the job is done
/// and the plan is complete.
pub fn triage<'a>(
    plan: &mut Plan,
    snapshot: &'a Snapshot,
    long_running: bool,
    now: Timestamp,
) -> Option<Triage<'a>> {
    let job = &snapshot.job;
    let running: Vec<&Execution> = snapshot
        .executions
        .iter()
        .filter(|e| !e.is_terminal())
        .collect();

    // A terminal job keeps nothing running.
    if job.state.state_type.is_terminal() {
        for execution in running {
            plan.stop.push((
                execution.id.clone(),
                StopReason::JobTerminal(job.state.state_type),
            ));
        }
        return None;
    }

    let timeouts = job.task().map(|t| t.timeouts.clone()).unwrap_or_default();
    // The total timeout bounds queueing, running and retries of batch and ops jobs.
    if !long_running
        && timeouts.total_timeout > 0
        && now
            >= job
                .create_time
                .saturating_add(timeouts.total_timeout.saturating_mul(1_000_000_000))
    {
        let reason = format!(
            "Job timed out. Job took longer than {}s",
            timeouts.total_timeout
        );
        fail_job(plan, snapshot, &running, reason, BTreeMap::new(), now);
        return None;
    }

    // A failure another attempt would repeat (the program's exit code, a missing image, out
    // of memory) fails the job at once, with the execution's own reason.
    if let Some(fatal) = snapshot.executions.iter().find(|e| {
        e.job_version == job.version
            && e.compute_state.state_type == bacalhau_models::ExecutionStateType::Failed
            && e.retryable() == Some(false)
    }) {
        let reason = format!(
            "execution {} failed: {}",
            fatal.id.short(),
            fatal.compute_state.message
        );
        let live: Vec<&Execution> = running.clone();
        fail_job(plan, snapshot, &live, reason, BTreeMap::new(), now);
        return None;
    }

    // A fresh job gets an evaluation at its total-timeout deadline, so it fails on time even
    // when nothing else happens to it.
    if !long_running && timeouts.total_timeout > 0 && job.state.state_type == JobStateType::Pending
    {
        let mut deadline = Evaluation::for_job(job, TriggeredBy::JobTimeout, now);
        deadline.wait_until = job
            .create_time
            .saturating_add(timeouts.total_timeout.saturating_mul(1_000_000_000));
        plan.follow_ups.push(deadline);
    }

    let mut live = Vec::new();
    for execution in running {
        let node = snapshot.nodes.iter().find(|n| n.id() == &execution.node_id);
        let stop = if execution.job_version != job.version {
            Some(StopReason::JobUpdated)
        } else if node.is_none_or(|n| n.lost) {
            Some(StopReason::NodeLost)
        } else if !long_running
            && timeouts.execution_timeout > 0
            && now
                >= execution
                    .create_time
                    .saturating_add(timeouts.execution_timeout.saturating_mul(1_000_000_000))
        {
            Some(StopReason::TimedOut(timeouts.execution_timeout))
        } else {
            None
        };
        match stop {
            Some(reason) => plan.stop.push((execution.id.clone(), reason)),
            None => live.push(execution),
        }
    }
    Some(Triage { live })
}

/// Fails the job with `reason` and stops its live executions.
pub fn fail_job(
    plan: &mut Plan,
    snapshot: &Snapshot,
    live: &[&Execution],
    reason: String,
    details: BTreeMap<String, String>,
    now: Timestamp,
) {
    for execution in live {
        if !plan.stop.iter().any(|(id, _)| id == &execution.id) {
            plan.stop.push((
                execution.id.clone(),
                StopReason::JobTerminal(JobStateType::Failed),
            ));
        }
    }
    let mut state = State::with_message(JobStateType::Failed, reason);
    state.details = details;
    plan.set_job_state(&snapshot.job, state, now);
}
