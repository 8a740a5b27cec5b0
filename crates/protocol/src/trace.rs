//! How the orchestrator and a compute node agree on a job's trace without a word on the wire:
//! a job's trace ID and its root span's ID are taken from the SHA-256 of its job ID, so every
//! span either side records for the job (submit, evaluation, plan; bid, inputs, run, publish)
//! is a child of the same root, across processes, restarts and replays.
//!
//! The root span itself (`job`, from submission to the terminal state) is recorded by the
//! orchestrator when the job ends ([`root_ids`] lends its IDs to the process's ID generator,
//! which the binary installs). With no OpenTelemetry provider installed, every span here is a
//! no-op.

use bacalhau_models::JobId;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The name spans are recorded under.
pub const TRACER: &str = "bacalhau";

/// A job's trace ID and its root span's ID.
pub fn job_ids(job_id: &JobId) -> (TraceId, SpanId) {
    let hash = Sha256::digest(format!("bacalhau-job-trace:{job_id}").as_bytes());
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    trace.copy_from_slice(&hash[..16]);
    span.copy_from_slice(&hash[16..24]);
    // An all-zero ID is invalid; SHA-256 giving one is not a case worth a branch more.
    (TraceId::from_bytes(trace), SpanId::from_bytes(span))
}

/// The context a job's spans are started in: its root span, as a remote parent.
pub fn job_context(job_id: &JobId) -> Context {
    let (trace_id, span_id) = job_ids(job_id);
    Context::new().with_remote_span_context(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// The attribute every span of a job carries.
pub fn job_attribute(job_id: &JobId) -> KeyValue {
    KeyValue::new("bacalhau.job.id", job_id.to_string())
}

/// Whether a trace provider is installed; until then, spans are not even built.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Says a trace provider is installed (the binary, when it exports traces).
pub fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are recorded at all.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

thread_local! {
    static ROOT: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Runs `start` (which must start exactly one span, on this thread, with no parent) with the
/// process's ID generator handing out `job_id`'s root IDs: the span becomes the job's root.
pub fn as_root<T>(job_id: &JobId, start: impl FnOnce() -> T) -> T {
    ROOT.with(|root| root.set(Some(job_ids(job_id))));
    let started = start();
    ROOT.with(|root| root.set(None));
    started
}

/// The root IDs [`as_root`] lends, for the ID generator: a span ID first, then (the span
/// having no parent) its trace ID. `None` outside [`as_root`].
pub fn root_ids() -> Option<(TraceId, SpanId)> {
    ROOT.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_ids_are_its_own_and_the_same_every_time() {
        let a = JobId::from("j-1");
        let b = JobId::from("j-2");
        assert_eq!(job_ids(&a), job_ids(&a));
        assert_ne!(job_ids(&a).0, job_ids(&b).0);
        let context = job_context(&a);
        let span = context.span();
        let parent = span.span_context();
        assert!(parent.is_valid() && parent.is_remote() && parent.is_sampled());
        assert_eq!(parent.trace_id(), job_ids(&a).0);
        assert_eq!(root_ids(), None);
        let inside = as_root(&a, root_ids);
        assert_eq!(inside, Some(job_ids(&a)));
        assert_eq!(root_ids(), None);
    }
}
