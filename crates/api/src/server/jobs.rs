//! Job routes: submit, list, get, stop, rerun, diff, and a job's executions, history,
//! results and versions.

use super::auth::Principal;
use super::query::{Params, order_by};
use super::{ApiError, AppState};
use crate::apimodels::{
    DiffJobResponse, GetJobResponse, ListJobResultsResponse, ListResponse, PutJobResponse,
    RerunJobResponse, StopJobResponse,
};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use bacalhau_models::spec::{canonicalize_keys, job_from_value};
use bacalhau_models::{Execution, Job, JobHistory, JobStateType};
use bacalhau_orchestrator::{HistoryQuery, JobQuery, JobVersions};
use serde_json::Value;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;
type Query_ = Query<Vec<(String, String)>>;

/// Reads a JSON request body into canonical-case keys.
fn body_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("empty request body"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    match canonicalize_keys(value) {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::bad_request(format!(
            "expected a JSON object, found {other}"
        ))),
    }
}

/// The `Job` of a request body, decoded and checked for shape.
fn job_of(body: &mut serde_json::Map<String, Value>) -> Result<Job, ApiError> {
    let value = body
        .remove("Job")
        .ok_or_else(|| ApiError::bad_request("missing Job in request body"))?;
    job_from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

pub async fn submit(
    State(state): Shared,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Result<Json<PutJobResponse>, ApiError> {
    let mut body = body_object(&body)?;
    let job = job_of(&mut body)?;
    let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
    let submitted = state.orchestrator.submit(job, force, caller.name()).await?;
    Ok(Json(PutJobResponse {
        job_id: submitted.job_id.to_string(),
        evaluation_id: submitted.evaluation_id.to_string(),
        warnings: submitted.warnings,
    }))
}

pub async fn diff(State(state): Shared, body: Bytes) -> Result<Json<DiffJobResponse>, ApiError> {
    let mut body = body_object(&body)?;
    let job = job_of(&mut body)?;
    let (diff, warnings) = state.orchestrator.diff(job)?;
    Ok(Json(DiffJobResponse { diff, warnings }))
}

pub async fn list(
    State(state): Shared,
    Query(params): Query_,
) -> Result<Json<ListResponse<Job>>, ApiError> {
    let params = Params(params);
    let labels = labels_of(&params)?;
    match params.text("order_by") {
        None | Some("created_at" | "create_time" | "CreateTime") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported order_by {other:?}: jobs are ordered by created_at"
            )));
        }
    }
    let query = JobQuery {
        namespace: params.text("namespace").unwrap_or_default().to_string(),
        labels,
        limit: params.number("limit")? as usize,
        reverse: params.flag("reverse")?,
        next_token: params.text("next_token").map(str::to_string),
        states: states_of(&params)?,
    };
    let (items, next) = state.orchestrator.list_jobs(&query)?;
    Ok(Json(ListResponse {
        items,
        next_token: next.unwrap_or_default(),
    }))
}

/// The `state` filter (ours): job states, comma-separated or repeated, any case.
fn states_of(params: &Params) -> Result<Vec<JobStateType>, ApiError> {
    let Some(joined) = params.joined("state") else {
        return Ok(Vec::new());
    };
    joined
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            JobStateType::parse_name(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid state {name:?}: expected one of {}",
                    JobStateType::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .collect()
}

/// The `labels` selector (repeated `labels` parameters joined, as upstream does).
pub(super) fn labels_of(
    params: &Params,
) -> Result<Vec<bacalhau_models::selector::LabelSelectorRequirement>, ApiError> {
    match params.joined("labels") {
        Some(selector) => bacalhau_models::selector::parse_selector(&selector)
            .map_err(|e| ApiError::bad_request(format!("invalid labels selector: {e}"))),
        None => Ok(Vec::new()),
    }
}

pub async fn get(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<GetJobResponse>, ApiError> {
    let params = Params(params);
    let namespace = params.text("namespace").unwrap_or_default();
    let version = params.number("job_version")?;
    let job = if version > 0 {
        state.orchestrator.job_version(&id, namespace, version)?
    } else {
        state.orchestrator.job(&id, namespace)?
    };
    // The parts included are those of the version asked for; without one, of every version.
    let versions = if version > 0 {
        JobVersions::Only(version)
    } else {
        JobVersions::All
    };
    let include = params.text("include").unwrap_or_default();
    let limit = params.number("limit")? as usize;
    let id = job.id.to_string();
    let mut response = GetJobResponse {
        job,
        history: None,
        executions: None,
    };
    for part in include.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "history" => {
                let query = HistoryQuery {
                    limit,
                    versions,
                    ..Default::default()
                };
                let (items, next) = state.orchestrator.history(&id, namespace, &query)?;
                response.history = Some(ListResponse {
                    items,
                    next_token: next.unwrap_or_default(),
                });
            }
            "executions" => {
                let mut items = state.orchestrator.executions(&id, namespace, versions)?;
                if limit > 0 {
                    items.truncate(limit);
                }
                response.executions = Some(ListResponse {
                    items,
                    next_token: String::new(),
                });
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid include {other:?}: use history or executions"
                )));
            }
        }
    }
    Ok(Json(response))
}

/// The longest a `wait` may hold a request, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// Ours: answers as `get` does once the job has ended or (with `after`) has a history event
/// numbered above `after`, or after `timeout` seconds (default 10, at most
/// [`MAX_WAIT_SECS`]), whichever comes first. A client follows a job with this rather than
/// polling: it hears of the end as soon as it is stored.
pub async fn wait(
    State(state): Shared,
    Path(id): Path<String>,
    Query(query): Query_,
) -> Result<Json<GetJobResponse>, ApiError> {
    let params = Params(query.clone());
    let namespace = params.text("namespace").unwrap_or_default();
    let after = params
        .text("after")
        .map(|_| params.number("after"))
        .transpose()?;
    let timeout = match params.number("timeout")? {
        0 => 10,
        secs if secs > MAX_WAIT_SECS => {
            return Err(ApiError::bad_request(format!(
                "invalid timeout {secs}: at most {MAX_WAIT_SECS} seconds"
            )));
        }
        secs => secs,
    };
    let job = state
        .orchestrator
        .wait_job(
            &id,
            namespace,
            after,
            std::time::Duration::from_secs(timeout),
        )
        .await?;
    get(State(state), Path(job.id.to_string()), Query(query)).await
}

pub async fn stop(
    State(state): Shared,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<StopJobResponse>, ApiError> {
    let params = Params(params);
    let evaluation = state
        .orchestrator
        .stop(
            &id,
            params.text("namespace").unwrap_or_default(),
            params.text("reason").unwrap_or_default(),
            caller.name(),
        )
        .await?;
    Ok(Json(StopJobResponse {
        evaluation_id: evaluation.map(|e| e.to_string()).unwrap_or_default(),
    }))
}

pub async fn rerun(
    State(state): Shared,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(params): Query_,
    body: Bytes,
) -> Result<Json<RerunJobResponse>, ApiError> {
    let params = Params(params);
    let body = if body.is_empty() {
        serde_json::Map::new()
    } else {
        body_object(&body)?
    };
    let version = body.get("JobVersion").and_then(Value::as_u64).unwrap_or(0);
    let reason = body.get("Reason").and_then(Value::as_str).unwrap_or("");
    let rerun = state
        .orchestrator
        .rerun(
            &id,
            params.text("namespace").unwrap_or_default(),
            version,
            reason,
            caller.name(),
        )
        .await?;
    Ok(Json(RerunJobResponse {
        job_id: rerun.job_id.to_string(),
        job_version: rerun.job_version,
        evaluation_id: rerun.evaluation_id.to_string(),
        warnings: Vec::new(),
    }))
}

/// The `order_by` values of a job's executions, as upstream's store sorts them.
const EXECUTION_ORDERS: &[&str] = &["created_at", "create_time", "modified_at", "modify_time"];

pub async fn executions(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<ListResponse<Execution>>, ApiError> {
    let params = Params(params);
    let order = order_by(&params, EXECUTION_ORDERS, "created_at")?;
    let reverse = params.flag("reverse")?;
    let versions = params.job_versions()?;
    let paging = params.paging()?;
    let mut items = state.orchestrator.executions(
        &id,
        params.text("namespace").unwrap_or_default(),
        versions,
    )?;
    // The orchestrator answers in creation order; a stable sort keeps it among equals.
    if matches!(order, "modified_at" | "modify_time") {
        items.sort_by_key(|e| e.modify_time);
    }
    if reverse {
        items.reverse();
    }
    let (items, next_token) = paging.apply(items);
    Ok(Json(ListResponse { items, next_token }))
}

pub async fn history(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<ListResponse<JobHistory>>, ApiError> {
    let params = Params(params);
    let since = i64::try_from(params.number("since")?)
        .map_err(|_| ApiError::bad_request("invalid since: too large for Unix seconds"))?;
    let query = HistoryQuery {
        event_type: params.text("event_type").unwrap_or_default().to_string(),
        execution_id: params.text("execution_id").map(str::to_string),
        since,
        versions: params.job_versions()?,
        limit: params.number("limit")? as usize,
        next_token: params.text("next_token").map(str::to_string),
    };
    let (items, next) =
        state
            .orchestrator
            .history(&id, params.text("namespace").unwrap_or_default(), &query)?;
    Ok(Json(ListResponse {
        items,
        next_token: next.unwrap_or_default(),
    }))
}

pub async fn results(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<ListJobResultsResponse>, ApiError> {
    let params = Params(params);
    let items = state
        .orchestrator
        .results(&id, params.text("namespace").unwrap_or_default())?;
    Ok(Json(ListResponse {
        items,
        next_token: String::new(),
    }))
}

/// How far `job lineage` follows links when the request does not say.
const DEFAULT_LINEAGE_DEPTH: u64 = 10;
/// The most steps a lineage request may ask for.
const MAX_LINEAGE_DEPTH: u64 = 64;

pub async fn lineage(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<bacalhau_models::lineage::LineageNode>, ApiError> {
    let params = Params(params);
    let depth = if params.text("depth").is_some() {
        params.number("depth")?
    } else {
        DEFAULT_LINEAGE_DEPTH
    };
    if depth > MAX_LINEAGE_DEPTH {
        return Err(ApiError::bad_request(format!(
            "depth must be at most {MAX_LINEAGE_DEPTH}, found {depth}"
        )));
    }
    let tree = state.orchestrator.lineage(
        &id,
        params.text("namespace").unwrap_or_default(),
        depth as usize,
    )?;
    Ok(Json(tree))
}

/// The `order_by` values of a job's versions.
const VERSION_ORDERS: &[&str] = &[
    "version",
    "created_at",
    "create_time",
    "modified_at",
    "modify_time",
];

pub async fn versions(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Query_,
) -> Result<Json<ListResponse<Job>>, ApiError> {
    let params = Params(params);
    let order = order_by(&params, VERSION_ORDERS, "version")?;
    let reverse = params.flag("reverse")?;
    let paging = params.paging()?;
    let mut items = state
        .orchestrator
        .job_versions(&id, params.text("namespace").unwrap_or_default())?;
    // Versions come oldest first, which is also their creation order.
    if matches!(order, "modified_at" | "modify_time") {
        items.sort_by_key(|j| j.modify_time);
    }
    if reverse {
        items.reverse();
    }
    let (items, next_token) = paging.apply(items);
    Ok(Json(ListResponse { items, next_token }))
}
