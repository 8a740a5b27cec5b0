//! `GET /metrics`: the process's figures in OpenMetrics text (Prometheus' format).
//!
//! [`Telemetry`] holds one registry for the process (prefix `bacalhau_`). Each part registers
//! its families when it starts (the orchestrator's, each compute node's under a `node` label,
//! the API's own) and may add a refresher that sets its gauges from live state just before a
//! scrape encodes them, so a gauge is never older than the scrape that reads it.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// The content type of what `prometheus-client` writes: OpenMetrics text (Prometheus' text
/// format with `_total` counters named apart from their family and an `# EOF` line), which
/// Prometheus scrapes as such.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An API request, as labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP method.
    pub method: String,
    /// The route's pattern (`/api/v1/orchestrator/jobs/{id}`), not the path: IDs would make
    /// a series per job.
    pub route: String,
    /// The response's status code.
    pub status: u16,
}

/// Sets gauges from live state before a scrape.
type Refresher = Box<dyn Fn() + Send + Sync>;

/// The process's metric registry and the API's own figures.
pub struct Telemetry {
    registry: Mutex<Registry>,
    refreshers: Mutex<Vec<Refresher>>,
    /// API requests answered, by method, route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Result archives and blocks served by results servers.
    pub results_served: Counter,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("bacalhau");
        let requests = Family::<RequestLabels, Counter>::default();
        let results_served = Counter::default();
        registry.register(
            "api_requests",
            "API requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "results_served",
            "Result archives and blocks served to clients",
            results_served.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            refreshers: Mutex::new(Vec::new()),
            requests,
            results_served,
        }
    }
}

impl Telemetry {
    /// Lets `register` add families to the registry (`bacalhau_` prefixed).
    pub fn register(&self, register: impl FnOnce(&mut Registry)) {
        register(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Runs `refresh` before every scrape (to set gauges from live state).
    pub fn on_scrape(&self, refresh: impl Fn() + Send + Sync + 'static) {
        self.refreshers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(refresh));
    }

    /// Every figure in Prometheus' text format, gauges refreshed first.
    pub fn render(&self) -> String {
        for refresh in self
            .refreshers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            refresh();
        }
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail; the encoder's own errors are format errors.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }

    /// The `/metrics` response.
    pub fn response(&self) -> Response {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], self.render()).into_response()
    }
}

/// The `/metrics` response, rendered off the async threads: reading the store and the nodes
/// is blocking work.
pub async fn scrape(telemetry: Arc<Telemetry>) -> Response {
    match tokio::task::spawn_blocking(move || telemetry.response()).await {
        Ok(response) => response,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /metrics` on the API.
pub async fn metrics(State(state): State<Arc<crate::server::AppState>>) -> Response {
    scrape(Arc::clone(&state.telemetry)).await
}

/// Counts each routed request by method, route pattern and status.
pub async fn count_requests(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    telemetry
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
