//! The compute node's results server: serves the local publisher's archives
//! (`<execution ID>.tar.gz`) from one directory, with `Content-Length` and range requests, so
//! `job get` (or curl) can fetch them through the URL in `PublishedResult`; and, at
//! `/ipfs/<CID>`, the blocks of the node's block store, which `job get` checks against their
//! CIDs.

use crate::telemetry::Telemetry;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bacalhau_content::BlockStore;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the files of `dir` (not its listing), and the blocks of `blocks`, until the process
/// ends; each one served is counted in `telemetry`, which a compute node without an API of
/// its own also serves here at `/metrics` (`metrics_here`).
pub async fn serve(
    listener: TcpListener,
    dir: PathBuf,
    blocks: Option<BlockStore>,
    telemetry: Arc<Telemetry>,
    metrics_here: bool,
) -> std::io::Result<()> {
    let files = tower_http::services::ServeDir::new(dir).append_index_html_on_directories(false);
    let mut app = axum::Router::new();
    if let Some(blocks) = blocks {
        app = app.route("/ipfs/{cid}", axum::routing::get(block).with_state(blocks));
    }
    let counted = Arc::clone(&telemetry);
    let mut app = app
        .fallback_service(files)
        .layer(axum::middleware::map_response(move |response: Response| {
            if response.status().is_success() {
                counted.results_served.inc();
            }
            async move { response }
        }));
    if metrics_here {
        app = app.route(
            "/metrics",
            axum::routing::get(move || crate::telemetry::scrape(Arc::clone(&telemetry))),
        );
    }
    axum::serve(listener, app).await
}

/// One block, as stored (and checked) by the node.
async fn block(State(blocks): State<BlockStore>, Path(cid): Path<String>) -> Response {
    let Ok(cid) = bacalhau_content::parse_cid(&cid) else {
        return (StatusCode::BAD_REQUEST, format!("{cid} is not a CID")).into_response();
    };
    match tokio::task::spawn_blocking(move || blocks.get(&cid)).await {
        Ok(Ok(Some(bytes))) => (
            [(axum::http::header::CONTENT_TYPE, "application/vnd.ipld.raw")],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, "block not held by this node").into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
