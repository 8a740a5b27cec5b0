//! Node routes: list, get, and approve/reject/delete.

use super::auth::Principal;
use super::query::Params;
use super::{ApiError, AppState};
use crate::apimodels::{GetNodeResponse, ListNodesResponse, PutNodeRequest, PutNodeResponse};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use std::collections::HashMap;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

pub async fn list(
    State(state): Shared,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ListNodesResponse>, ApiError> {
    let params = Params(params);
    let approval = params
        .text("filter_approval")
        .or_else(|| params.text("filter-approval"));
    let status = params
        .text("filter_status")
        .or_else(|| params.text("filter-status"));
    let mut nodes = state.orchestrator.nodes(approval, status)?;
    if params.flag("reverse")? {
        nodes.reverse();
    }
    let limit = params.number("limit")? as usize;
    if limit > 0 {
        nodes.truncate(limit);
    }
    Ok(Json(ListNodesResponse {
        nodes,
        next_token: String::new(),
    }))
}

pub async fn get(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<GetNodeResponse>, ApiError> {
    Ok(Json(GetNodeResponse {
        node: state.orchestrator.node(&id)?,
    }))
}

fn parse_request(body: &Bytes) -> Result<PutNodeRequest, ApiError> {
    if body.is_empty() {
        return Ok(PutNodeRequest::default());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    serde_json::from_value(bacalhau_models::spec::canonicalize_keys(value))
        .map_err(|e| ApiError::bad_request(format!("invalid node request: {e}")))
}

async fn apply(
    state: &AppState,
    caller: &Principal,
    id: &str,
    action: &str,
) -> Result<Json<PutNodeResponse>, ApiError> {
    if action.is_empty() {
        return Err(ApiError::bad_request(
            "missing Action: use approve, reject or delete",
        ));
    }
    state
        .orchestrator
        .update_node(id, action, caller.name())
        .await?;
    Ok(Json(PutNodeResponse {
        success: true,
        error: String::new(),
    }))
}

pub async fn update(
    State(state): Shared,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<PutNodeResponse>, ApiError> {
    let request = parse_request(&body)?;
    apply(&state, &caller, &id, &request.action).await
}

/// `POST /api/v1/orchestrator/nodes` with the node in the body, as older clients send it.
pub async fn update_from_body(
    State(state): Shared,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Result<Json<PutNodeResponse>, ApiError> {
    let request = parse_request(&body)?;
    if request.node_id.is_empty() {
        return Err(ApiError::bad_request("missing NodeID"));
    }
    apply(&state, &caller, &request.node_id, &request.action).await
}
