//! An orchestrator cluster behind the API: writes that reach a follower go to the leader,
//! reads on a follower wait until it has applied what the leader had committed (so a client
//! reads its own writes on any member), and the `/api/v1/cluster` routes show and change the
//! group.

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Marks a request a follower forwarded, so it is never forwarded twice.
const FORWARDED: &str = "x-bacalhau-forwarded-by";

/// How a follower treats a request.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// Served here: everything outside the orchestrator's and the cluster's routes (agent
    /// routes, the node channel, whose handshake sends a node on to the leader).
    Here,
    /// Served here once this member has applied what the leader had committed.
    ReadHere,
    /// Sent to the leader: writes, and what only the leader knows (connected nodes and their
    /// live state).
    Leader,
}

fn route(method: &Method, path: &str) -> Route {
    let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if path.starts_with("/api/v1/orchestrator/nodes") || path.starts_with("/api/v1/cluster/members")
    {
        Route::Leader
    } else if path.starts_with("/api/v1/orchestrator") {
        if write {
            Route::Leader
        } else {
            Route::ReadHere
        }
    } else {
        Route::Here
    }
}

/// The middleware: lets everything through on the leader or without a cluster.
pub async fn route_to_leader(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = &state.cluster else {
        return next.run(request).await;
    };
    let how = route(request.method(), request.uri().path());
    if how == Route::Here || cluster.is_leader() {
        return next.run(request).await;
    }
    if how == Route::ReadHere {
        return match cluster.read_barrier().await {
            Ok(()) => next.run(request).await,
            Err(e) => unavailable(format!(
                "this orchestrator cannot confirm it is up to date: {e}"
            )),
        };
    }
    if request.headers().contains_key(FORWARDED) {
        return unavailable(
            "a forwarded request reached a member that does not lead; try again".into(),
        );
    }
    match cluster.leader_api() {
        Some(leader) => forward(&state, &leader, request).await,
        None => unavailable("the orchestrator cluster has no leader now; try again".into()),
    }
}

fn unavailable(message: String) -> Response {
    ApiError::unavailable(message).into_response()
}

/// Sends `request` to the leader's API and answers with its response.
async fn forward(state: &AppState, leader: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let body = match axum::body::to_bytes(body, super::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::bad_request(format!("cannot read the request: {e}")).into_response();
        }
    };
    let mut outgoing = state
        .forwarder
        .request(parts.method.clone(), &url)
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    outgoing = outgoing.header(FORWARDED, state.node_info.node_id.as_str());
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return unavailable(format!(
                "cannot reach the cluster's leader at {leader}: {e}"
            ));
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return unavailable(format!("the cluster's leader at {leader} broke off: {e}")),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-connection"
            | "content-length"
    )
}

fn cluster(state: &AppState) -> Result<&bacalhau_cluster::Cluster, ApiError> {
    state.cluster.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "this orchestrator is not in a cluster (Orchestrator.Cluster.Peers is empty)",
        )
    })
}

/// `GET /api/v1/cluster/status`.
pub async fn status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<bacalhau_cluster::ClusterStatus>, ApiError> {
    Ok(Json(cluster(&state)?.status()))
}

/// `POST /api/v1/cluster/members`: adds a member (on the leader).
pub async fn add_member(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<bacalhau_cluster::ClusterStatus>, ApiError> {
    let cluster = cluster(&state)?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let body: crate::apimodels::AddClusterMemberRequest =
        serde_json::from_value(bacalhau_models::spec::canonicalize_keys(value))
            .map_err(|e| ApiError::bad_request(format!("invalid member request: {e}")))?;
    if body.address.trim().is_empty() {
        return Err(ApiError::bad_request(
            "missing Address: the new member's cluster address, host:port",
        ));
    }
    cluster
        .add_member(&body.address)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(cluster.status()))
}

/// `DELETE /api/v1/cluster/members/{member}`: removes a member by name, ID or address.
pub async fn remove_member(
    State(state): State<Arc<AppState>>,
    Path(member): Path<String>,
) -> Result<Json<bacalhau_cluster::ClusterStatus>, ApiError> {
    let cluster = cluster(&state)?;
    cluster
        .remove_member(&member)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(cluster.status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_forwards_writes_and_node_views_and_reads_the_rest_itself() {
        let cases = [
            (Method::PUT, "/api/v1/orchestrator/jobs", Route::Leader),
            (
                Method::POST,
                "/api/v1/orchestrator/jobs/j-1/rerun",
                Route::Leader,
            ),
            (
                Method::DELETE,
                "/api/v1/orchestrator/jobs/j-1",
                Route::Leader,
            ),
            (Method::GET, "/api/v1/orchestrator/jobs", Route::ReadHere),
            (
                Method::GET,
                "/api/v1/orchestrator/jobs/j-1/history",
                Route::ReadHere,
            ),
            (Method::GET, "/api/v1/orchestrator/audit", Route::ReadHere),
            (Method::GET, "/api/v1/orchestrator/nodes", Route::Leader),
            (Method::POST, "/api/v1/cluster/members", Route::Leader),
            (Method::GET, "/api/v1/cluster/status", Route::Here),
            (Method::GET, "/api/v1/agent/alive", Route::Here),
            (Method::GET, bacalhau_protocol::CONNECT_PATH, Route::Here),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(&method, path), expected, "{method} {path}");
        }
    }
}
