//! The Jobs page (a filtered, paged table with live state), the Job page (spec, state,
//! executions, history, live logs, results, stop and rerun) and the result download.

use crate::{
    Csrf, Section, badge, csrf_field, encode, error_page, gate, gate_form, human_bytes, layout,
    maud_response, script_note, when,
};
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use bacalhau_api::server::auth::Capability;
use bacalhau_api::server::auth::Principal;
use bacalhau_api::server::{AppState, status_of};
use bacalhau_models::{Execution, Job, JobHistory, JobStateType};
use bacalhau_orchestrator::{HistoryQuery, JobQuery, JobVersions};
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// Rows per page of the Jobs table.
const PAGE: usize = 50;

/// Job states a user can filter by.
const STATES: [JobStateType; 6] = [
    JobStateType::Pending,
    JobStateType::Queued,
    JobStateType::Running,
    JobStateType::Completed,
    JobStateType::Failed,
    JobStateType::Stopped,
];

/// `GET /ui/jobs`: the table; `?partial=rows` answers only the rows, for live updates.
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Query(params): Params,
) -> Response {
    let viewer = match gate(&state, principal, &csrf, &uri, Capability::READ_JOB) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let text = |key: &str| params.get(key).map(String::as_str).unwrap_or("").trim();
    let state_filter = text("state");
    let labels_filter = text("labels");
    let namespace = text("namespace");
    let labels = match bacalhau_models::selector::parse_selector(labels_filter) {
        Ok(labels) => labels,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                Some(&viewer),
                &csrf,
                &format!("invalid labels selector: {e}"),
            );
        }
    };
    let states: Vec<JobStateType> = STATES
        .iter()
        .copied()
        .filter(|s| s.to_string().eq_ignore_ascii_case(state_filter))
        .collect();
    let query = JobQuery {
        namespace: namespace.to_string(),
        labels,
        limit: PAGE,
        reverse: true,
        next_token: Some(text("next_token").to_string()).filter(|t| !t.is_empty()),
        states,
    };
    let (jobs, next) = match state.orchestrator.list_jobs(&query) {
        Ok(page) => page,
        Err(e) => return error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    };
    let rows = html! {
        @for job in &jobs {
            @let executions = state.orchestrator.executions(job.id.as_str(), &job.namespace, JobVersions::All).unwrap_or_default();
            @let nodes = executions.iter().map(|e| e.node_id.as_str()).collect::<std::collections::BTreeSet<_>>().len();
            tr {
                td { a href={ "/ui/jobs/" (job.id) } { (job.name) } }
                td { code { (job.id.short()) } }
                td { (job.r#type) }
                td { (badge(job.state.state_type.as_str())) }
                td { (when(job.create_time)) }
                td.num { (nodes) }
            }
        }
        @if jobs.is_empty() {
            tr { td colspan="6" .muted { "No jobs match." } }
        }
    };
    if params.get("partial").is_some_and(|p| p == "rows") {
        return maud_response(rows);
    }
    let filter_query = format!(
        "state={}&labels={}&namespace={}",
        encode(state_filter),
        encode(labels_filter),
        encode(namespace)
    );
    let content = html! {
        h1 { "Jobs" }
        form.filters method="get" action="/ui/jobs" {
            label { "State "
                select name="state" {
                    option value="" selected[state_filter.is_empty()] { "any" }
                    @for s in STATES {
                        option value=(s.as_str()) selected[s.as_str().eq_ignore_ascii_case(state_filter)] { (s.as_str()) }
                    }
                }
            }
            label { "Labels " input type="text" name="labels" value=(labels_filter) placeholder="env=prod,tier in (a,b)"; }
            label { "Namespace " input type="text" name="namespace" value=(namespace) placeholder="default (* for all)"; }
            button type="submit" { "Filter" }
        }
        div.scroll {
            table #jobs data-live={ "/ui/jobs?partial=rows&" (filter_query) "&next_token=" (encode(text("next_token"))) } {
                thead { tr { th { "Name" } th { "ID" } th { "Type" } th { "State" } th { "Created" } th { "Nodes" } } }
                tbody { (rows) }
            }
        }
        nav.pager aria-label="Pages" {
            @if !text("next_token").is_empty() {
                a href={ "/ui/jobs?" (filter_query) } { "First page" }
            }
            @if let Some(next) = &next {
                a href={ "/ui/jobs?" (filter_query) "&next_token=" (encode(next)) } { "Next page" }
            }
        }
        (script_note())
    };
    maud_response(layout(
        "Jobs",
        Section::Jobs,
        Some(&viewer),
        &csrf,
        params.get("msg").map(String::as_str),
        content,
    ))
}

/// Bytes read by an execution's inputs and published, from its compute state details.
fn bytes_in_out(execution: &Execution) -> (u64, Option<u64>) {
    let details = &execution.compute_state.details;
    let read = details
        .iter()
        .filter(|(k, _)| k.starts_with("InputBytes:"))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    let published = details.get("PublishedBytes").and_then(|v| v.parse().ok());
    (read, published)
}

/// Where an execution's result can be fetched, when it was published over HTTP.
fn result_url(execution: &Execution) -> Option<String> {
    let result = execution.published_result.as_ref()?;
    match result.r#type.as_str() {
        "urlDownload" | "s3PreSigned" => result.param_str("URL").map(str::to_string),
        _ => None,
    }
}

/// A description of a result that is not downloadable here (an S3 object).
fn result_elsewhere(execution: &Execution) -> Option<String> {
    let result = execution.published_result.as_ref()?;
    (result.r#type == "s3").then(|| {
        format!(
            "s3://{}/{}",
            result.param_str("Bucket").unwrap_or(""),
            result.param_str("Key").unwrap_or("")
        )
    })
}

/// The parts of the Job page that change while it runs: the actions, state and executions.
fn live_sections(job: &Job, executions: &[Execution], csrf: &Csrf, can_write: bool) -> Markup {
    let terminal = job.state.state_type.is_terminal();
    html! {
        @if can_write {
            div.actions {
                @if !terminal {
                    form method="post" action={ "/ui/jobs/" (job.id) "/stop" } {
                        (csrf_field(csrf))
                        button.danger #stop type="submit" { "Stop job" }
                    }
                } @else {
                    form method="post" action={ "/ui/jobs/" (job.id) "/rerun" } {
                        (csrf_field(csrf))
                        button #rerun type="submit" { "Rerun" }
                    }
                }
            }
        }
        section #state {
            h2 { "State" }
            p { (badge(job.state.state_type.as_str())) " " (job.state.message) }
        }
        section #executions {
            h2 { "Executions" }
            div.scroll {
                table {
                    thead { tr { th { "Execution" } th { "Node" } th { "State" } th { "Exit code" } th { "Bytes in" } th { "Bytes out" } th { "Result" } } }
                    tbody {
                        @for e in executions {
                            @let (read, published) = bytes_in_out(e);
                            tr {
                                td { code { (e.id.short()) } }
                                td { a href={ "/ui/nodes/" (encode(e.node_id.as_str())) } { (e.node_id) } }
                                td { (badge(e.compute_state.state_type.as_str())) @if !e.compute_state.message.is_empty() { " " span.muted { (e.compute_state.message) } } }
                                td.num { @if let Some(out) = &e.run_output { (out.exit_code) } }
                                td.num { (human_bytes(read)) }
                                td.num { @if let Some(p) = published { (human_bytes(p)) } }
                                td {
                                    @if result_url(e).is_some() {
                                        a.result href={ "/ui/jobs/" (job.id) "/executions/" (e.id) "/result" } download { "Download" }
                                    } @else if let Some(place) = result_elsewhere(e) {
                                        code { (place) }
                                    }
                                }
                            }
                        }
                        @if executions.is_empty() {
                            tr { td colspan="7" .muted { "No executions yet." } }
                        }
                    }
                }
            }
        }
    }
}

fn history_section(events: &[JobHistory]) -> Markup {
    html! {
        section #history {
            h2 { "History" }
            ol.timeline {
                @for event in events {
                    li {
                        time { (event.time.get(..19).unwrap_or(&event.time).replace('T', " ")) }
                        " "
                        span.topic { (event.event.topic) }
                        " "
                        (event.event.message)
                        @if let Some(exec) = &event.execution_id { " " span.muted { "(execution " (exec.short()) ")" } }
                        @if !event.actor.is_empty() { " " span.actor { "by " (event.actor) } }
                    }
                }
            }
        }
    }
}

/// `GET /ui/jobs/{id}`; `?partial=live` answers only the changing sections.
pub async fn detail(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let viewer = match gate(&state, principal, &csrf, &uri, Capability::READ_JOB) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let orchestrator = &state.orchestrator;
    let loaded = orchestrator.job(&id, "").and_then(|job| {
        let executions =
            orchestrator.executions(job.id.as_str(), &job.namespace, JobVersions::All)?;
        Ok((job, executions))
    });
    let (job, executions) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    };
    let terminal = job.state.state_type.is_terminal();
    let can_write = viewer.can(Capability::WRITE_JOB);
    if params.get("partial").is_some_and(|p| p == "live") {
        let mut page = live_sections(&job, &executions, &csrf, can_write).into_string();
        if terminal {
            // Tells the script to stop polling.
            page.push_str("<span hidden data-terminal></span>");
        }
        return maud_response(maud::PreEscaped(page));
    }
    let history = orchestrator
        .history(job.id.as_str(), &job.namespace, &HistoryQuery::default())
        .map(|(events, _)| events)
        .unwrap_or_default();
    let spec = serde_yaml_ng::to_string(&job).unwrap_or_else(|e| format!("cannot render: {e}"));
    // Three steps each way keep the graph readable; the CLI goes further.
    let lineage = orchestrator
        .lineage(job.id.as_str(), &job.namespace, 3)
        .ok()
        .filter(|tree| tree.inputs.iter().any(|i| i.identity.is_some()) || tree.result.is_some());
    let latest_output = executions
        .iter()
        .rev()
        .find_map(|e| e.run_output.as_ref())
        .map(|o| o.stdout.clone())
        .unwrap_or_default();
    let content = html! {
        h1 {
            (job.name)
            @if job.name != job.id.as_str() { " " small.muted { code { (job.id) } } }
        }
        div #live data-live={ "/ui/jobs/" (job.id) "?partial=live" } data-terminal[terminal] {
            (live_sections(&job, &executions, &csrf, can_write))
        }
        section #logs-section {
            h2 { "Logs" }
            pre #logs data-ws={ "/api/v1/orchestrator/jobs/" (job.id) "/logs?follow=true" } { (latest_output) }
        }
        @if let Some(tree) = &lineage {
            (crate::lineage::section(tree))
        }
        (history_section(&history))
        section {
            h2 { "Spec" }
            pre.spec { (spec) }
        }
        (script_note())
    };
    maud_response(layout(
        &job.name,
        Section::Jobs,
        Some(&viewer),
        &csrf,
        params.get("msg").map(String::as_str),
        content,
    ))
}

/// `POST /ui/jobs/{id}/stop`.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let viewer = match gate_form(&state, principal, &csrf, &uri, &form, Capability::WRITE_JOB) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    match state
        .orchestrator
        .stop(&id, "", "Job stopped from the web UI", viewer.name())
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/ui/jobs/{}?msg={}",
            encode(&id),
            encode("Stop requested.")
        ))
        .into_response(),
        Err(e) => error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    }
}

/// `POST /ui/jobs/{id}/rerun`.
pub async fn rerun(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let viewer = match gate_form(&state, principal, &csrf, &uri, &form, Capability::WRITE_JOB) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    match state
        .orchestrator
        .rerun(&id, "", 0, "Rerun from the web UI", viewer.name())
        .await
    {
        Ok(rerun) => Redirect::to(&format!(
            "/ui/jobs/{}?msg={}",
            rerun.job_id,
            encode(&format!("Rerun as version {}.", rerun.job_version))
        ))
        .into_response(),
        Err(e) => error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    }
}

/// `GET /ui/jobs/{id}/executions/{execution}/result`: the execution's published archive,
/// fetched from its node and passed through, so the browser needs to reach only this server.
pub async fn result(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Path((id, execution_id)): Path<(String, String)>,
) -> Response {
    let viewer = match gate(&state, principal, &csrf, &uri, Capability::READ_JOB) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let executions = match state.orchestrator.executions(&id, "", JobVersions::All) {
        Ok(executions) => executions,
        Err(e) => return error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    };
    let Some(url) = executions
        .iter()
        .find(|e| e.id.as_str() == execution_id)
        .and_then(result_url)
    else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&viewer),
            &csrf,
            &format!("execution {execution_id} of job {id} has no result to download"),
        );
    };
    let fetched = match reqwest::get(&url).await.and_then(|r| r.error_for_status()) {
        Ok(response) => response,
        Err(e) => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                Some(&viewer),
                &csrf,
                &format!("cannot fetch the result from its node: {e}"),
            );
        }
    };
    let length = fetched.content_length();
    let body = axum::body::Body::from_stream(fetched.bytes_stream());
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{execution_id}.tar.gz\""),
            ),
        ],
        body,
    )
        .into_response();
    if let Some(length) = length
        && let Ok(value) = header::HeaderValue::from_str(&length.to_string())
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, value);
    }
    response
}
