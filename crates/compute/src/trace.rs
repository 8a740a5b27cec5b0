//! The compute node's spans of a job's trace: `bid` (the node's answer to a `RunExecution`),
//! and `execution` with its `inputs`, `run` and `publish`. Their parent is the job's root,
//! whose IDs both ends take from the job ID (`bacalhau_protocol::trace`), so they join the
//! orchestrator's spans in one tree. Without an OpenTelemetry provider they are no-op spans,
//! started without their parent's IDs or attributes being worked out.

use bacalhau_models::Execution;
use bacalhau_protocol::trace::{TRACER, enabled, job_attribute, job_context};
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

/// Starts span `name` of `execution` under `parent` (the job's root when `None`).
pub(crate) fn start(
    execution: &Execution,
    name: &'static str,
    parent: Option<&Context>,
) -> BoxedSpan {
    let tracer = opentelemetry::global::tracer(TRACER);
    if !enabled() {
        return tracer.start_with_context(name, &Context::new());
    }
    let root;
    let parent = match parent {
        Some(parent) => parent,
        None => {
            root = job_context(&execution.job_id);
            &root
        }
    };
    tracer
        .span_builder(name)
        .with_attributes(vec![
            job_attribute(&execution.job_id),
            KeyValue::new("bacalhau.execution.id", execution.id.to_string()),
            KeyValue::new("bacalhau.node.id", execution.node_id.to_string()),
        ])
        .start_with_context(&tracer, parent)
}

/// The context of `span`, for its children.
pub(crate) fn context_of(span: &BoxedSpan) -> Context {
    use opentelemetry::trace::Span as _;
    Context::new().with_remote_span_context(span.span_context().clone())
}
