//! Rankers: each scores a feasible node from 0.0 (worst) to 1.0 (best); they never say no.

mod capacity;
mod locality;
mod spread;

pub use capacity::FreeCapacity;
pub use locality::DataLocality;
pub use spread::Spread;

use super::NodeView;
use bacalhau_models::{Execution, Job};

/// Scores a node for a job.
pub trait Ranker: Send + Sync {
    /// A score in `0.0..=1.0`; higher is better.
    fn score(&self, job: &Job, executions: &[Execution], node: &NodeView) -> f64;
}

/// The rankers and their weights.
pub fn pipeline() -> [(&'static dyn Ranker, f64); 3] {
    [
        // Moving the job to its data beats moving the data: holding the inputs outweighs any
        // difference in free capacity.
        (&DataLocality, 2.0),
        // Free capacity dominates: it keeps queues short and spreads load.
        (&FreeCapacity, 1.0),
        // A deterministic per-job shuffle breaks ties so equal nodes share the work.
        (&Spread, 0.05),
    ]
}
