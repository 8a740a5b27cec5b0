//! The API server: upstream's `/api/v1` routes over an orchestrator.

mod agent;
mod audit;
pub mod auth;
mod cluster;
mod data;
mod error;
mod jobs;
mod logs;
mod nodes;
mod query;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::routing::{get, post, put};
use bacalhau_models::NodeInfo;
use bacalhau_models::node::BuildVersionInfo;
use bacalhau_orchestrator::Orchestrator;
use std::sync::Arc;
use tower::ServiceExt as _;

pub use error::{ApiError, status_of};

/// What the handlers share.
pub struct AppState {
    /// The orchestrator behind the API.
    pub orchestrator: Arc<Orchestrator>,
    /// This node's identity, for `/agent/node`.
    pub node_info: NodeInfo,
    /// The effective configuration with secrets removed, for `/agent/config`.
    pub config: serde_json::Value,
    /// The build version, for `/agent/version` and response headers.
    pub version: BuildVersionInfo,
    /// The API's users; with none the API is open.
    pub auth: auth::Authenticator,
    /// The orchestrator cluster this orchestrator is a member of (`None`: it stands alone).
    pub cluster: Option<bacalhau_cluster::Cluster>,
    /// The HTTP client a follower forwards writes to its leader with.
    pub forwarder: reqwest::Client,
    /// The process's metrics, served at `/metrics`.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

/// Upper bound on request bodies: job specs are small, inline inputs must stay modest.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The routes, before path normalization.
///
/// `extra` holds routes this crate does not own (the binary passes the web UI's, from
/// `bacalhau-webui`; `Router::new()` for none): they are merged in before the layers, so the
/// body limit, the auth middleware and the version headers wrap them as they wrap the API.
pub fn router(state: Arc<AppState>, extra: Router<Arc<AppState>>) -> Router {
    let version = HeaderValue::from_str(&state.version.git_version)
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    let commit = HeaderValue::from_str(&state.version.git_commit)
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    Router::new()
        .route("/api/v1/agent/alive", get(agent::alive))
        .route("/api/v1/agent/version", get(agent::version))
        .route("/api/v1/agent/node", get(agent::node))
        .route("/api/v1/agent/config", get(agent::config))
        .route("/api/v1/agent/debug", get(agent::debug))
        .route("/api/v1/agent/authconfig", get(agent::auth_config))
        .route("/", get(agent::legacy_version))
        .route("/version", get(agent::legacy_version))
        .route("/livez", get(agent::legacy_alive))
        .route(
            "/api/v1/orchestrator/jobs",
            get(jobs::list).put(jobs::submit).post(jobs::submit),
        )
        .route("/api/v1/orchestrator/jobs/diff", put(jobs::diff))
        .route(
            "/api/v1/orchestrator/jobs/{id}",
            get(jobs::get).delete(jobs::stop),
        )
        .route(
            "/api/v1/orchestrator/jobs/{id}/executions",
            get(jobs::executions),
        )
        .route("/api/v1/orchestrator/jobs/{id}/history", get(jobs::history))
        .route("/api/v1/orchestrator/jobs/{id}/wait", get(jobs::wait))
        .route("/api/v1/orchestrator/jobs/{id}/results", get(jobs::results))
        .route("/api/v1/orchestrator/jobs/{id}/lineage", get(jobs::lineage))
        .route(
            "/api/v1/orchestrator/jobs/{id}/versions",
            get(jobs::versions),
        )
        .route("/api/v1/orchestrator/jobs/{id}/rerun", put(jobs::rerun))
        .route("/api/v1/orchestrator/jobs/{id}/logs", get(logs::stream))
        .route(bacalhau_protocol::CONNECT_PATH, get(node_connect))
        .route("/api/v1/orchestrator/audit", get(audit::list))
        .route("/api/v1/orchestrator/data", post(data::pin))
        .route("/api/v1/cluster/status", get(cluster::status))
        .route("/api/v1/cluster/members", post(cluster::add_member))
        .route(
            "/api/v1/cluster/members/{member}",
            axum::routing::delete(cluster::remove_member),
        )
        .route("/api/v1/openapi.json", get(openapi))
        .route("/swagger/doc.json", get(openapi))
        .route(
            "/api/v1/orchestrator/nodes",
            get(nodes::list).post(nodes::update_from_body),
        )
        .route(
            "/api/v1/orchestrator/nodes/{id}",
            get(nodes::get).put(nodes::update),
        )
        .route("/metrics", get(crate::telemetry::metrics))
        .merge(extra)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.telemetry),
            crate::telemetry::count_requests,
        ))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            cluster::route_to_leader,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::authorize,
        ))
        .layer(axum::middleware::map_response(
            move |mut response: axum::response::Response| {
                let version = version.clone();
                let commit = commit.clone();
                async move {
                    let headers = response.headers_mut();
                    headers.insert("X-Bacalhau-Git-Version", version);
                    headers.insert("X-Bacalhau-Git-Commit", commit);
                    response
                }
            },
        ))
        .with_state(state)
}

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Upgrades a compute node's connection to the node channel.
async fn node_connect(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> axum::response::Response {
    let manager = Arc::clone(state.orchestrator.node_manager());
    upgrade
        .max_message_size(MAX_BODY_BYTES)
        // One socket per node: the default 128 KiB read buffer would cost 1.25 GiB at 10 000
        // nodes; frames are small (heartbeats, updates), and larger ones still arrive whole.
        .read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| crate::node_channel::serve_socket(socket, manager))
}

/// Collapses repeated slashes (`//api/v1/...`), which some clients send when their base URL
/// ends in `/`.
fn normalize_path(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.contains("//") {
        let mut collapsed = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && collapsed.ends_with('/')) {
                collapsed.push(c);
            }
        }
        let rebuilt = match request.uri().query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Serves the API, with the `extra` routes of [`router`], on `listener` (plain TCP or
/// [`crate::tls::TlsListener`]) until `shutdown` resolves.
pub async fn serve<L>(
    listener: L,
    state: Arc<AppState>,
    extra: Router<Arc<AppState>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = router(state, extra).map_request(normalize_path);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests;
