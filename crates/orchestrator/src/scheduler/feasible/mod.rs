//! Feasibility checks: each says whether a node can run a job at all, and if not, why.

mod features;
mod labels;
mod local_paths;
mod previous;
mod resources;

pub use features::{SupportsEngine, SupportsInputSources, SupportsPublisher};
pub use labels::MatchesConstraints;
pub use local_paths::AllowsLocalInputs;
pub use previous::NotFailedBefore;
pub use resources::FitsMaxJob;

use super::NodeView;
use bacalhau_models::{Execution, Job};

/// Why a node cannot run a job, in words for `job describe` (e.g. "does not support wasm").
pub type Reject = String;

/// One yes-or-no question about a node.
pub trait Feasibility: Send + Sync {
    /// `Ok` when the node may run the job; otherwise the reason it may not.
    fn check(&self, job: &Job, executions: &[Execution], node: &NodeView) -> Result<(), Reject>;
}

/// The checks every placement runs, in order: cheapest and most common rejections first, so the
/// reason reported is the most telling one.
pub fn pipeline() -> [&'static dyn Feasibility; 7] {
    [
        // Engine support rules out most nodes in mixed clusters; ask first.
        &SupportsEngine,
        &SupportsPublisher,
        &SupportsInputSources,
        // A host path is only readable where the node allow-lists it.
        &AllowsLocalInputs,
        // Operators pin jobs with labels; a mismatch is a deliberate no.
        &MatchesConstraints,
        // A job bigger than the node's largest slot can never run there.
        &FitsMaxJob,
        // Retries avoid nodes that already failed the job.
        &NotFailedBefore,
    ]
}
