//! Ops and daemon jobs: one execution on every matching node. Ops jobs complete when every
//! execution finished; daemon jobs run forever and start on nodes that join later.

use super::common::{Triage, fail_job, triage};
use super::{Plan, Scheduler, Snapshot, execution_event, new_execution, select_nodes};
use bacalhau_models::history::Topic;
use bacalhau_models::{
    Evaluation, ExecutionStateType, JobStateType, State, Timestamp, ids::short_id,
};
use std::collections::BTreeSet;

/// Targets every matching node; `long_running` marks daemon jobs.
pub struct AllNodesScheduler {
    /// Daemon jobs never complete.
    pub long_running: bool,
}

impl Scheduler for AllNodesScheduler {
    fn plan(&self, eval: &Evaluation, snapshot: &Snapshot, now: Timestamp) -> Plan {
        let job = &snapshot.job;
        let mut plan = Plan::new(eval, job);
        let Triage { live } = match triage(&mut plan, snapshot, self.long_running, now) {
            Some(t) => t,
            None => return plan,
        };
        let current: Vec<_> = snapshot
            .executions
            .iter()
            .filter(|e| e.job_version == job.version)
            .collect();
        // An ops job runs once per node; a daemon keeps one live execution per node.
        let used: BTreeSet<_> = if self.long_running {
            live.iter().map(|e| e.node_id.clone()).collect()
        } else {
            current.iter().map(|e| e.node_id.clone()).collect()
        };
        let selection = select_nodes(job, &snapshot.executions, &snapshot.nodes, &used, None);
        for node_id in &selection.ranked {
            let execution = new_execution(job, eval, node_id, 0, now);
            plan.events.push(execution_event(
                job,
                &execution.id,
                Topic::Scheduling,
                format!("Requested execution on {}", short_id(node_id.as_str())),
                now,
            ));
            plan.create.push(execution);
        }
        if self.long_running {
            plan.set_job_state(job, State::new(JobStateType::Running), now);
            return plan;
        }
        if current.is_empty() && plan.create.is_empty() {
            let reason = format!(
                "not matching nodes to run job out of {} available nodes.{}",
                selection.available,
                selection
                    .rejections
                    .iter()
                    .map(|(r, n)| format!("\n• {} nodes: {r}", n.len()))
                    .collect::<String>()
            );
            fail_job(&mut plan, snapshot, &live, reason, Default::default(), now);
            return plan;
        }
        if plan.create.is_empty() && live.is_empty() {
            let any_failed = current
                .iter()
                .any(|e| e.compute_state.state_type != ExecutionStateType::Completed);
            if any_failed {
                fail_job(
                    &mut plan,
                    snapshot,
                    &live,
                    "Job failed because one or more executions failed".into(),
                    Default::default(),
                    now,
                );
            } else {
                plan.set_job_state(job, State::new(JobStateType::Completed), now);
            }
            return plan;
        }
        plan.set_job_state(job, State::new(JobStateType::Running), now);
        plan
    }
}
