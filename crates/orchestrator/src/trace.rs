//! The orchestrator's spans of a job's trace (`submit`, `evaluation` with its `plan`, and the
//! root `job` when the job ends), recorded after the fact with the clock's times; the IDs
//! that join them with the compute node's spans are `bacalhau_protocol::trace`'s. Without an
//! OpenTelemetry provider (the binary installs one when `OTEL_EXPORTER_OTLP_*` is set) these
//! are no-ops.

use bacalhau_models::{JobId, Timestamp};
use bacalhau_protocol::trace::{TRACER, as_root, job_attribute, job_context};
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
    mut attributes: Vec<KeyValue>,
) -> Context {
    let tracer = opentelemetry::global::tracer(TRACER);
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
