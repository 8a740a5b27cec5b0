//! The one place errors become HTTP: upstream's error JSON with a fitting status.

use crate::apimodels::ApiErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bacalhau_orchestrator::OrchestratorError;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    hint: Option<String>,
}

impl ApiError {
    /// A 503: the orchestrator cluster cannot serve the request now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "Unavailable",
            message: message.into(),
            hint: Some("bacalhau cluster status shows the members and the leader".into()),
        }
    }

    /// A 404 for something that does not exist here.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "NotFound",
            message: message.into(),
            hint: None,
        }
    }

    /// A 400 naming what is wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: message.into(),
            hint: None,
        }
    }
}

/// The status an orchestrator error deserves, for the API and the web UI (`bacalhau-webui`)
/// alike.
pub fn status_of(e: &OrchestratorError) -> StatusCode {
    classify(e).0
}

use bacalhau_orchestrator::nodes::PinError;

fn classify(e: &OrchestratorError) -> (StatusCode, &'static str, Option<String>) {
    match e {
        OrchestratorError::NotFound { .. } => (StatusCode::NOT_FOUND, "NotFound", None),
        OrchestratorError::Ambiguous { .. } => (StatusCode::BAD_REQUEST, "MultipleMatches", None),
        OrchestratorError::Invalid(_) => (StatusCode::BAD_REQUEST, "BadRequest", None),
        OrchestratorError::Conflict { hint, .. } => {
            (StatusCode::CONFLICT, "Conflict", hint.clone())
        }
        OrchestratorError::Pin(PinError::NotConnected(_)) => (
            StatusCode::CONFLICT,
            "Conflict",
            Some("choose a connected compute node (bacalhau node list)".into()),
        ),
        OrchestratorError::Pin(_) => (StatusCode::BAD_GATEWAY, "NodeError", None),
        OrchestratorError::Store(bacalhau_orchestrator::store::StoreError::NotCommitted(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "NotLeader",
            Some(
                "send writes to the orchestrator cluster's leader (bacalhau cluster status)".into(),
            ),
        ),
        OrchestratorError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", None),
    }
}

impl From<OrchestratorError> for ApiError {
    fn from(e: OrchestratorError) -> Self {
        let (status, code, hint) = classify(&e);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "store failure while serving a request");
        }
        Self {
            status,
            code,
            message: e.to_string(),
            hint,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            status: self.status.as_u16(),
            message: self.message,
            request_id: String::new(),
            code: self.code.to_string(),
            component: "orchestrator".to_string(),
            hint: self.hint.unwrap_or_default(),
            details: Default::default(),
        };
        (self.status, Json(body)).into_response()
    }
}

/// Unknown routes get the same error shape as everything else.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NotFound",
        message: format!("no such endpoint: {}", uri.path()),
        hint: None,
    }
}
