//! Prefers the nodes that already hold a job's inputs: the job goes to the data, unless the
//! holder has no room for it now; then fetching the data beats waiting in the holder's queue.

use super::Ranker;
use crate::scheduler::{NodeView, job_resources};
use bacalhau_models::{Execution, Job};

/// The share of the job's inputs the node holds (allow-listed paths, S3 prefixes and IPFS
/// roots it names), counted only while the node's free capacity fits the job.
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
        let info = &node.state.info.compute_node_info;
        if !job_resources(job).fits_in(&info.available_capacity) {
            return 0.0;
        }
        let held = &info.data_locality;
        let count = inputs.iter().filter(|input| held.holds(input)).count();
        count as f64 / inputs.len() as f64
    }
}
