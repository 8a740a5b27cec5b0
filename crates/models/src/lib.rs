//! Bacalhau's job model: the types that travel on the wire and live in the store.
//!
//! [`Job`] holds [`Task`]s, each naming an engine, input sources, a publisher and resources.
//! The orchestrator turns a job into [`Evaluation`]s and [`Execution`]s; every change is
//! recorded as a [`JobHistory`] event. [`Node`](node::NodeState) describes compute nodes.
//! Field names and enum encodings match upstream Bacalhau v1.9's REST API (its OpenAPI
//! document and wire enums).
//! Specs parse from YAML or JSON with keys matched case-insensitively ([`spec`]).
//! This crate does no I/O: no files, no network, no clocks except through arguments.
//! Start at `job.rs` (`Job::normalize`, `Job::validate`).

pub mod content;
pub mod evaluation;
pub mod execution;
pub mod history;
pub mod ids;
pub mod job;
pub mod lineage;
pub mod node;
pub mod resources;
pub mod selector;
pub mod spec;
pub mod state;
pub mod task;
pub mod template;
pub mod time;

pub use evaluation::{Evaluation, EvaluationStatus, TriggeredBy};
pub use execution::{AllocatedResources, Execution, RunCommandResult};
pub use history::{Event, JobHistory, JobHistoryType};
pub use ids::{EvaluationId, ExecutionId, JobId, NodeId};
pub use job::{Job, JobType, ValidationError};
pub use node::{NodeInfo, NodeState};
pub use resources::{Resources, ResourcesConfig};
pub use selector::{LabelSelectorRequirement, Operator};
pub use spec::{SpecError, parse_job_spec};
pub use state::{ExecutionDesiredStateType, ExecutionStateType, JobStateType, State};
pub use task::{InputSource, NetworkConfig, ResultPath, SpecConfig, Task, TimeoutConfig};
pub use time::Timestamp;

/// The namespace a job lands in when its spec names none.
pub const DEFAULT_NAMESPACE: &str = "default";
