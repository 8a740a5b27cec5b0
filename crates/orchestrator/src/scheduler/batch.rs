//! Batch and service jobs: keep `Count` partitions placed on distinct nodes; batch jobs complete
//! when every partition completed, service jobs run until stopped.

use super::common::{Triage, fail_job, triage};
use super::{Plan, Scheduler, Snapshot, execution_event, new_execution, select_nodes};
use bacalhau_models::content::{self, Identity};
use bacalhau_models::history::Topic;
use bacalhau_models::{
    Evaluation, Execution, ExecutionStateType, JobStateType, State, Timestamp, TriggeredBy,
    ids::short_id,
};
use std::collections::{BTreeMap, BTreeSet};

/// Every replica of a verified job completed: the job completes when their results agree and
/// fails naming each node and its result when they do not.
fn verdict(
    mut plan: Plan,
    snapshot: &Snapshot,
    live: &[&Execution],
    done: &[&Execution],
    now: Timestamp,
) -> Plan {
    let job = &snapshot.job;
    // The latest completion of each replica.
    let mut replicas: BTreeMap<u64, &Execution> = BTreeMap::new();
    for execution in done {
        let newer = replicas
            .get(&execution.partition_index)
            .is_none_or(|seen| seen.modify_time <= execution.modify_time);
        if newer {
            replicas.insert(execution.partition_index, execution);
        }
    }
    let results: Vec<(&Execution, Option<Identity>)> = replicas
        .values()
        .map(|e| (*e, content::result_identity(e)))
        .collect();
    let mut tally: BTreeMap<Option<&Identity>, usize> = BTreeMap::new();
    for (_, identity) in &results {
        *tally.entry(identity.as_ref()).or_default() += 1;
    }
    let shown = |identity: &Option<Identity>| {
        identity
            .as_ref()
            .map_or("no result identity".to_string(), Identity::to_string)
    };
    let mut details = BTreeMap::new();
    for (execution, identity) in &results {
        details.insert(format!("Node:{}", execution.node_id), shown(identity));
    }
    if let [(Some(identity), agreeing)] =
        tally.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>()[..]
    {
        plan.events.push(super::job_event(
            job,
            Topic::Verification,
            format!("Verified: {agreeing} nodes agree on result {identity}"),
            details,
            now,
        ));
        plan.set_job_state(job, State::new(JobStateType::Completed), now);
        return plan;
    }
    // Name the odd ones: the nodes outside the largest agreeing group.
    let majority = tally.iter().max_by_key(|(_, n)| **n).map(|(k, _)| *k);
    let odd: Vec<String> = results
        .iter()
        .filter(|(_, identity)| Some(identity.as_ref()) != majority || identity.is_none())
        .map(|(e, identity)| format!("{} ({})", e.node_id, shown(identity)))
        .collect();
    let all: Vec<String> = results
        .iter()
        .map(|(e, identity)| format!("{}: {}", e.node_id, shown(identity)))
        .collect();
    let reason = format!(
        "verification failed: the nodes' results differ ({}); odd: {}",
        all.join(", "),
        odd.join(", ")
    );
    plan.events.push(super::job_event(
        job,
        Topic::Verification,
        reason.clone(),
        details.clone(),
        now,
    ));
    fail_job(&mut plan, snapshot, live, reason, details, now);
    plan
}

/// Places `Count` partitions; `long_running` marks service jobs, which never complete.
pub struct BatchScheduler {
    /// Service jobs replace completed executions instead of completing.
    pub long_running: bool,
}

impl Scheduler for BatchScheduler {
    fn plan(&self, eval: &Evaluation, snapshot: &Snapshot, now: Timestamp) -> Plan {
        let job = &snapshot.job;
        let mut plan = Plan::new(eval, job);
        let Triage { live } = match triage(&mut plan, snapshot, self.long_running, now) {
            Some(t) => t,
            None => return plan,
        };

        // A verified job runs one replica per node, each an execution numbered as a partition
        // (the node runs partition `index mod Count`, so all read the same data).
        let verify = content::verify_count(job).filter(|_| !self.long_running && job.count == 1);
        let count = verify.unwrap_or_else(|| u64::try_from(job.count).unwrap_or(0));
        let done: Vec<&Execution> = snapshot
            .executions
            .iter()
            .filter(|e| {
                e.job_version == job.version
                    && e.compute_state.state_type == ExecutionStateType::Completed
            })
            .collect();
        let completed: BTreeSet<u64> = done.iter().map(|e| e.partition_index).collect();
        if !self.long_running && count > 0 && (0..count).all(|p| completed.contains(&p)) {
            if verify.is_some() {
                return verdict(plan, snapshot, &live, &done, now);
            }
            plan.set_job_state(job, State::new(JobStateType::Completed), now);
            return plan;
        }
        if !self.long_running && count == 0 {
            // Scaled to zero: nothing to run, nothing left to do.
            plan.set_job_state(job, State::new(JobStateType::Completed), now);
            return plan;
        }

        let active: BTreeSet<u64> = live.iter().map(|e| e.partition_index).collect();
        let mut busy_nodes: BTreeSet<_> = live.iter().map(|e| e.node_id.clone()).collect();
        if verify.is_some() {
            // Every replica on its own node: one that already completed one does not count twice.
            busy_nodes.extend(done.iter().map(|e| e.node_id.clone()));
        }
        let missing: Vec<u64> = (0..count)
            .filter(|p| !active.contains(p) && (self.long_running || !completed.contains(p)))
            .collect();
        if missing.is_empty() {
            if matches!(
                job.state.state_type,
                JobStateType::Pending | JobStateType::Queued
            ) {
                plan.set_job_state(job, State::new(JobStateType::Running), now);
            }
            return plan;
        }

        let selection = select_nodes(
            job,
            &snapshot.executions,
            &snapshot.nodes,
            &busy_nodes,
            Some(missing.len()),
        );
        for (partition, node_id) in missing.iter().zip(&selection.ranked) {
            let execution = new_execution(job, eval, node_id, *partition, now);
            plan.events.push(execution_event(
                job,
                &execution.id,
                Topic::Scheduling,
                format!("Requested execution on {}", short_id(node_id.as_str())),
                now,
            ));
            plan.create.push(execution);
        }
        let placed_all = selection.ranked.len() >= missing.len();
        if placed_all {
            plan.set_job_state(job, State::new(JobStateType::Running), now);
            return plan;
        }

        // Too few nodes: fail now, or wait until the queue timeout runs out.
        let mut reason = selection.not_enough_nodes(missing.len());
        // Say why the last attempt failed: it is usually why no node is left.
        if let Some(last) = snapshot
            .executions
            .iter()
            .filter(|e| {
                matches!(
                    e.compute_state.state_type,
                    ExecutionStateType::Failed | ExecutionStateType::AskForBidRejected
                )
            })
            .max_by_key(|e| e.modify_time)
        {
            reason.push_str(&format!(
                "\n• last failure, execution {}: {}",
                last.id.short(),
                last.compute_state.message
            ));
        }
        let queue_timeout = job.task().map_or(0, |t| t.timeouts.queue_timeout);
        let deadline_passed = eval.triggered_by == TriggeredBy::JobQueue
            && eval.wait_until > 0
            && now >= eval.wait_until;
        // When to look again: at the queue deadline, or, for a job that may not queue, when
        // the disconnected nodes that could run it count as lost (a node that comes back
        // earlier re-evaluates it at once): an orchestrator restart or a short partition
        // must not fail jobs that would have run.
        let (look_again, queued_because) = if queue_timeout > 0 && !deadline_passed {
            let first = job.state.state_type == JobStateType::Pending;
            (
                first.then(|| now.saturating_add(queue_timeout.saturating_mul(1_000_000_000))),
                "Job queued.",
            )
        } else if let Some(until) = selection.reconnecting_until.filter(|_| queue_timeout <= 0) {
            let first = job.state.state_type == JobStateType::Pending
                || eval.triggered_by == TriggeredBy::JobQueue;
            (
                first.then_some(until),
                "Job queued until disconnected nodes come back or count as lost.",
            )
        } else {
            let mut details = std::collections::BTreeMap::new();
            details.insert("NodesRequested".into(), missing.len().to_string());
            details.insert("NodesAvailable".into(), selection.available.to_string());
            details.insert("NodesSuitable".into(), selection.ranked.len().to_string());
            fail_job(&mut plan, snapshot, &live, reason, details, now);
            plan.create.clear();
            plan.events
                .retain(|e| e.event.topic != Topic::Scheduling || e.execution_id.is_none());
            return plan;
        };
        if let Some(at) = look_again {
            let mut follow_up = Evaluation::for_job(job, TriggeredBy::JobQueue, now);
            follow_up.wait_until = at;
            plan.follow_ups.push(follow_up);
        }
        if plan.create.is_empty() && live.is_empty() {
            let message = format!("{queued_because} {reason}");
            if job.state.state_type != JobStateType::Queued {
                plan.events.push(super::job_event(
                    job,
                    Topic::Queueing,
                    message.clone(),
                    Default::default(),
                    now,
                ));
            }
            plan.set_job_state(job, State::with_message(JobStateType::Queued, message), now);
        } else {
            plan.set_job_state(job, State::new(JobStateType::Running), now);
        }
        plan
    }
}
