//! The Cluster page: the last hour's charts (jobs completed per second, queue depth, running
//! executions, nodes connected, submit → done p50/p99), then the orchestrator cluster (Raft
//! group) as this member sees it, or a note that this orchestrator stands alone.

use crate::{Csrf, Section, gate, layout, maud_response};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use bacalhau_api::server::AppState;
use bacalhau_api::server::auth::{Capability, Principal};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

/// `GET /ui/cluster`; `?partial=charts` answers only the charts, for live updates.
pub async fn page(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match gate(&state, principal, &csrf, &uri, Capability::READ_NODE) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let orchestrator = &state.orchestrator;
    let charts = crate::charts::cluster(
        &orchestrator.timeline().cluster(),
        orchestrator.clock().now(),
    );
    if params.get("partial").is_some_and(|p| p == "charts") {
        return maud_response(charts);
    }
    let charts = html! {
        section #charts data-live="/ui/cluster?partial=charts" { (charts) }
    };
    let optional = |n: Option<u64>| n.map_or_else(|| "–".to_string(), |n| n.to_string());
    let content = match &state.cluster {
        None => html! {
            h1 { "Cluster" }
            (charts)
            p #standalone { "This orchestrator stands alone: no " code { "Orchestrator.Cluster.Peers" } " are configured." }
        },
        Some(cluster) => {
            let status = cluster.status();
            html! {
                h1 { "Cluster " (status.name) }
                (charts)
                p #summary {
                    "Leader: " strong { (status.leader.as_deref().unwrap_or("none known")) }
                    " · term " (status.term)
                    " · this member (" (status.this_member) ") applied "
                    (optional(status.applied_index)) " of " (optional(status.last_log_index))
                    " · snapshot at " (optional(status.snapshot_index))
                }
                div.scroll {
                    table #members {
                        thead { tr {
                            th { "Member" } th { "Role" } th { "Cluster address" } th { "API" }
                            th { "Matched index" } th { "Lag" } th { "ID" }
                        } }
                        tbody {
                            @for member in &status.members {
                                tr data-member=(member.name) {
                                    td { (member.name) }
                                    td { (member.role) }
                                    td { code { (member.address) } }
                                    td { a href=(member.api_address) { (member.api_address) } }
                                    td { (optional(member.matched_index)) }
                                    td { (optional(member.lag)) }
                                    td { code { (member.id) } }
                                }
                            }
                        }
                    }
                }
                p.muted { "Lag and matched indexes are known on the leader." }
            }
        }
    };
    maud_response(layout(
        "Cluster",
        Section::Cluster,
        Some(&viewer),
        &csrf,
        None,
        content,
    ))
}
