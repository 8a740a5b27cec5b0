//! Data routes (ours, beside upstream's): `POST /api/v1/orchestrator/data` pins a CID on a
//! compute node, which fetches its blocks from the peers named (`bacalhau data add`).

use super::{ApiError, AppState};
use crate::apimodels::{PinDataRequest, PinDataResponse};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use std::sync::Arc;
use std::time::Duration;

/// How long a node may fetch when the request does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest a request may ask for: a day.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

pub async fn pin(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<PinDataResponse>, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let request: PinDataRequest =
        serde_json::from_value(bacalhau_models::spec::canonicalize_keys(value))
            .map_err(|e| ApiError::bad_request(format!("invalid data request: {e}")))?;
    let cid = bacalhau_content::parse_cid(request.cid.trim())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if request.node_id.is_empty() {
        return Err(ApiError::bad_request(
            "missing NodeID: name the compute node that should hold the data",
        ));
    }
    for peer in &request.peers {
        if peer.parse::<bacalhau_content::Multiaddr>().is_err() {
            return Err(ApiError::bad_request(format!(
                "Peers: {peer:?} is not a multiaddr"
            )));
        }
    }
    let timeout = match request.timeout_seconds {
        0 => DEFAULT_TIMEOUT,
        seconds if seconds > MAX_TIMEOUT.as_secs() => {
            return Err(ApiError::bad_request(format!(
                "TimeoutSeconds: {seconds} is more than a day ({})",
                MAX_TIMEOUT.as_secs()
            )));
        }
        seconds => Duration::from_secs(seconds),
    };
    let (node, bytes_fetched) = state
        .orchestrator
        .pin(&request.node_id, &cid.to_string(), request.peers, timeout)
        .await?;
    Ok(Json(PinDataResponse {
        cid: cid.to_string(),
        node_id: node.to_string(),
        bytes_fetched,
    }))
}
