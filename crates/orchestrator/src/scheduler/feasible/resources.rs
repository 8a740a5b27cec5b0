//! Checks that a job fits in the largest job a node accepts.

use super::{Feasibility, Reject};
use crate::scheduler::{NodeView, job_resources};
use bacalhau_models::resources::format_bytes;
use bacalhau_models::{Execution, Job};

/// The job's resources fit the node's `MaxJobRequirements`.
pub struct FitsMaxJob;

impl Feasibility for FitsMaxJob {
    fn check(&self, job: &Job, _: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let need = job_resources(job);
        let max = &node.state.info.compute_node_info.max_job_requirements;
        if need.cpu > max.cpu + f64::EPSILON {
            return Err(format!(
                "job requires more CPU ({}) than the maximum available ({})",
                need.cpu, max.cpu
            ));
        }
        if need.memory > max.memory {
            return Err(format!(
                "job requires more memory ({}) than the maximum available ({})",
                format_bytes(need.memory),
                format_bytes(max.memory)
            ));
        }
        if need.disk > max.disk {
            return Err(format!(
                "job requires more disk ({}) than the maximum available ({})",
                format_bytes(need.disk),
                format_bytes(max.disk)
            ));
        }
        if need.gpu > max.gpu {
            return Err(format!(
                "job requires more GPUs ({}) than the maximum available ({})",
                need.gpu, max.gpu
            ));
        }
        Ok(())
    }
}
