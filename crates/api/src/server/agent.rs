//! Agent routes: liveness, version, this node's identity, configuration and debug info.

use super::{ApiError, AppState};
use crate::apimodels::{DebugInfo, GetVersionResponse, IsAliveResponse};
use axum::Json;
use axum::extract::State;
use bacalhau_models::NodeInfo;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

pub async fn alive() -> Json<IsAliveResponse> {
    Json(IsAliveResponse {
        status: "OK".into(),
    })
}

pub async fn version(State(state): Shared) -> Json<GetVersionResponse> {
    Json(state.version.clone())
}

pub async fn node(State(state): Shared) -> Json<NodeInfo> {
    Json(state.node_info.clone())
}

pub async fn config(State(state): Shared) -> Json<serde_json::Value> {
    Json(state.config.clone())
}

pub async fn debug(State(state): Shared) -> Result<Json<Vec<DebugInfo>>, ApiError> {
    let jobs = state.orchestrator.job_count()?;
    let pending = state.orchestrator.broker().len();
    let store_bytes = state.orchestrator.store_size()?;
    Ok(Json(vec![DebugInfo {
        component: "orchestrator".into(),
        info: serde_json::json!({
            "Jobs": jobs,
            "PendingEvaluations": pending,
            "StoreBytes": store_bytes,
        }),
    }]))
}
