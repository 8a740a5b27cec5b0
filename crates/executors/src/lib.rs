//! Engines that run executions, one module each, implementing `compute`'s [`Executor`].
//!
//! Only `noop` exists so far; Docker and WebAssembly are to come. An engine never talks to
//! the orchestrator: it gets an execution and a cancel signal, and returns the run's output.

pub mod noop;

use bacalhau_compute::Executor;
use std::sync::Arc;

/// Every engine this build has.
pub fn all() -> Vec<Arc<dyn Executor>> {
    vec![Arc::new(noop::NoopExecutor)]
}
