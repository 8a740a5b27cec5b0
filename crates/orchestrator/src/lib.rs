//! The orchestrator: stores jobs, brokers evaluations, runs schedulers, applies plans.
//!
//! [`Orchestrator`] is the one entry point the API uses: it accepts submissions, stops and
//! reruns, and answers queries from the [`store::Store`]. Each submission writes the job, its
//! history and an [`Evaluation`](bacalhau_models::Evaluation) in one transaction; the
//! [`broker::EvaluationBroker`] hands evaluations to workers that ask the job type's
//! [`scheduler::Scheduler`] for a [`scheduler::Plan`] and apply it with [`planner::apply`].
//! This crate knows no HTTP and no engine; nodes are reached only through messages.
//! Start at `endpoint/mod.rs` and `scheduler/mod.rs`.

pub mod broker;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod lineage;
pub mod metrics;
pub mod nodes;
pub mod planner;
pub mod scheduler;
pub mod store;
pub mod timeline;
mod trace;
pub mod worker;

pub use endpoint::{
    ClusterLink, HistoryQuery, JobQuery, JobVersions, Orchestrator, OrchestratorConfig, Rerun,
    STORE_FILE, Submitted,
};
pub use error::OrchestratorError;
