//! Checks that a node has the engine, publisher and input source types a job names.

use super::{Feasibility, Reject};
use crate::scheduler::NodeView;
use bacalhau_models::{Execution, Job};

/// The node runs the job's engine.
pub struct SupportsEngine;
/// The node has the job's publisher.
pub struct SupportsPublisher;
/// The node can fetch every input source type of the job.
pub struct SupportsInputSources;

fn supports(kind: &str, wanted: &str, offered: &[String]) -> Result<(), Reject> {
    // `localDirectory` is the deprecated name of `local`.
    let wanted_canonical = if wanted == "localDirectory" {
        "local"
    } else {
        wanted
    };
    if offered
        .iter()
        .any(|o| o.eq_ignore_ascii_case(wanted_canonical))
    {
        Ok(())
    } else {
        Err(format!(
            "does not support {kind} {wanted}, only [{}]",
            offered.join(", ")
        ))
    }
}

impl Feasibility for SupportsEngine {
    fn check(&self, job: &Job, _: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let Some(task) = job.task() else {
            return Ok(());
        };
        let info = &node.state.info.compute_node_info;
        supports("engine", &task.engine.r#type, &info.execution_engines)
    }
}

impl Feasibility for SupportsPublisher {
    fn check(&self, job: &Job, _: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let Some(task) = job.task() else {
            return Ok(());
        };
        if task.publisher.is_empty() {
            return Ok(());
        }
        let info = &node.state.info.compute_node_info;
        supports("publisher", &task.publisher.r#type, &info.publishers)
    }
}

impl Feasibility for SupportsInputSources {
    fn check(&self, job: &Job, _: &[Execution], node: &NodeView) -> Result<(), Reject> {
        let Some(task) = job.task() else {
            return Ok(());
        };
        let info = &node.state.info.compute_node_info;
        for input in &task.input_sources {
            supports("input source", &input.source.r#type, &info.storage_sources)?;
        }
        Ok(())
    }
}
