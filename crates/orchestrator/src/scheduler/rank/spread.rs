//! Breaks ties between equal nodes with a hash of job and node: stable for one job, varied
//! across jobs, so a burst of jobs does not pile onto the first node in ID order.

use super::Ranker;
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, Job};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A pseudo-random but reproducible score per (job, node).
pub struct Spread;

impl Ranker for Spread {
    fn score(&self, job: &Job, _: &[Execution], node: &NodeView) -> f64 {
        let mut hasher = DefaultHasher::new();
        job.id.hash(&mut hasher);
        node.id().hash(&mut hasher);
        (hasher.finish() % 10_000) as f64 / 10_000.0
    }
}
