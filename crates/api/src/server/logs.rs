//! `GET /api/v1/orchestrator/jobs/{id}/logs`: an execution's output over a WebSocket, as
//! upstream streams it: one text frame per piece, `{"value":{"Type":1,"Line":"..."}}` (1 stdout,
//! 2 stderr), or `{"error":"...","value":{"Type":0,"Line":""}}`, then a normal close.

use super::query::Params;
use super::{ApiError, AppState};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bacalhau_orchestrator::JobVersions;
use bacalhau_orchestrator::nodes::LogEvent;
use std::sync::Arc;

/// One frame of the log stream, upstream's `AsyncResult[ExecutionLog]`.
pub fn frame(kind: u8, line: &str, error: Option<&str>) -> String {
    let value = serde_json::json!({"Type": kind, "Line": line});
    match error {
        Some(error) => serde_json::json!({"error": error, "value": value}).to_string(),
        None => serde_json::json!({"value": value}).to_string(),
    }
}

/// Checks the version parameters before the upgrade, so a bad one is a 400 like on every other
/// route rather than an error frame.
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let params = Params(params);
    // As upstream: the executions of the version named, else of every version; so
    // `all_job_versions` changes nothing here, but must still be a boolean.
    params.optional_flag("all_job_versions")?;
    let versions = match params.number("job_version")? {
        0 => JobVersions::All,
        version => JobVersions::Only(version),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    Ok(upgrade.on_upgrade(move |socket| async move {
        serve(socket, state, id, params, versions).await;
    }))
}

async fn serve(
    mut socket: WebSocket,
    state: Arc<AppState>,
    id: String,
    params: Params,
    versions: JobVersions,
) {
    let follow = params.flag("follow").unwrap_or(false);
    // `tail=N` keeps the last N lines; upstream's `tail=true` means "only new lines".
    let tail = match params.text("tail") {
        None | Some("false") => None,
        Some(t) if t.eq_ignore_ascii_case("true") => Some(0),
        Some(n) => n.parse::<usize>().ok(),
    };
    let opened = state
        .orchestrator
        .logs(
            &id,
            params.text("namespace").unwrap_or_default(),
            versions,
            params.text("execution_id"),
            tail,
            follow,
        )
        .await;
    let mut events = match opened {
        Ok(events) => events,
        Err(e) => {
            let _ = socket
                .send(Message::Text(frame(0, "", Some(&e.to_string())).into()))
                .await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(LogEvent::Line { kind, text }) => {
                    if socket.send(Message::Text(frame(kind, &text, None).into())).await.is_err() {
                        return;
                    }
                }
                Some(LogEvent::End { error }) => {
                    if !error.is_empty() {
                        let _ = socket.send(Message::Text(frame(0, "", Some(&error)).into())).await;
                    }
                    break;
                }
                None => break,
            },
            incoming = socket.recv() => {
                // The client hung up (or spoke out of turn, which ends the stream too).
                if !matches!(incoming, Some(Ok(Message::Ping(_) | Message::Pong(_)))) {
                    return;
                }
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
