//! Signing in (an API key, or a username and password) and out of the web UI.

use crate::{Csrf, Section, csrf_field, csrf_ok, layout, maud_response};
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bacalhau_api::server::AppState;
use bacalhau_api::server::auth::{Principal, SESSION_COOKIE, cookie};
use base64::Engine as _;
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

/// Only pages of the UI itself are places to return to after signing in.
fn safe_next(next: Option<&String>) -> String {
    next.filter(|n| n.starts_with("/ui/") && !n.starts_with("//") && !n.contains("://"))
        .cloned()
        .unwrap_or_else(|| "/ui/jobs".into())
}

fn render(
    state: &AppState,
    csrf: &Csrf,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let content = html! {
        h1 { "Sign in" }
        @if !state.auth.enabled() {
            p.notice { "This server has no API users: no sign-in is needed. " a href="/ui/jobs" { "Go to jobs" } }
        }
        @if let Some(error) = error { p.error role="alert" #login-error { (error) } }
        form.login method="post" action="/ui/login" {
            (csrf_field(csrf))
            input type="hidden" name="next" value=(next);
            fieldset {
                legend { "With an API key" }
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="off";
            }
            fieldset {
                legend { "Or with a username and password" }
                label for="username" { "Username" }
                input #username type="text" name="username" autocomplete="username";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password";
            }
            button.primary type="submit" { "Sign in" }
        }
    };
    (
        status,
        maud_response(layout("Sign in", Section::Login, None, csrf, None, content)),
    )
        .into_response()
}

/// `GET /ui/login`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(csrf): Extension<Csrf>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    render(
        &state,
        &csrf,
        &safe_next(params.get("next")),
        None,
        StatusCode::OK,
    )
}

/// `POST /ui/login`: checks the credentials as the API would and opens a session.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(csrf): Extension<Csrf>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let next = safe_next(form.get("next"));
    if !csrf_ok(&csrf, form.get("csrf")) {
        return render(
            &state,
            &csrf,
            &next,
            Some("The form's security token does not match; try again."),
            StatusCode::FORBIDDEN,
        );
    }
    if !state.auth.enabled() {
        return Redirect::to(&next).into_response();
    }
    let text = |key: &str| form.get(key).map(|v| v.trim()).unwrap_or("");
    let header_value = if !text("api_key").is_empty() {
        format!("Bearer {}", text("api_key"))
    } else if !text("username").is_empty() {
        let pair = format!(
            "{}:{}",
            text("username"),
            form.get("password").map(String::as_str).unwrap_or("")
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    } else {
        return render(
            &state,
            &csrf,
            &next,
            Some("Give an API key, or a username and password."),
            StatusCode::BAD_REQUEST,
        );
    };
    let principal: Principal = match state.auth.principal_for(&header_value) {
        Ok(principal) => principal,
        Err(_) => {
            tracing::warn!("web UI sign-in refused");
            return render(
                &state,
                &csrf,
                &next,
                Some("Those credentials are not valid."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let token = state.auth.open_session(principal);
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if csrf_ok(&csrf, form.get("csrf"))
        && let Some(token) = cookie(&headers, SESSION_COOKIE)
    {
        state.auth.close_session(token);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("bacalhau_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
