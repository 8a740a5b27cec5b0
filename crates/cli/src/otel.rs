//! OpenTelemetry export, switched on as upstream's is: by `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT`), with the SDK's other
//! `OTEL_*` variables (headers, service name, resource attributes, batch and export
//! intervals) read by the SDK itself. Traces and metrics go out over OTLP/HTTP (protobuf).
//!
//! The libraries record spans through the OpenTelemetry API alone; this installs the
//! provider, with an ID generator that gives each job's root span the IDs both ends derive
//! from the job ID (`bacalhau_protocol::trace`). Metrics are observed from the same figures
//! `/metrics` serves, when the exporter asks (every `OTEL_METRIC_EXPORT_INTERVAL`).

use anyhow::{Context as _, Result};
use bacalhau_compute::ComputeNode;
use bacalhau_orchestrator::Orchestrator;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::WithHttpConfig as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use std::sync::{Arc, OnceLock, Weak};

/// The installed providers; nothing when no OTLP endpoint is set.
#[derive(Default)]
pub struct Otel {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
}

fn set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

impl Otel {
    /// Installs the exporters the environment asks for; `node` names this process's node
    /// in every span and metric (`bacalhau.node.id`).
    pub fn from_env(node: &str) -> Result<Self> {
        if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self::default());
        }
        let any = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        let traces = any || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let metrics = any || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        if !traces && !metrics {
            return Ok(Self::default());
        }
        if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
            && protocol != "http/protobuf"
        {
            tracing::warn!(
                %protocol,
                "OTEL_EXPORTER_OTLP_PROTOCOL: this binary exports over http/protobuf only (OTLP/HTTP, port 4318 by convention)"
            );
        }
        let mut resource = opentelemetry_sdk::Resource::builder()
            .with_attribute(KeyValue::new("bacalhau.node.id", node.to_string()));
        if !set("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name("bacalhau");
        }
        let resource = resource.build();
        let mut otel = Self::default();
        if traces {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(BlockingClient::default())
                .build()
                .context("cannot set up the OTLP trace exporter")?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_id_generator(JobRootIds::default())
                .with_resource(resource.clone())
                .build();
            opentelemetry::global::set_tracer_provider(provider.clone());
            bacalhau_protocol::trace::set_enabled();
            otel.traces = Some(provider);
        }
        if metrics {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_http_client(BlockingClient::default())
                .build()
                .context("cannot set up the OTLP metric exporter")?;
            let provider = SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource)
                .build();
            opentelemetry::global::set_meter_provider(provider.clone());
            otel.metrics = Some(provider);
        }
        tracing::info!(traces, metrics, "exporting to OpenTelemetry over OTLP/HTTP");
        Ok(otel)
    }

    fn meter(&self) -> Option<Meter> {
        self.metrics
            .as_ref()
            .map(|_| opentelemetry::global::meter("bacalhau"))
    }

    /// Exports the orchestrator's figures (jobs by type and state, evaluations queued, nodes
    /// by connection, executions running) while it lives.
    pub fn observe_orchestrator(&self, orchestrator: &Arc<Orchestrator>) {
        let Some(meter) = self.meter() else { return };
        let figures = move |watched: &Weak<Orchestrator>| {
            let orchestrator = watched.upgrade()?;
            orchestrator.figures().ok()
        };
        let watched = Arc::downgrade(orchestrator);
        meter
            .u64_observable_gauge("bacalhau.jobs")
            .with_description("Jobs stored, by type and state")
            .with_callback(move |gauge| {
                for (job_type, state, count) in
                    figures(&watched).map(|f| f.jobs).unwrap_or_default()
                {
                    gauge.observe(
                        count,
                        &[
                            KeyValue::new("type", job_type),
                            KeyValue::new("state", state.as_str()),
                        ],
                    );
                }
            })
            .build();
        let watched = Arc::downgrade(orchestrator);
        meter
            .u64_observable_gauge("bacalhau.evaluations.queued")
            .with_description("Evaluations waiting for a scheduler worker")
            .with_callback(move |gauge| {
                if let Some(f) = figures(&watched) {
                    gauge.observe(f.evaluations_queued, &[]);
                }
            })
            .build();
        let watched = Arc::downgrade(orchestrator);
        meter
            .u64_observable_gauge("bacalhau.nodes")
            .with_description("Compute nodes, by membership and connection")
            .with_callback(move |gauge| {
                for (membership, connection, count) in
                    figures(&watched).map(|f| f.nodes).unwrap_or_default()
                {
                    gauge.observe(
                        count,
                        &[
                            KeyValue::new("membership", membership),
                            KeyValue::new("connection", connection),
                        ],
                    );
                }
            })
            .build();
        let watched = Arc::downgrade(orchestrator);
        meter
            .u64_observable_gauge("bacalhau.executions.running")
            .with_description("Executions running on connected nodes, as they last reported")
            .with_callback(move |gauge| {
                if let Some(f) = figures(&watched) {
                    gauge.observe(f.running_executions, &[]);
                }
            })
            .build();
    }

    /// Exports a compute node's running and queued executions while it lives.
    pub fn observe_compute(&self, node: &Arc<ComputeNode>, name: &str) {
        let Some(meter) = self.meter() else { return };
        let watched = Arc::downgrade(node);
        let label = [KeyValue::new("node", name.to_string())];
        meter
            .i64_observable_gauge("bacalhau.compute.executions")
            .with_description("Executions on the node, running or queued")
            .with_callback(move |gauge| {
                let Some(node) = watched.upgrade() else {
                    return;
                };
                node.refresh_metrics();
                let metrics = node.metrics();
                let with = |state: &str| {
                    let mut labels = label.to_vec();
                    labels.push(KeyValue::new("state", state.to_string()));
                    labels
                };
                gauge.observe(metrics.running.get(), &with("running"));
                gauge.observe(metrics.queued.get(), &with("queued"));
            })
            .build();
    }

    /// Sends what is still buffered and stops the exporters (blocking: call it off the async
    /// runtime's threads).
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "cannot flush the OTLP traces");
        }
        if let Some(provider) = self.metrics
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "cannot flush the OTLP metrics");
        }
    }
}

/// Random IDs, except for a job's root span: the IDs `bacalhau_protocol::trace::as_root`
/// lends while it starts one.
#[derive(Debug, Default)]
struct JobRootIds(RandomIdGenerator);

impl IdGenerator for JobRootIds {
    fn new_trace_id(&self) -> TraceId {
        bacalhau_protocol::trace::root_ids().map_or_else(|| self.0.new_trace_id(), |(t, _)| t)
    }

    fn new_span_id(&self) -> SpanId {
        bacalhau_protocol::trace::root_ids().map_or_else(|| self.0.new_span_id(), |(_, s)| s)
    }
}

/// The exporters' HTTP client: the reqwest this binary already has, blocking, because the
/// SDK exports from threads of its own (no async runtime there). Built on first use, on
/// that thread, as reqwest's blocking client wants.
#[derive(Debug, Default)]
struct BlockingClient(OnceLock<reqwest::blocking::Client>);

#[async_trait::async_trait]
impl HttpClient for BlockingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = match self.0.get() {
            Some(client) => client,
            None => {
                let client = reqwest::blocking::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?;
                self.0.get_or_init(|| client)
            }
        };
        let (parts, body) = request.into_parts();
        let response = client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes()?;
        let mut answer = Response::builder().status(status).body(body)?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}
