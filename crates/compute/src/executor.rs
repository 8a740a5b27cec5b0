//! The executor role: runs one execution of one engine and returns its output.

use bacalhau_models::{Execution, RunCommandResult};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use tokio::sync::watch;

/// What an executor gets to run an execution.
pub struct ExecutionContext {
    /// The execution, with its job.
    pub execution: Execution,
    /// Turns `true` when the execution must stop (job stopped, timeout).
    pub cancel: watch::Receiver<bool>,
    /// A directory of this execution's own on the node: logs (`stdout`, `stderr`) and
    /// results go here. It outlives the run so logs can be read afterwards.
    pub work_dir: PathBuf,
    /// The task's inputs, already on the node; engines mount them read-only at their targets.
    pub inputs: Vec<crate::inputs::PreparedInput>,
    /// The task's result paths, each a host directory the engine mounts writable at its
    /// target; empty when the task publishes nothing.
    pub results: Vec<crate::publisher::ResultMount>,
    /// Where the engine notes what it resolved the task's image to (a Docker image's ID), for
    /// the task's content key; engines without an image leave it empty.
    pub resolved_image: std::sync::Arc<std::sync::OnceLock<bacalhau_models::content::Identity>>,
}

/// Why an execution did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The execution was cancelled.
    #[error("execution cancelled")]
    Cancelled,
    /// The spec cannot run on this engine (bad params, missing image): retrying elsewhere
    /// would fail the same way.
    #[error("{0}")]
    InvalidSpec(String),
    /// The job's own doing (out of memory, timed out): not retried.
    #[error("{0}")]
    JobFault(String),
    /// The engine failed; another attempt may succeed.
    #[error("{0}")]
    Failed(String),
}

impl ExecutorError {
    /// Whether another attempt could succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

/// A boxed future, so executors can be chosen at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs executions of one engine type.
pub trait Executor: Send + Sync {
    /// The engine's name as jobs write it: `docker`, `wasm`, `noop`.
    fn engine(&self) -> &'static str;

    /// Runs the execution to its end. A non-zero exit code is a result, not an error.
    fn run(
        &self,
        context: ExecutionContext,
    ) -> BoxFuture<'_, Result<RunCommandResult, ExecutorError>>;
}
