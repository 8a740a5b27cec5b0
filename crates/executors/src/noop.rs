//! The `noop` engine: runs nothing and succeeds, for tests and benchmarks. With the param
//! `Duration` (e.g. `2s`) it waits that long first, so long jobs can be tested without an
//! engine; a cancel ends the wait.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{ExecutionContext, Executor, ExecutorError};
use bacalhau_models::RunCommandResult;
use std::time::Duration;

/// Runs nothing and succeeds.
pub struct NoopExecutor;

fn duration(context: &ExecutionContext) -> Result<Duration, ExecutorError> {
    let Some(task) = context.execution.job.as_ref().and_then(|j| j.task()) else {
        return Ok(Duration::ZERO);
    };
    match task.engine.param_str("Duration") {
        None => Ok(Duration::ZERO),
        Some(text) => humantime::parse_duration(text)
            .map_err(|e| ExecutorError::InvalidSpec(format!("Duration {text:?}: {e}"))),
    }
}

impl Executor for NoopExecutor {
    fn engine(&self) -> &'static str {
        "noop"
    }

    fn run(
        &self,
        mut context: ExecutionContext,
    ) -> BoxFuture<'_, Result<RunCommandResult, ExecutorError>> {
        Box::pin(async move {
            let wait = duration(&context)?;
            if *context.cancel.borrow() {
                return Err(ExecutorError::Cancelled);
            }
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = context.cancel.wait_for(|stop| *stop) => return Err(ExecutorError::Cancelled),
                }
            }
            Ok(RunCommandResult::default())
        })
    }
}
