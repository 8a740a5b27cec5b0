//! Keeps retries away from nodes that already failed or refused the job.

use super::{Feasibility, Reject};
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, ExecutionStateType, Job};

/// The node has not failed this job version more than once, nor refused it.
pub struct NotFailedBefore;

impl Feasibility for NotFailedBefore {
    fn check(&self, job: &Job, executions: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let mut failures = 0;
        for execution in executions
            .iter()
            .filter(|e| &e.node_id == node.id() && e.job_version == job.version)
        {
            match execution.compute_state.state_type {
                ExecutionStateType::AskForBidRejected | ExecutionStateType::BidRejected => {
                    return Err("job rejected by this node before".into());
                }
                ExecutionStateType::Failed => failures += 1,
                _ => {}
            }
        }
        if failures > 1 {
            Err("job already failed on this node more than once".into())
        } else {
            Ok(())
        }
    }
}
