//! The audit log: every history event (jobs, executions, nodes) in the store's order, with its
//! actor and hash chain, for `bacalhau audit export|verify` to read page by page.

use super::query::Params;
use super::{ApiError, AppState};
use crate::apimodels::ListResponse;
use axum::Json;
use axum::extract::{Query, State};
use bacalhau_models::JobHistory;
use std::sync::Arc;

/// Events per page when the client does not say.
const DEFAULT_PAGE: usize = 1000;
/// The most events one page holds.
const MAX_PAGE: usize = 10_000;

/// `GET /api/v1/orchestrator/audit?since=SEQ&limit=N`: the events after `since`; the next
/// page's token is the last sequence number sent (empty at the end).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<ListResponse<JobHistory>>, ApiError> {
    let params = Params(params);
    let since = match params.text("next_token") {
        Some(token) => token.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid next_token {token:?}: expected a number"))
        })?,
        None => params.number("since")?,
    };
    let limit = match params.number("limit")? as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let items = state.orchestrator.audit_log(since, limit)?;
    let next_token = if items.len() == limit {
        items
            .last()
            .map(|e| e.seq_num.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Json(ListResponse { items, next_token }))
}
