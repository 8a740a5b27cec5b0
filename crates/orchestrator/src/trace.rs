//! The orchestrator's spans of a job's trace (`submit`, `evaluation` with its `plan`, and the
//! root `job` when the job ends), recorded after the fact with the clock's times; the IDs
//! that join them with the compute node's spans are `bacalhau_protocol::trace`'s. Until the
//! binary installs a provider (when `OTEL_EXPORTER_OTLP_*` is set) they return at once,
//! before any attribute is built.

use bacalhau_models::{JobId, Timestamp};
use bacalhau_protocol::trace::{TRACER, as_root, enabled, job_attribute, job_context};
use opentelemetry::trace::{Span, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use std::time::{Duration, SystemTime};

fn system_time(at: Timestamp) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(at).unwrap_or(0))
}

/// Records a finished span `name` of `job_id` under `parent` (the job's root when `None`);
/// returns its context, for children.
pub(crate) fn record(
    job_id: &JobId,
    name: &'static str,
    parent: Option<&Context>,
    (start, end): (Timestamp, Timestamp),
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Context {
    if !enabled() {
        return Context::new();
    }
    let tracer = opentelemetry::global::tracer(TRACER);
    let mut attributes = attributes();
    attributes.push(job_attribute(job_id));
    let root;
    let parent = match parent {
        Some(parent) => parent,
        None => {
            root = job_context(job_id);
            &root
        }
    };
    let mut span = tracer
        .span_builder(name)
        .with_start_time(system_time(start))
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    span.end_with_timestamp(system_time(end));
    Context::new().with_remote_span_context(span.span_context().clone())
}

/// Records the job's root span, from its submission to its end in `state`.
pub(crate) fn record_job(
    job_id: &JobId,
    job_type: &str,
    (start, end): (Timestamp, Timestamp),
    state: &str,
) {
    if !enabled() {
        return;
    }
    let tracer = opentelemetry::global::tracer(TRACER);
    let mut span = as_root(job_id, || {
        tracer
            .span_builder("job")
            .with_start_time(system_time(start))
            .with_attributes(vec![
                job_attribute(job_id),
                KeyValue::new("bacalhau.job.type", job_type.to_string()),
                KeyValue::new("bacalhau.job.state", state.to_string()),
            ])
            .start_with_context(&tracer, &Context::new())
    });
    span.end_with_timestamp(system_time(end));
}
