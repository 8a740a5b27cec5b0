//! The Submit page: a YAML/JSON spec pasted or loaded from a file, or a short Docker or WASM
//! form; "Preview" shows the job as it would be stored (a dry run), "Submit" stores it.
//! Validation errors appear beside the field they name.

use crate::{Csrf, Section, csrf_field, encode, gate_form, layout, maud_response, viewer};
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use bacalhau_api::server::AppState;
use bacalhau_api::server::auth::Capability;
use bacalhau_api::server::auth::Principal;
use bacalhau_models::{Job, ValidationError, parse_job_spec};
use maud::{Markup, html};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the user typed, echoed back with the problems found.
#[derive(Debug, Default)]
struct Draft {
    form: HashMap<String, String>,
    /// Field name → problems shown beside it; `""` for the form as a whole.
    errors: BTreeMap<String, Vec<String>>,
    /// The normalized job, when previewing.
    preview: Option<String>,
    warnings: Vec<String>,
}

impl Draft {
    fn value(&self, key: &str) -> &str {
        self.form.get(key).map(String::as_str).unwrap_or("")
    }

    fn mode(&self) -> &str {
        match self.value("mode") {
            "docker" => "docker",
            "wasm" => "wasm",
            _ => "spec",
        }
    }

    fn errors_for(&self, field: &str) -> Markup {
        html! {
            @for message in self.errors.get(field).into_iter().flatten() {
                p.field-error role="alert" id={ "error-" (field) } { (message) }
            }
        }
    }
}

/// `GET /ui/submit`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
) -> Response {
    let viewer = match viewer(&state, principal.map(|p| p.0), &uri) {
        Ok(v) => v,
        Err(redirect) => return *redirect,
    };
    render(&viewer, &csrf, &Draft::default(), StatusCode::OK)
}

/// `POST /ui/submit`: preview or submit.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    principal: Option<Extension<Principal>>,
    Extension(csrf): Extension<Csrf>,
    uri: Uri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let viewer = match gate_form(&state, principal, &csrf, &uri, &form, Capability::WRITE_JOB) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let mut draft = Draft {
        form,
        ..Default::default()
    };
    let job = match build_job(&draft) {
        Ok(job) => job,
        Err((field, message)) => {
            draft.errors.entry(field).or_default().push(message);
            return render(&viewer, &csrf, &draft, StatusCode::BAD_REQUEST);
        }
    };
    match state.orchestrator.check(job.clone()) {
        Err(errors) => {
            for error in errors {
                draft
                    .errors
                    .entry(field_of(draft.mode(), &error))
                    .or_default()
                    .push(error.to_string());
            }
            render(&viewer, &csrf, &draft, StatusCode::BAD_REQUEST)
        }
        Ok((normalized, warnings)) if draft.value("action") == "preview" => {
            draft.preview = Some(
                serde_yaml_ng::to_string(&normalized)
                    .unwrap_or_else(|e| format!("cannot render: {e}")),
            );
            draft.warnings = warnings;
            render(&viewer, &csrf, &draft, StatusCode::OK)
        }
        Ok(_) => match state.orchestrator.submit(job, false, viewer.name()).await {
            Ok(submitted) => Redirect::to(&format!(
                "/ui/jobs/{}?msg={}",
                submitted.job_id,
                encode("Job submitted.")
            ))
            .into_response(),
            Err(e) => {
                draft
                    .errors
                    .entry(String::new())
                    .or_default()
                    .push(e.to_string());
                render(&viewer, &csrf, &draft, StatusCode::CONFLICT)
            }
        },
    }
}

/// The form field a validation error belongs beside.
fn field_of(mode: &str, error: &ValidationError) -> String {
    let field = error.field.as_str();
    if mode == "spec" {
        return "spec".into();
    }
    let task = |suffix: &str| field.starts_with(&format!("Tasks[0].{suffix}"));
    let named = if task("Engine.Params.Image") {
        "image"
    } else if task("Engine.Params.Entrypoint") || task("Engine.Params.Parameters") {
        "command"
    } else if task("Env") {
        "env"
    } else if task("Resources.CPU") {
        "cpu"
    } else if task("Resources.Memory") {
        "memory"
    } else if task("InputSources") || task("Engine.Params.EntryModule") {
        "module"
    } else if field == "Name" {
        "name"
    } else {
        ""
    };
    named.into()
}

/// Splits a command line into words, honouring single and double quotes.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// `NAME=value` lines into a map.
fn env_lines(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{line:?} is not NAME=value"))?;
        env.insert(name.trim().to_string(), value.to_string());
    }
    Ok(env)
}

/// The job the form describes, or the field that keeps it from being one.
fn build_job(draft: &Draft) -> Result<Job, (String, String)> {
    let mode = draft.mode();
    if mode == "spec" {
        let text = draft.value("spec");
        if text.trim().is_empty() {
            return Err((
                "spec".into(),
                "paste a job spec (YAML or JSON) or load a file".into(),
            ));
        }
        return parse_job_spec(text).map_err(|e| ("spec".into(), e.to_string()));
    }
    let env = env_lines(draft.value("env")).map_err(|e| ("env".to_string(), e))?;
    let command = words(draft.value("command")).map_err(|e| ("command".to_string(), e))?;
    let mut resources = serde_json::Map::new();
    for (field, key) in [("cpu", "CPU"), ("memory", "Memory")] {
        let value = draft.value(field).trim();
        if !value.is_empty() {
            resources.insert(key.into(), json!(value));
        }
    }
    let name = draft.value("name").trim();
    let (engine, inputs) = if mode == "docker" {
        let mut params = serde_json::Map::new();
        params.insert("Image".into(), json!(draft.value("image").trim()));
        if let Some((first, rest)) = command.split_first() {
            params.insert("Entrypoint".into(), json!([first]));
            params.insert("Parameters".into(), json!(rest));
        }
        (json!({"Type": "docker", "Params": params}), json!([]))
    } else {
        let module = draft.value("module").trim();
        if module.is_empty() {
            return Err((
                "module".into(),
                "give the module's URL (https://...)".into(),
            ));
        }
        (
            json!({"Type": "wasm", "Params": {"EntryModule": "/module.wasm", "Parameters": command}}),
            json!([{"Target": "/module.wasm", "Source": {"Type": "urlDownload", "Params": {"URL": module}}}]),
        )
    };
    let mut task = json!({
        "Name": "main",
        "Engine": engine,
        "Env": env,
        "Resources": resources,
        "InputSources": inputs,
    });
    if draft.value("publish") == "on" {
        task["Publisher"] = json!({"Type": "local"});
        task["ResultPaths"] = json!([{"Name": "outputs", "Path": "/outputs"}]);
    }
    let spec = json!({
        "Name": name,
        "Type": "batch",
        "Count": 1,
        "Tasks": [task],
    });
    parse_job_spec(&spec.to_string()).map_err(|e| (String::new(), e.to_string()))
}

fn render(viewer: &Principal, csrf: &Csrf, draft: &Draft, status: StatusCode) -> Response {
    let mode = draft.mode();
    let buttons = html! {
        div.actions {
            button type="submit" name="action" value="preview" { "Preview" }
            button.primary type="submit" name="action" value="submit" { "Submit" }
        }
    };
    let forms = html! {
        @if let Some(preview) = &draft.preview {
            section #preview {
                h2 { "Preview: the job as it would be stored" }
                @for warning in &draft.warnings { p.notice { (warning) } }
                pre.spec { (preview) }
            }
        }
        details #spec-details open[mode == "spec"] {
            summary { "From a spec (YAML or JSON)" }
            form #spec-form method="post" action="/ui/submit" {
                (csrf_field(csrf))
                input type="hidden" name="mode" value="spec";
                label for="spec" { "Spec" }
                textarea #spec name="spec" rows="16" spellcheck="false" aria-describedby="error-spec" { (draft.value("spec")) }
                (draft.errors_for("spec"))
                label { "Or load a file " input #spec-file type="file" accept=".yaml,.yml,.json" data-into="spec"; }
                (buttons)
            }
        }
        details #docker-details open[mode == "docker"] {
            summary { "Docker" }
            form #docker-form method="post" action="/ui/submit" {
                (csrf_field(csrf))
                input type="hidden" name="mode" value="docker";
                (field("docker", "name", "Name (optional)", draft, "text", ""))
                (field("docker", "image", "Image", draft, "text", "busybox:1.37.0"))
                (field("docker", "command", "Command", draft, "text", "echo hello"))
                (env_field("docker", draft))
                (field("docker", "cpu", "CPU", draft, "text", "0.5"))
                (field("docker", "memory", "Memory", draft, "text", "256mb"))
                label.check { input type="checkbox" name="publish" checked[draft.value("publish") == "on"]; " Publish /outputs (local publisher)" }
                (buttons)
            }
        }
        details #wasm-details open[mode == "wasm"] {
            summary { "WebAssembly" }
            form #wasm-form method="post" action="/ui/submit" {
                (csrf_field(csrf))
                input type="hidden" name="mode" value="wasm";
                (field("wasm", "name", "Name (optional)", draft, "text", ""))
                (field("wasm", "module", "Module URL", draft, "url", "https://example.org/hello.wasm"))
                (field("wasm", "command", "Arguments", draft, "text", ""))
                (env_field("wasm", draft))
                (buttons)
            }
        }
    };
    let content = html! {
        h1 { "Submit a job" }
        (draft.errors_for(""))
        @if !viewer.can(Capability::WRITE_JOB) {
            p.notice { "You may not submit jobs: that needs the write:job capability." }
        } @else {
            (forms)
        }
    };
    (
        status,
        maud_response(layout(
            "Submit",
            Section::Submit,
            Some(viewer),
            csrf,
            None,
            content,
        )),
    )
        .into_response()
}

/// One labelled input of the `form` (docker or wasm) form; the Docker and WASM forms share
/// field names, so a value and its errors show only in the form that was posted.
fn field(
    form: &str,
    name: &str,
    label: &str,
    draft: &Draft,
    kind: &str,
    placeholder: &str,
) -> Markup {
    let posted = draft.mode() == form;
    let id = format!("{form}-{name}");
    html! {
        label for=(id) { (label) }
        input id=(id) type=(kind) name=(name) value=(if posted { draft.value(name) } else { "" }) placeholder=(placeholder) aria-describedby={ "error-" (name) };
        @if posted { (draft.errors_for(name)) }
    }
}

fn env_field(form: &str, draft: &Draft) -> Markup {
    let posted = draft.mode() == form;
    let id = format!("{form}-env");
    html! {
        label for=(id) { "Environment (NAME=value per line; env:NAME reads the node's)" }
        textarea id=(id) name="env" rows="3" aria-describedby="error-env" { @if posted { (draft.value("env")) } }
        @if posted { (draft.errors_for("env")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(
            words("echo 'a b' \"c\" d").unwrap(),
            vec!["echo", "a b", "c", "d"]
        );
        assert_eq!(
            words("sh -c 'echo \"hi\"'").unwrap(),
            vec!["sh", "-c", "echo \"hi\""]
        );
        assert_eq!(words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(words("''").unwrap(), vec![""]);
        assert!(words("echo 'open").is_err());
    }

    #[test]
    fn the_docker_form_builds_a_job_and_names_bad_fields() {
        let draft = |pairs: &[(&str, &str)]| Draft {
            form: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let job = build_job(&draft(&[
            ("mode", "docker"),
            ("image", "busybox:1.37.0"),
            ("command", "echo 'Hello World'"),
            ("env", "A=1\nB=env:SECRET"),
        ]))
        .unwrap();
        let task = job.task().unwrap();
        assert_eq!(task.engine.param_str("Image"), Some("busybox:1.37.0"));
        assert_eq!(task.env["B"], "env:SECRET");
        let err = build_job(&draft(&[("mode", "docker"), ("env", "no equals")])).unwrap_err();
        assert_eq!(err.0, "env");
        let err = build_job(&draft(&[("mode", "spec"), ("spec", "")])).unwrap_err();
        assert_eq!(err.0, "spec");
        let error = ValidationError {
            field: "Tasks[0].Engine.Params.Image".into(),
            message: "required".into(),
        };
        assert_eq!(field_of("docker", &error), "image");
        assert_eq!(field_of("spec", &error), "spec");
    }
}
