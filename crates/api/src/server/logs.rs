//! `GET /api/v1/orchestrator/jobs/{id}/logs`: an execution's output over a WebSocket, as
//! upstream streams it: one text frame per piece, `{"value":{"Type":1,"Line":"..."}}` (1 stdout,
//! 2 stderr), or `{"error":"...","value":{"Type":0,"Line":""}}`, then a normal close.

use super::AppState;
use super::query::Params;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bacalhau_orchestrator::nodes::LogEvent;
use std::collections::HashMap;
use std::sync::Arc;

/// One frame of the log stream, upstream's `AsyncResult[ExecutionLog]`.
pub fn frame(kind: u8, line: &str, error: Option<&str>) -> String {
    let value = serde_json::json!({"Type": kind, "Line": line});
    match error {
        Some(error) => serde_json::json!({"error": error, "value": value}).to_string(),
        None => serde_json::json!({"value": value}).to_string(),
    }
}

pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| async move {
        let params = Params(params);
        serve(socket, state, id, params).await;
    })
}

async fn serve(mut socket: WebSocket, state: Arc<AppState>, id: String, params: Params) {
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
