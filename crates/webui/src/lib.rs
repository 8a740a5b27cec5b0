//! Bacalhau's web UI: server-rendered pages (maud) under `/ui` with a little plain JavaScript
//! for live updates; every asset is compiled into the binary and nothing is fetched from
//! elsewhere.
//!
//! [`routes`] gives the pages (Jobs, Job, Submit, Nodes, Audit, Login) as a router over the
//! API's [`AppState`]; the binary hands it to `bacalhau_api::server::serve`, which merges it
//! under the API's layers, so the same auth middleware puts the session's [`Principal`] on
//! every page's request. The pages call the [`Orchestrator`](bacalhau_orchestrator::Orchestrator)
//! directly, as the API handlers do.
//! Reading works without JavaScript. Pages act as the signed-in user: with API users the UI
//! asks for a key or a password and keeps an `HttpOnly`, `SameSite=Strict` session cookie;
//! every form that changes something carries a CSRF token checked against a cookie.
//! This crate serves nothing itself and owns no API route; `bacalhau-api` never depends on it.
//! Start at [`routes`].

mod audit;
mod charts;
mod cluster;
mod jobs;
mod lineage;
mod login;
mod nodes;
mod submit;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bacalhau_api::server::AppState;
use bacalhau_api::server::auth::Capability;
use bacalhau_api::server::auth::{Principal, cookie};
use maud::{DOCTYPE, Markup, html};
use std::sync::Arc;

/// The stylesheet, compiled in.
pub const STYLE: &str = include_str!("assets/style.css");
/// The script for live updates, compiled in.
pub const SCRIPT: &str = include_str!("assets/app.js");

/// The cookie holding the CSRF token forms must echo.
const CSRF_COOKIE: &str = "bacalhau_csrf";

/// The UI's routes, all under `/ui`.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/jobs") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/jobs") }))
        .route("/ui/assets/style.css", get(style))
        .route("/ui/assets/app.js", get(script))
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/jobs", get(jobs::list))
        .route("/ui/jobs/{id}", get(jobs::detail))
        .route("/ui/jobs/{id}/stop", post(jobs::stop))
        .route("/ui/jobs/{id}/rerun", post(jobs::rerun))
        .route(
            "/ui/jobs/{id}/executions/{execution}/result",
            get(jobs::result),
        )
        .route("/ui/submit", get(submit::page).post(submit::submit))
        .route("/ui/nodes", get(nodes::list))
        .route("/ui/nodes/{id}", get(nodes::detail))
        .route("/ui/nodes/{id}/{action}", post(nodes::act))
        .route("/ui/audit", get(audit::page))
        .route("/ui/cluster", get(cluster::page))
        .layer(axum::middleware::from_fn_with_state(state, csrf_cookie))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The CSRF token of this browser, set as a cookie on its first visit.
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

/// Gives every browser a CSRF token (in a `SameSite=Strict` cookie) that its forms echo.
async fn csrf_cookie(State(_): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let existing = cookie(request.headers(), CSRF_COOKIE)
        .filter(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string);
    let fresh = existing.is_none();
    let token = existing.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    request.extensions_mut().insert(Csrf(token.clone()));
    let mut response = next.run(request).await;
    if fresh
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict"
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether a submitted form's token matches the browser's cookie.
fn csrf_ok(csrf: &Csrf, submitted: Option<&String>) -> bool {
    use subtle::ConstantTimeEq as _;
    submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(csrf.0.as_bytes())))
}

/// The hidden field every state-changing form carries.
fn csrf_field(csrf: &Csrf) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf.0); }
}

/// Who is looking at a page: the signed-in user (or `anonymous` on an open API), or a
/// redirect to the login page.
fn viewer(
    state: &AppState,
    principal: Option<Principal>,
    uri: &Uri,
) -> Result<Principal, Box<Response>> {
    match principal {
        Some(principal) => Ok(principal),
        None if !state.auth.enabled() => Ok(Principal::anonymous()),
        None => {
            let next = uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/ui/jobs".into());
            Err(Box::new(
                Redirect::to(&format!("/ui/login?next={}", encode(&next))).into_response(),
            ))
        }
    }
}

/// The viewer of a page that needs `capability`, or what turns them away: the login page
/// (not signed in) or a 403 page.
fn gate(
    state: &AppState,
    principal: Option<axum::Extension<Principal>>,
    csrf: &Csrf,
    uri: &Uri,
    capability: Capability,
) -> Result<Principal, Box<Response>> {
    let viewer = viewer(state, principal.map(|p| p.0), uri)?;
    if !viewer.can(capability) {
        return Err(Box::new(forbidden(&viewer, csrf, capability)));
    }
    Ok(viewer)
}

/// [`gate`] for a posted form, which must also echo its browser's CSRF token.
fn gate_form(
    state: &AppState,
    principal: Option<axum::Extension<Principal>>,
    csrf: &Csrf,
    uri: &Uri,
    form: &std::collections::HashMap<String, String>,
    capability: Capability,
) -> Result<Principal, Box<Response>> {
    let viewer = viewer(state, principal.map(|p| p.0), uri)?;
    if !csrf_ok(csrf, form.get("csrf")) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            Some(&viewer),
            csrf,
            "the form's security token does not match; reload the page and try again",
        )));
    }
    if !viewer.can(capability) {
        return Err(Box::new(forbidden(&viewer, csrf, capability)));
    }
    Ok(viewer)
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Which page of the navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Jobs,
    Submit,
    Nodes,
    Audit,
    Cluster,
    Login,
}

/// The frame around every page: navigation, the signed-in user, a message, the content.
fn layout(
    title: &str,
    section: Section,
    viewer: Option<&Principal>,
    csrf: &Csrf,
    notice: Option<&str>,
    content: Markup,
) -> Markup {
    // Only the pages the viewer may use.
    let nav = [
        (Section::Jobs, "/ui/jobs", "Jobs", Capability::READ_JOB),
        (
            Section::Submit,
            "/ui/submit",
            "Submit",
            Capability::WRITE_JOB,
        ),
        (Section::Nodes, "/ui/nodes", "Nodes", Capability::READ_NODE),
        (Section::Audit, "/ui/audit", "Audit", Capability::WRITE_NODE),
        (
            Section::Cluster,
            "/ui/cluster",
            "Cluster",
            Capability::READ_NODE,
        ),
    ]
    .into_iter()
    .filter(|(_, _, _, capability)| viewer.is_none_or(|v| v.can(*capability)));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Bacalhau" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/jobs" { "Bacalhau" }
                    @if section != Section::Login {
                        nav aria-label="Main" {
                            @for (s, href, label, _) in nav {
                                a href=(href) aria-current=[(s == section).then_some("page")] { (label) }
                            }
                        }
                    }
                    @if let Some(viewer) = viewer {
                        div.who {
                            span { (viewer.name()) }
                            @if viewer.name() != "anonymous" {
                                form method="post" action="/ui/logout" {
                                    (csrf_field(csrf))
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main #main {
                    @if let Some(notice) = notice {
                        p.notice role="status" { (notice) }
                    }
                    (content)
                }
            }
        }
    }
}

/// A page that says what went wrong, with the status it deserves.
fn error_page(
    status: StatusCode,
    viewer: Option<&Principal>,
    csrf: &Csrf,
    message: &str,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = layout(
        title,
        Section::Jobs,
        viewer,
        csrf,
        None,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/ui/jobs" { "Back to jobs" } }
        },
    );
    (status, maud_response(body)).into_response()
}

/// A 403 page for a user without `capability`.
fn forbidden(viewer: &Principal, csrf: &Csrf, capability: Capability) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Some(viewer),
        csrf,
        &format!(
            "user '{}' does not have the required capability '{capability}'",
            viewer.name()
        ),
    )
}

/// An HTML response from markup.
fn maud_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A bytes count for people, as the CLI's tables write it.
fn human_bytes(n: u64) -> String {
    bacalhau_models::resources::format_bytes(n)
}

/// A timestamp (nanoseconds) as `YYYY-MM-DD HH:MM:SS`.
fn when(nanos: i64) -> String {
    let text = bacalhau_models::time::rfc3339(nanos);
    text.get(..19).unwrap_or(&text).replace('T', " ")
}

/// A state as a badge whose class gives its colour.
fn badge(state: &str) -> Markup {
    html! { span class={ "badge " (state.to_ascii_lowercase()) } { (state) } }
}

/// Inline JSON-free data for scripts: an element's `data-*` attributes carry what they need.
fn script_note() -> Markup {
    html! { noscript { p.muted { "Live updates need JavaScript; reload the page to see changes." } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_format_for_people() {
        assert_eq!(
            encode("/ui/jobs?state=Running"),
            "%2Fui%2Fjobs%3Fstate%3DRunning"
        );
        assert_eq!(when(0), "1970-01-01 00:00:00");
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let csrf = Csrf("a".repeat(32));
        assert!(csrf_ok(&csrf, Some(&"a".repeat(32))));
        assert!(!csrf_ok(&csrf, Some(&"b".repeat(32))));
        assert!(!csrf_ok(&csrf, None));
    }

    #[test]
    fn markup_escapes_what_users_typed() {
        let csrf = Csrf("0".repeat(32));
        let page = layout(
            "<script>",
            Section::Jobs,
            None,
            &csrf,
            Some("<b>hi</b>"),
            html! { p { ("<img src=x>") } },
        )
        .into_string();
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<img src=x>"));
        assert!(page.contains("&lt;b&gt;hi&lt;/b&gt;"));
    }
}
