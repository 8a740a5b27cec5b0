//! A job reading a host path can only run where that path is allow-listed.

use super::{Feasibility, Reject};
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, Job};

/// The node allow-lists every `local` input path of the job.
pub struct AllowsLocalInputs;

impl Feasibility for AllowsLocalInputs {
    fn check(&self, job: &Job, _: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let Some(task) = job.task() else {
            return Ok(());
        };
        let held = &node.state.info.compute_node_info.data_locality;
        for input in &task.input_sources {
            if !matches!(input.source.r#type.as_str(), "local" | "localDirectory") {
                continue;
            }
            let path = input.source.param_str("SourcePath").unwrap_or_default();
            if !held.allows_local(path) {
                return Err(format!("does not allow-list local path {path}"));
            }
        }
        Ok(())
    }
}
