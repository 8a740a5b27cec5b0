//! The compute node's results server: serves the local publisher's archives
//! (`<execution ID>.tar.gz`) from one directory, with `Content-Length` and range requests, so
//! `job get` (or curl) can fetch them through the URL in `PublishedResult`.

use std::path::PathBuf;
use tokio::net::TcpListener;

/// Serves the files of `dir` (not its listing) until the process ends.
pub async fn serve(listener: TcpListener, dir: PathBuf) -> std::io::Result<()> {
    let files = tower_http::services::ServeDir::new(dir).append_index_html_on_directories(false);
    let app = axum::Router::new().fallback_service(files);
    axum::serve(listener, app).await
}
