//! Engines that run executions, one module each, implementing `compute`'s [`Executor`].
//!
//! `docker` runs containers on the local Docker engine, `wasm` runs WASI modules in process
//! with wasmtime, `noop` runs nothing. An engine never talks to the orchestrator: it gets an execution, a cancel signal and
//! a directory, and returns the run's output.

pub mod docker;
pub mod http_proxy;
pub mod noop;
pub mod registry;
pub mod wasm;

use bacalhau_compute::Executor;
use std::sync::Arc;

/// The engines that need nothing from the host: noop, and wasm when wasmtime starts.
pub fn builtin() -> Vec<Arc<dyn Executor>> {
    let mut executors: Vec<Arc<dyn Executor>> = vec![Arc::new(noop::NoopExecutor)];
    match wasm::WasmExecutor::new() {
        Ok(wasm) => executors.push(Arc::new(wasm)),
        Err(e) => tracing::warn!(error = %e, "the wasm engine is disabled"),
    }
    executors
}

/// Every engine available on this host for node `node_id`: the built-in ones, plus Docker when
/// a Docker engine answers (after removing containers an earlier run of this node left).
pub async fn available(
    node_id: &str,
    metrics: &bacalhau_compute::metrics::ComputeMetrics,
) -> Vec<Arc<dyn Executor>> {
    let mut executors = builtin();
    if let Some(docker) = docker::DockerExecutor::connect(node_id).await {
        let docker = docker.counting_pulls(metrics.image_pulls.clone());
        docker.reap_orphans().await;
        executors.push(Arc::new(docker));
    }
    executors
}
