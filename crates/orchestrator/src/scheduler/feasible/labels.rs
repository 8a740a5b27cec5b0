//! Checks a job's `Constraints` (label selectors) against a node's labels.

use super::{Feasibility, Reject};
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, Job};

/// Every constraint of the job matches the node's labels.
pub struct MatchesConstraints;

impl Feasibility for MatchesConstraints {
    fn check(&self, job: &Job, _: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let labels = &node.state.info.labels;
        let failed: Vec<String> = job
            .constraints
            .iter()
            .filter(|c| !c.matches(labels))
            .map(ToString::to_string)
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "labels don't match required selectors [{}]",
                failed.join(", ")
            ))
        }
    }
}
