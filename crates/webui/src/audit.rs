//! The Audit page: the hash-chained log, newest first, with the whole chain verified on each
//! view.

use crate::{Csrf, Section, error_page, gate, layout, maud_response};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use bacalhau_api::server::AppState;
use bacalhau_api::server::auth::Capability;
use bacalhau_api::server::auth::Principal;
use bacalhau_models::JobHistory;
use bacalhau_models::history::ChainVerifier;
use maud::html;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Events shown per page.
const SHOWN: usize = 200;
/// Events read per store query while verifying.
const BATCH: usize = 5000;

/// `GET /ui/audit`; `?before=SEQ` pages back.
pub async fn page(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    // The API's audit route needs an administrator (write:node); so does this page.
    let viewer = match gate(&state, principal, &csrf, &uri, Capability::WRITE_NODE) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let before = params
        .get("before")
        .and_then(|b| b.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let mut verifier = ChainVerifier::default();
    let mut broken = None;
    let mut shown: VecDeque<JobHistory> = VecDeque::with_capacity(SHOWN);
    let mut since = 0;
    loop {
        let batch = match state.orchestrator.audit_log(since, BATCH) {
            Ok(batch) => batch,
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some(&viewer),
                    &csrf,
                    &e.to_string(),
                );
            }
        };
        for event in &batch {
            if broken.is_none()
                && let Err(problem) = verifier.check(event)
            {
                broken = Some(problem);
            }
            if event.seq_num < before {
                if shown.len() == SHOWN {
                    shown.pop_front();
                }
                shown.push_back(event.clone());
            }
        }
        match batch.last() {
            Some(last) if batch.len() == BATCH => since = last.seq_num,
            _ => break,
        }
    }
    let oldest_shown = shown.front().map(|e| e.seq_num);
    let content = html! {
        h1 { "Audit log" }
        @match &broken {
            None => p.verified #verification role="status" { "Chain verified: " (verifier.checked()) " events, every hash matches." },
            Some(problem) => p.error #verification role="alert" { "Chain BROKEN: " (problem.to_string()) " (" (verifier.checked()) " events before it verified)." },
        }
        div.scroll {
            table #audit {
                thead { tr { th { "#" } th { "Time" } th { "Actor" } th { "About" } th { "Event" } th { "Hash" } } }
                tbody {
                    @for event in shown.iter().rev() {
                        tr {
                            td.num { (event.seq_num) }
                            td { (event.time.get(..19).unwrap_or(&event.time).replace('T', " ")) }
                            td { (event.actor) }
                            td {
                                @if let Some(node) = event.event.details.get("NodeID").filter(|_| event.job_id.as_str().is_empty()) {
                                    "node " a href={ "/ui/nodes/" (crate::encode(node)) } { (node) }
                                } @else {
                                    a href={ "/ui/jobs/" (event.job_id) } { code { (event.job_id.short()) } }
                                }
                            }
                            td { span.topic { (event.event.topic) } " " (event.event.message) }
                            td { code title=(event.hash) { (event.hash.get(..12).unwrap_or(&event.hash)) } }
                        }
                    }
                }
            }
        }
        @if let Some(oldest) = oldest_shown.filter(|o| *o > 1) {
            nav.pager { a href={ "/ui/audit?before=" (oldest) } { "Older events" } }
        }
    };
    maud_response(layout(
        "Audit",
        Section::Audit,
        Some(&viewer),
        &csrf,
        None,
        content,
    ))
}
