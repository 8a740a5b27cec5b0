//! Prefers nodes with more of their capacity free and shorter local queues.

use super::Ranker;
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, Job};

/// Scores by the share of CPU and memory free, less the share queued.
pub struct FreeCapacity;

fn share(free: f64, max: f64) -> f64 {
    if max <= 0.0 {
        0.0
    } else {
        (free / max).clamp(0.0, 1.0)
    }
}

impl Ranker for FreeCapacity {
    fn score(&self, _: &Job, _: &[Execution], node: &NodeView) -> f64 {
        let info = &node.state.info.compute_node_info;
        let max = &info.max_capacity;
        let free = &info.available_capacity;
        let queued = &info.queue_used_capacity;
        let free_share =
            0.5 * share(free.cpu, max.cpu) + 0.5 * share(free.memory as f64, max.memory as f64);
        let queue_share = share(queued.cpu, max.cpu);
        (0.8 * free_share + 0.2 * (1.0 - queue_share)).clamp(0.0, 1.0)
    }
}
