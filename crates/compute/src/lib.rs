//! Runs executions on this compute node.
//!
//! [`ComputeNode`] keeps one connection to the orchestrator (through a [`Connector`] the
//! binary provides), accepts or rejects each `RunExecution`, queues accepted executions until
//! the [`capacity::CapacityTracker`] has room, runs them on an [`Executor`] and reports every
//! state change back as a `protocol` message written first to its durable outbox
//! ([`store::NodeStore`]). Before a run it fetches the task's inputs through an
//! [`InputStorage`]; after it, hands the results to a [`Publisher`]. This crate owns the
//! `Executor`, `InputStorage` and `Publisher` traits; `executors`, `storage` and `publishers`
//! implement them.
//! It never speaks HTTP and never reads the orchestrator's store. Start at `node.rs`.

pub mod capacity;
pub mod env;
pub mod executor;
pub mod inputs;
pub mod logs;
pub mod metrics;
mod node;
pub mod ports;
pub mod publisher;
mod session;
pub mod store;
mod trace;

pub use env::EnvAllowList;
pub use executor::{ExecutionContext, Executor, ExecutorError};
pub use inputs::{InputError, InputRequest, InputStorage, Partition, PreparedInput, Storages};
pub use node::{ComputeConfig, ComputeNode, Connector, Link, Providers};
pub use publisher::{PublishError, PublishRequest, Published, Publisher, Publishers};
