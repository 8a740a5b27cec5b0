//! Agent routes: liveness, version, this node's identity, configuration, sign-on settings and
//! debug info; and upstream's legacy root routes, which redirect to them.

use super::{ApiError, AppState};
use crate::apimodels::{
    DebugInfo, GetAgentNodeAuthConfigResponse, GetVersionResponse, IsAliveResponse,
};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
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

/// The format version upstream gives its sign-on settings.
const AUTH_CONFIG_VERSION: &str = "1.0.0";

/// Users sign in with API keys or Basic passwords (`server/auth.rs`), never through an OAuth2
/// provider, so the settings are empty: upstream's CLI reads that as "no SSO login".
pub async fn auth_config() -> Json<GetAgentNodeAuthConfigResponse> {
    Json(GetAgentNodeAuthConfigResponse {
        version: AUTH_CONFIG_VERSION.into(),
        config: Default::default(),
    })
}

/// `GET /` and `GET /version`: upstream's permanent redirect (301, no body) to
/// `/api/v1/agent/version`.
pub async fn legacy_version() -> impl IntoResponse {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, "/api/v1/agent/version")],
    )
}

/// `GET /livez`: upstream's permanent redirect (301, no body) to `/api/v1/agent/alive`.
pub async fn legacy_alive() -> impl IntoResponse {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, "/api/v1/agent/alive")],
    )
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
