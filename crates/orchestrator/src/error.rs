//! The orchestrator's errors, each naming what a caller did wrong or what failed.

use crate::planner::PlanError;
use crate::store::StoreError;

/// What can go wrong in an orchestrator request.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// No such job, execution or node.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What was looked for: `job`, `node`...
        kind: &'static str,
        /// The ID, prefix or name given.
        id: String,
    },
    /// An ID prefix matched several jobs.
    #[error("{prefix} matches several jobs: {matches}; give more of the ID")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The matching IDs.
        matches: String,
    },
    /// The request itself is wrong (bad spec, bad query).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state (stopping a completed job, an unchanged
    /// resubmission).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// What the user can do about it.
        hint: Option<String>,
    },
    /// A node could not do what it was asked.
    #[error(transparent)]
    Pin(#[from] crate::nodes::PinError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PlanError> for OrchestratorError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Store(s) => Self::Store(s),
            PlanError::JobGone(id) => Self::NotFound {
                kind: "job",
                id: id.to_string(),
            },
            stale @ (PlanError::Stale { .. } | PlanError::ExecutionChanged { .. }) => {
                Self::Conflict {
                    message: stale.to_string(),
                    hint: None,
                }
            }
        }
    }
}
