//! The Nodes page (type, connection, approval, labels, capacity and use, engines,
//! publishers; approve, reject, delete) and a node's own page.

use crate::{
    Csrf, Section, badge, csrf_field, encode, error_page, gate, gate_form, human_bytes, layout,
    maud_response,
};
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use bacalhau_api::server::auth::Capability;
use bacalhau_api::server::auth::Principal;
use bacalhau_api::server::{AppState, status_of};
use bacalhau_models::NodeState;
use bacalhau_models::node::Membership;
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

fn capacity(node: &NodeState) -> Markup {
    let info = &node.info.compute_node_info;
    let (max, free) = (&info.max_capacity, &info.available_capacity);
    html! {
        @if max.cpu > 0.0 || max.memory > 0 {
            span { (format!("{:.1}", max.cpu - free.cpu)) " / " (format!("{:.1}", max.cpu)) " CPU" }
            br;
            span { (human_bytes(max.memory.saturating_sub(free.memory))) " / " (human_bytes(max.memory)) }
        }
    }
}

fn actions(node: &NodeState, csrf: &Csrf) -> Markup {
    let id = node.info.node_id.as_str();
    html! {
        div.actions {
            @for (action, label, shown) in [
                ("approve", "Approve", node.membership != Membership::Approved),
                ("reject", "Reject", node.membership != Membership::Rejected),
                ("delete", "Delete", true),
            ] {
                @if shown {
                    form method="post" action={ "/ui/nodes/" (encode(id)) "/" (action) } {
                        (csrf_field(csrf))
                        button class=(if action == "approve" { "primary" } else { "danger" }) type="submit" data-node=(id) data-action=(action) { (label) }
                    }
                }
            }
        }
    }
}

/// `GET /ui/nodes`.
pub async fn list(
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
    let nodes = match state.orchestrator.nodes(None, None) {
        Ok(nodes) => nodes,
        Err(e) => {
            return error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string());
        }
    };
    let can_write = viewer.can(Capability::WRITE_NODE);
    let content = html! {
        h1 { "Nodes" }
        div.scroll {
            table #nodes {
                thead { tr {
                    th { "Node" } th { "Type" } th { "Connection" } th { "Approval" } th { "Labels" }
                    th { "Used / capacity" } th { "Engines" } th { "Publishers" }
                    @if can_write { th { "Actions" } }
                } }
                tbody {
                    @for node in &nodes {
                        tr data-node=(node.info.node_id) {
                            td { a href={ "/ui/nodes/" (encode(node.info.node_id.as_str())) } { (node.info.node_id) } }
                            td { (node.info.node_type) }
                            td { (badge(node.connection_state.status.as_str())) }
                            td { (badge(node.membership.as_str())) }
                            td { @for (k, v) in &node.info.labels { code { (k) "=" (v) } " " } }
                            td { (capacity(node)) }
                            td { (node.info.compute_node_info.execution_engines.join(", ")) }
                            td { (node.info.compute_node_info.publishers.join(", ")) }
                            @if can_write { td { @if node.info.node_type == bacalhau_models::node::NodeType::Compute { (actions(node, &csrf)) } } }
                        }
                    }
                    @if nodes.is_empty() { tr { td colspan="9" .muted { "No nodes." } } }
                }
            }
        }
    };
    maud_response(layout(
        "Nodes",
        Section::Nodes,
        Some(&viewer),
        &csrf,
        params.get("msg").map(String::as_str),
        content,
    ))
}

/// `GET /ui/nodes/{id}`.
pub async fn detail(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match gate(&state, principal, &csrf, &uri, Capability::READ_NODE) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let node = match state.orchestrator.node(&id) {
        Ok(node) => node,
        Err(e) => return error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    };
    let charts = crate::charts::node(
        &state.orchestrator.timeline().node(&node.info.node_id),
        state.orchestrator.clock().now(),
    );
    if params.get("partial").is_some_and(|p| p == "charts") {
        return maud_response(charts);
    }
    let info = &node.info.compute_node_info;
    let content = html! {
        h1 { (node.info.node_id) }
        @if viewer.can(Capability::WRITE_NODE) && node.info.node_type == bacalhau_models::node::NodeType::Compute { (actions(&node, &csrf)) }
        dl.facts {
            dt { "Type" } dd { (node.info.node_type) }
            dt { "Connection" } dd { (badge(node.connection_state.status.as_str())) " since " (node.connection_state.connected_since) }
            dt { "Last heartbeat" } dd { (node.connection_state.last_heartbeat) }
            dt { "Approval" } dd { (badge(node.membership.as_str())) }
            dt { "Labels" } dd { @for (k, v) in &node.info.labels { code { (k) "=" (v) } " " } }
            dt { "Used / capacity" } dd { (capacity(&node)) }
            dt { "Running / queued" } dd { (info.running_executions) " / " (info.enqueued_executions) }
            dt { "Engines" } dd { (info.execution_engines.join(", ")) }
            dt { "Input sources" } dd { (info.storage_sources.join(", ")) }
            dt { "Publishers" } dd { (info.publishers.join(", ")) }
            dt { "Version" } dd { (node.info.bacalhau_version.git_version) }
        }
        @if node.info.node_type == bacalhau_models::node::NodeType::Compute {
            h2 { "The last hour" }
            section #charts data-live={ "/ui/nodes/" (encode(node.info.node_id.as_str())) "?partial=charts" } { (charts) }
        }
        p { a href="/ui/nodes" { "All nodes" } }
    };
    maud_response(layout(
        node.info.node_id.as_str(),
        Section::Nodes,
        Some(&viewer),
        &csrf,
        None,
        content,
    ))
}

/// `POST /ui/nodes/{id}/{action}`: approve, reject or delete.
pub async fn act(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let viewer = match gate_form(
        &state,
        principal,
        &csrf,
        &uri,
        &form,
        Capability::WRITE_NODE,
    ) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    match state
        .orchestrator
        .update_node(&id, &action, viewer.name())
        .await
    {
        Ok(()) => Redirect::to(&format!(
            "/ui/nodes?msg={}",
            encode(&format!("Node {id}: {action} done."))
        ))
        .into_response(),
        Err(e) => error_page(status_of(&e), Some(&viewer), &csrf, &e.to_string()),
    }
}
