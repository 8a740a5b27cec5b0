//! Node routes: list, get, and approve/reject/delete.

use super::auth::Principal;
use super::query::{Params, order_by};
use super::{ApiError, AppState};
use crate::apimodels::{GetNodeResponse, ListNodesResponse, PutNodeRequest, PutNodeResponse};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use bacalhau_models::NodeState;
use bacalhau_models::node::{ConnectionStatus, Membership};
use std::cmp::Ordering;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// The `order_by` values of the node list, as upstream's.
const NODE_ORDERS: &[&str] = &[
    "id",
    "type",
    "available_cpu",
    "available_memory",
    "available_disk",
    "available_gpu",
    "approval",
    "status",
];

/// A filter's value checked against what upstream's CLI offers (any case).
fn filter<'a>(
    params: &'a Params,
    keys: [&str; 2],
    allowed: &[&str],
) -> Result<Option<&'a str>, ApiError> {
    let Some(value) = params.text(keys[0]).or_else(|| params.text(keys[1])) else {
        return Ok(None);
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        Ok(Some(value))
    } else {
        Err(ApiError::bad_request(format!(
            "invalid {} {value:?}: use one of {}",
            keys[0],
            allowed.join(", ")
        )))
    }
}

/// How two nodes compare under `order_by`; free capacity sorts largest first, as upstream.
fn compare(order: &str, a: &NodeState, b: &NodeState) -> Ordering {
    let free = |n: &NodeState| n.info.compute_node_info.available_capacity.clone();
    match order {
        "type" => a.info.node_type.cmp(&b.info.node_type),
        "available_cpu" => free(b).cpu.total_cmp(&free(a).cpu),
        "available_memory" => free(b).memory.cmp(&free(a).memory),
        "available_disk" => free(b).disk.cmp(&free(a).disk),
        "available_gpu" => free(b).gpu.cmp(&free(a).gpu),
        "approval" => a.membership.as_str().cmp(b.membership.as_str()),
        "status" => a
            .connection_state
            .status
            .as_str()
            .cmp(b.connection_state.status.as_str()),
        _ => a.info.node_id.cmp(&b.info.node_id),
    }
}

pub async fn list(
    State(state): Shared,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<ListNodesResponse>, ApiError> {
    let params = Params(params);
    let approval = filter(
        &params,
        ["filter-approval", "filter_approval"],
        &[
            Membership::Approved.as_str(),
            Membership::Pending.as_str(),
            Membership::Rejected.as_str(),
        ],
    )?;
    let status = filter(
        &params,
        ["filter-status", "filter_status"],
        &[
            ConnectionStatus::Connected.as_str(),
            ConnectionStatus::Disconnected.as_str(),
        ],
    )?;
    let labels = super::jobs::labels_of(&params)?;
    let order = order_by(&params, NODE_ORDERS, "id")?;
    let reverse = params.flag("reverse")?;
    let paging = params.paging()?;
    let mut nodes = state.orchestrator.nodes(approval, status)?;
    nodes.retain(|n| labels.iter().all(|r| r.matches(&n.info.labels)));
    // Nodes come by ID; a stable sort keeps that order among equals.
    nodes.sort_by(|a, b| {
        let ordering = compare(order, a, b);
        if reverse {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let (nodes, next_token) = paging.apply(nodes);
    Ok(Json(ListNodesResponse { nodes, next_token }))
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
