//! Prefers the nodes that already hold a job's inputs: the job goes to the data.

use super::Ranker;
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, Job};

/// The share of the job's inputs the node holds (allow-listed paths, S3 prefixes it names).
pub struct DataLocality;

impl Ranker for DataLocality {
    fn score(&self, job: &Job, _: &[Execution], node: &NodeView) -> f64 {
        let Some(task) = job.task() else {
            return 0.0;
        };
        let inputs = &task.input_sources;
        if inputs.is_empty() {
            return 0.0;
        }
        let held = &node.state.info.compute_node_info.data_locality;
        let count = inputs.iter().filter(|input| held.holds(input)).count();
        count as f64 / inputs.len() as f64
    }
}
