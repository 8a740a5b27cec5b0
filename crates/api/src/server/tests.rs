//! The API server's tests: every route through the router, with a real orchestrator behind it.

use super::*;
use bacalhau_client::client::{ApiClient, ListJobsOptions};
use bacalhau_models::{JobStateType, parse_job_spec};
use bacalhau_orchestrator::OrchestratorConfig;
use std::time::{Duration, Instant};

struct Harness {
    client: ApiClient,
    base: String,
    orchestrator: Arc<Orchestrator>,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    start_with(Default::default()).await
}

async fn start_with(auth: auth::Authenticator) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = Orchestrator::start(OrchestratorConfig {
        data_dir: dir.path().to_path_buf(),
        job_defaults: Default::default(),
        workers: 2,
        nodes: Default::default(),
        cluster: None,
    })
    .await
    .unwrap();
    let orchestrator = Arc::new(orchestrator);
    let state = Arc::new(AppState {
        orchestrator: Arc::clone(&orchestrator),
        node_info: NodeInfo::default(),
        config: serde_json::json!({}),
        version: BuildVersionInfo {
            git_version: "v0.0.0-test".into(),
            ..Default::default()
        },
        auth,
        cluster: None,
        forwarder: reqwest::Client::new(),
        telemetry: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        state,
        axum::Router::new(),
        std::future::pending(),
    ));
    Harness {
        client: ApiClient::new(&base).unwrap(),
        base,
        orchestrator,
        _dir: dir,
    }
}

impl Harness {
    /// `GET path` (with its query) and the answer's status and JSON body.
    async fn get_json(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}{path_and_query}", self.base))
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Asserts that `GET path` is a 400 in upstream's error JSON.
    async fn assert_bad_request(&self, path_and_query: &str) {
        let (status, body) = self.get_json(path_and_query).await;
        assert_eq!(status, 400, "{path_and_query}: {body}");
        assert_eq!(body["Status"], 400, "{path_and_query}: {body}");
        assert_eq!(body["Code"], "BadRequest", "{path_and_query}: {body}");
        assert!(
            !body["Message"].as_str().unwrap_or_default().is_empty(),
            "{path_and_query}: {body}"
        );
    }
}

fn job(name: &str) -> bacalhau_models::Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n   Timeouts: {{QueueTimeout: 300}}\n"
    ))
    .unwrap()
}

async fn wait_for(client: &ApiClient, id: &str, want: JobStateType) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = client.get_job(id, "").await.unwrap().job.state.state_type;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {got}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn submit_get_list_stop_round_trip() {
    let h = start().await;
    let put = h.client.put_job(&job("round-trip"), false).await.unwrap();
    assert!(put.job_id.starts_with("j-"));
    wait_for(&h.client, &put.job_id, JobStateType::Queued).await;
    let got = h
        .client
        .get_job(&put.job_id, "history,executions")
        .await
        .unwrap();
    assert_eq!(got.job.name, "round-trip");
    assert_eq!(got.history.unwrap().items[0].event.message, "Job submitted");
    assert!(got.executions.unwrap().items.is_empty());
    let listed = h
        .client
        .list_jobs(&ListJobsOptions::default())
        .await
        .unwrap();
    assert!(listed.items.iter().any(|j| j.id.as_str() == put.job_id));
    h.client.stop_job(&put.job_id[..10], "test").await.unwrap();
    wait_for(&h.client, &put.job_id, JobStateType::Stopped).await;
}

#[tokio::test]
async fn bad_specs_get_400_naming_the_field() {
    let h = start().await;
    let mut bad = job("bad");
    bad.tasks[0].engine.r#type = "flibble".into();
    let err = h.client.put_job(&bad, false).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("Tasks[0].Engine.Type"), "{err}");

    let raw = reqwest::Client::new();
    for body in [
        "",
        "not json",
        "[]",
        "{}",
        "{\"Job\": 5}",
        "{\"Job\": {\"Count\": \"x\"}}",
    ] {
        let response = raw
            .put(format!("{}/api/v1/orchestrator/jobs", h.base))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "body {body:?}");
        let error: crate::apimodels::ApiErrorBody = response.json().await.unwrap();
        assert_eq!(error.status, 400);
        assert!(!error.message.is_empty());
    }
}

#[tokio::test]
async fn unknown_jobs_and_routes_are_404_in_upstreams_error_shape() {
    let h = start().await;
    let err = h.client.get_job("j-nope", "").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let response = reqwest::get(format!("{}/api/v1/nowhere", h.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: crate::apimodels::ApiErrorBody = response.json().await.unwrap();
    assert_eq!(error.code, "NotFound");
}

#[tokio::test]
async fn double_slashes_and_capitalized_booleans_are_accepted() {
    let h = start().await;
    let response = reqwest::get(format!("{}//api/v1/agent/alive", h.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("X-Bacalhau-Git-Version").unwrap(),
        "v0.0.0-test"
    );
    let response = reqwest::get(format!("{}/api/v1/orchestrator/jobs?reverse=True", h.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unchanged_resubmission_conflicts_and_force_makes_a_new_version() {
    let h = start().await;
    let first = h.client.put_job(&job("same"), false).await.unwrap();
    let err = h.client.put_job(&job("same"), false).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().contains("--force"), "{err}");
    let forced = h.client.put_job(&job("same"), true).await.unwrap();
    assert_eq!(first.job_id, forced.job_id);
    let versions = h.client.job_versions("same").await.unwrap();
    assert_eq!(versions.items.len(), 2);
}

#[tokio::test]
async fn diff_shows_what_a_resubmission_would_change() {
    let h = start().await;
    h.client.put_job(&job("diffed"), false).await.unwrap();
    let mut changed = job("diffed");
    changed.tasks[0].timeouts.queue_timeout = 900;
    let diff = h.client.diff_job(&changed).await.unwrap().diff;
    let changed_lines: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|l| {
            if l.contains("300") {
                "-old"
            } else if l.contains("900") {
                "+new"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(changed_lines, vec!["-old", "+new"], "{diff}");
    assert!(
        !diff.contains("StateType"),
        "server-owned fields are not part of the spec: {diff}"
    );
    let same = h.client.diff_job(&job("diffed")).await.unwrap().diff;
    assert!(same.is_empty(), "{same}");
}

#[tokio::test]
async fn rerun_makes_a_new_version_of_a_finished_job_only() {
    let h = start().await;
    let put = h.client.put_job(&job("again"), false).await.unwrap();
    wait_for(&h.client, &put.job_id, JobStateType::Queued).await;
    let err = h
        .client
        .rerun_job(&put.job_id, 0, "too soon")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    h.client.stop_job(&put.job_id, "").await.unwrap();
    wait_for(&h.client, &put.job_id, JobStateType::Stopped).await;
    let rerun = h
        .client
        .rerun_job(&put.job_id, 1, "once more")
        .await
        .unwrap();
    assert_eq!(rerun.job_version, 2);
    wait_for(&h.client, &put.job_id, JobStateType::Queued).await;
    let history = h
        .client
        .job_history(&put.job_id, "job", "", "")
        .await
        .unwrap()
        .items;
    assert!(
        history
            .iter()
            .any(|e| e.event.message == "Job rerun requested")
    );
}

/// A field of every item of a list answer, in order.
fn field_of(body: &serde_json::Value, list: &str, path: &[&str]) -> Vec<serde_json::Value> {
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {body}"))
        .iter()
        .map(|item| path.iter().fold(item, |v, key| &v[*key]).clone())
        .collect()
}

/// A job "versioned" with two versions, two executions of version 1 and one of version 2
/// (written straight to the store: the tests have no compute node). Returns the job's ID.
async fn versioned_job(h: &Harness) -> String {
    let first = h.client.put_job(&job("versioned"), false).await.unwrap();
    let mut changed = job("versioned");
    changed.tasks[0].timeouts.queue_timeout = 900;
    h.client.put_job(&changed, false).await.unwrap();
    let job_id = bacalhau_models::JobId::from(first.job_id.as_str());
    h.orchestrator
        .store()
        .write(move |w| {
            // Created in the order listed; modified in the opposite order.
            for (i, (name, version)) in [("e-1", 1), ("e-2", 1), ("e-3", 2)].iter().enumerate() {
                w.put_execution(&bacalhau_models::Execution {
                    id: bacalhau_models::ExecutionId::from(*name),
                    job_id: job_id.clone(),
                    job_version: *version,
                    namespace: bacalhau_models::DEFAULT_NAMESPACE.into(),
                    create_time: 100 + i as i64,
                    modify_time: 200 - i as i64,
                    ..Default::default()
                })?;
            }
            Ok::<_, bacalhau_orchestrator::OrchestratorError>(())
        })
        .await
        .unwrap();
    first.job_id
}

#[tokio::test]
async fn executions_take_versions_paging_and_order_as_upstream() {
    let h = start().await;
    let id = versioned_job(&h).await;
    let ids = |body: &serde_json::Value| field_of(body, "Items", &["ID"]);
    let path = format!("/api/v1/orchestrator/jobs/{id}/executions");

    let (status, body) = h.get_json(&path).await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&body),
        ["e-1", "e-2", "e-3"],
        "no parameter: every version"
    );
    assert_eq!(body["NextToken"], "");
    let (_, body) = h.get_json(&format!("{path}?job_version=1")).await;
    assert_eq!(ids(&body), ["e-1", "e-2"]);
    let (_, body) = h.get_json(&format!("{path}?all_job_versions=false")).await;
    assert_eq!(ids(&body), ["e-3"], "only the latest version");
    let (_, body) = h.get_json(&format!("{path}?all_job_versions=true")).await;
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = h.get_json(&format!("{path}?job_version=9")).await;
    assert!(ids(&body).is_empty());
    let (_, body) = h
        .get_json(&format!(
            "/api/v1/orchestrator/jobs/{id}?job_version=1&include=executions"
        ))
        .await;
    assert_eq!(ids(&body["Executions"]), ["e-1", "e-2"]);

    let (_, body) = h.get_json(&format!("{path}?reverse=true")).await;
    assert_eq!(ids(&body), ["e-3", "e-2", "e-1"]);
    let (_, body) = h.get_json(&format!("{path}?order_by=modified_at")).await;
    assert_eq!(ids(&body), ["e-3", "e-2", "e-1"]);
    let (_, body) = h
        .get_json(&format!("{path}?order_by=modify_time&reverse=True"))
        .await;
    assert_eq!(ids(&body), ["e-1", "e-2", "e-3"]);
    let (_, body) = h.get_json(&format!("{path}?order_by=created_at")).await;
    assert_eq!(ids(&body), ["e-1", "e-2", "e-3"]);

    let (_, body) = h.get_json(&format!("{path}?limit=2")).await;
    assert_eq!(ids(&body), ["e-1", "e-2"]);
    let token = body["NextToken"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let (_, body) = h
        .get_json(&format!("{path}?limit=2&next_token={token}"))
        .await;
    assert_eq!(ids(&body), ["e-3"]);
    assert_eq!(body["NextToken"], "");

    for bad in [
        "order_by=flibble",
        "job_version=x",
        "job_version=-1",
        "all_job_versions=maybe",
        "limit=-1",
        "next_token=abc",
        "reverse=sometimes",
    ] {
        h.assert_bad_request(&format!("{path}?{bad}")).await;
    }
}

#[tokio::test]
async fn versions_take_paging_and_order() {
    let h = start().await;
    let id = versioned_job(&h).await;
    let versions = |body: &serde_json::Value| field_of(body, "Items", &["Version"]);
    let path = format!("/api/v1/orchestrator/jobs/{id}/versions");
    let (status, body) = h.get_json(&path).await;
    assert_eq!(status, 200);
    assert_eq!(versions(&body), [1, 2]);
    let (_, body) = h
        .get_json(&format!("{path}?order_by=version&reverse=1"))
        .await;
    assert_eq!(versions(&body), [2, 1]);
    let (_, body) = h.get_json(&format!("{path}?order_by=modified_at")).await;
    assert_eq!(versions(&body), [1, 2]);
    let (_, body) = h.get_json(&format!("{path}?limit=1")).await;
    assert_eq!(versions(&body), [1]);
    assert_eq!(body["NextToken"], "1");
    let (_, body) = h.get_json(&format!("{path}?limit=1&next_token=1")).await;
    assert_eq!(versions(&body), [2]);
    assert_eq!(body["NextToken"], "");
    for bad in ["order_by=flibble", "limit=x", "next_token=-2"] {
        h.assert_bad_request(&format!("{path}?{bad}")).await;
    }
}

#[tokio::test]
async fn history_takes_versions_and_rejects_bad_filters() {
    let h = start().await;
    let id = versioned_job(&h).await;
    let versions = |body: &serde_json::Value| {
        let mut seen = field_of(body, "Items", &["JobVersion"]);
        seen.dedup();
        seen
    };
    let path = format!("/api/v1/orchestrator/jobs/{id}/history");
    let (status, body) = h.get_json(&path).await;
    assert_eq!(status, 200);
    assert_eq!(versions(&body), [1, 2], "no parameter: every version");
    let (_, body) = h.get_json(&format!("{path}?job_version=1")).await;
    assert_eq!(versions(&body), [1]);
    let (_, body) = h.get_json(&format!("{path}?all_job_versions=false")).await;
    assert_eq!(versions(&body), [2]);
    let (_, body) = h
        .get_json(&format!("{path}?event_type=job&since=1&limit=1"))
        .await;
    assert_eq!(
        field_of(&body, "Items", &["Event", "Message"]),
        ["Job submitted"]
    );
    let token = body["NextToken"].as_str().unwrap().to_string();
    let (_, body) = h
        .get_json(&format!("{path}?event_type=job&limit=1&next_token={token}"))
        .await;
    assert_eq!(field_of(&body, "Items", &["Type"]).len(), 1);
    let (_, body) = h
        .get_json(&format!("{path}?execution_id=e-&event_type=all"))
        .await;
    assert!(field_of(&body, "Items", &["ExecutionID"]).is_empty());
    for bad in [
        "event_type=flibble",
        "since=-1",
        "since=9223372036854775808",
        "job_version=v1",
        "all_job_versions=2",
        "next_token=x",
        "limit=many",
    ] {
        h.assert_bad_request(&format!("{path}?{bad}")).await;
    }
}

#[tokio::test]
async fn logs_take_a_job_version_and_check_it_before_the_upgrade() {
    use futures_util::StreamExt as _;
    let h = start().await;
    let id = versioned_job(&h).await;
    let path = format!("/api/v1/orchestrator/jobs/{id}/logs");
    h.assert_bad_request(&format!("{path}?job_version=x")).await;
    h.assert_bad_request(&format!("{path}?all_job_versions=perhaps"))
        .await;
    // A version with no execution: the stream says so, naming the version.
    let url = format!("{}{path}?job_version=7&all_job_versions=true", h.base)
        .replacen("http://", "ws://", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = socket.next().await.unwrap().unwrap();
    let frame: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert!(
        frame["error"].as_str().unwrap().contains("version 7"),
        "{frame}"
    );
}

async fn join_node(h: &Harness, id: &str, zone: &str, cpu: f64) {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("zone".to_string(), zone.to_string());
    let mut info = NodeInfo {
        node_id: bacalhau_models::NodeId::from(id),
        node_type: bacalhau_models::node::NodeType::Compute,
        labels,
        ..Default::default()
    };
    info.compute_node_info.available_capacity.cpu = cpu;
    let hello = bacalhau_protocol::Hello {
        node_info: info,
        token: String::new(),
        last_applied: 0,
    };
    h.orchestrator
        .node_manager()
        .handshake(&hello)
        .await
        .unwrap();
}

#[tokio::test]
async fn nodes_take_upstreams_filters_order_paging_and_labels() {
    let h = start().await;
    join_node(&h, "n-a", "east", 4.0).await;
    join_node(&h, "n-b", "west", 8.0).await;
    join_node(&h, "n-c", "east", 2.0).await;
    let ids = |body: &serde_json::Value| field_of(body, "Nodes", &["Info", "NodeID"]);
    let path = "/api/v1/orchestrator/nodes";

    let (status, body) = h.get_json(path).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), ["n-a", "n-b", "n-c"]);
    let (_, body) = h.get_json(&format!("{path}?order_by=available_cpu")).await;
    assert_eq!(ids(&body), ["n-b", "n-a", "n-c"], "most free CPU first");
    let (_, body) = h
        .get_json(&format!("{path}?order_by=available_cpu&reverse=true"))
        .await;
    assert_eq!(ids(&body), ["n-c", "n-a", "n-b"]);
    let (_, body) = h
        .get_json(&format!("{path}?order_by=id&reverse=true"))
        .await;
    assert_eq!(ids(&body), ["n-c", "n-b", "n-a"]);
    let (_, body) = h.get_json(&format!("{path}?order_by=status")).await;
    assert_eq!(ids(&body).len(), 3);

    let (_, body) = h.get_json(&format!("{path}?labels=zone%3Deast")).await;
    assert_eq!(ids(&body), ["n-a", "n-c"]);
    let (_, body) = h
        .get_json(&format!(
            "{path}?labels=zone%20in%20(east,west)&labels=zone!%3Dwest"
        ))
        .await;
    assert_eq!(ids(&body), ["n-a", "n-c"], "repeated selectors all apply");

    let (_, body) = h.get_json(&format!("{path}?limit=2")).await;
    assert_eq!(ids(&body), ["n-a", "n-b"]);
    assert_eq!(body["NextToken"], "2");
    let (_, body) = h.get_json(&format!("{path}?limit=2&next_token=2")).await;
    assert_eq!(ids(&body), ["n-c"]);
    assert_eq!(body["NextToken"], "");

    let (_, body) = h.get_json(&format!("{path}?filter-status=connected")).await;
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = h
        .get_json(&format!("{path}?filter-status=DISCONNECTED"))
        .await;
    assert!(ids(&body).is_empty());
    let (_, body) = h
        .get_json(&format!("{path}?filter-approval=approved"))
        .await;
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = h.get_json(&format!("{path}?filter_approval=PENDING")).await;
    assert!(ids(&body).is_empty());

    for bad in [
        "order_by=flibble",
        "filter-approval=maybe",
        "filter-status=asleep",
        "filter_status=asleep",
        "labels=%3Dnokey",
        "next_token=x",
        "limit=-3",
        "reverse=2",
    ] {
        h.assert_bad_request(&format!("{path}?{bad}")).await;
    }
}

#[tokio::test]
async fn repeated_labels_on_the_job_list_all_apply() {
    let h = start().await;
    let mut labelled = job("labelled");
    labelled.labels.insert("env".into(), "prod".into());
    labelled.labels.insert("tier".into(), "web".into());
    h.client.put_job(&labelled, false).await.unwrap();
    let names = |body: &serde_json::Value| field_of(body, "Items", &["Name"]);
    let (_, body) = h
        .get_json("/api/v1/orchestrator/jobs?labels=env%3Dprod&labels=tier%3Dweb")
        .await;
    assert_eq!(names(&body), ["labelled"]);
    let (_, body) = h
        .get_json("/api/v1/orchestrator/jobs?labels=env%3Dprod&labels=tier%3Ddb")
        .await;
    assert!(names(&body).is_empty());
}

#[tokio::test]
async fn the_job_list_filters_by_state_and_refuses_an_unknown_one() {
    let h = start().await;
    let put = h.client.put_job(&job("stopped"), false).await.unwrap();
    h.client.stop_job(&put.job_id, "").await.unwrap();
    wait_for(&h.client, &put.job_id, JobStateType::Stopped).await;
    let names = |body: &serde_json::Value| field_of(body, "Items", &["Name"]);
    let (_, body) = h
        .get_json("/api/v1/orchestrator/jobs?state=stopped,Failed")
        .await;
    assert_eq!(names(&body), ["stopped"]);
    let (_, body) = h
        .get_json("/api/v1/orchestrator/jobs?state=Running&state=completed")
        .await;
    assert!(names(&body).is_empty());
    let options = bacalhau_client::client::ListJobsOptions {
        states: vec![JobStateType::Stopped],
        ..Default::default()
    };
    let listed = h.client.list_jobs(&options).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    h.assert_bad_request("/api/v1/orchestrator/jobs?state=Sleeping")
        .await;
}

#[tokio::test]
async fn authconfig_is_open_and_offers_no_single_sign_on() {
    let users = serde_json::json!([
        {"Alias": "ops", "APIKey": "k".repeat(20), "Capabilities": [{"Actions": ["*"]}]}
    ]);
    let h = start_with(auth::Authenticator::from_config(&users).unwrap()).await;
    let (status, body) = h.get_json("/api/v1/agent/authconfig").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"Version": "1.0.0", "Config": {}}));
    let parsed: crate::apimodels::GetAgentNodeAuthConfigResponse =
        serde_json::from_value(body).unwrap();
    assert!(parsed.config.provider_id.is_empty());
    // The route next to it is not open.
    let (status, _) = h.get_json("/api/v1/agent/config").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn legacy_root_routes_redirect_as_upstream() {
    let h = start().await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, target) in [
        ("/", "/api/v1/agent/version"),
        ("/version", "/api/v1/agent/version"),
        ("/livez", "/api/v1/agent/alive"),
    ] {
        let response = plain.get(format!("{}{path}", h.base)).send().await.unwrap();
        assert_eq!(response.status(), 301, "{path}");
        assert_eq!(response.headers()["location"], target, "{path}");
        assert!(response.bytes().await.unwrap().is_empty(), "{path}");
    }
    // Followed, they land on the agent's answers.
    let (status, body) = h.get_json("/livez").await;
    assert_eq!((status, body["Status"].as_str()), (200, Some("OK")));
    let (status, body) = h.get_json("/version").await;
    assert_eq!(
        (status, body["GitVersion"].as_str()),
        (200, Some("v0.0.0-test"))
    );
    // Only GET, as upstream registers them.
    let response = plain
        .post(format!("{}/livez", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[test]
fn openapi_documents_the_upstream_parameters_and_routes() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let names = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no GET parameters"))
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let wanted: [(&str, &[&str]); 5] = [
        (
            "/api/v1/orchestrator/jobs/{id}/executions",
            &[
                "limit",
                "next_token",
                "reverse",
                "order_by",
                "job_version",
                "all_job_versions",
            ],
        ),
        (
            "/api/v1/orchestrator/jobs/{id}/versions",
            &["limit", "next_token", "reverse", "order_by"],
        ),
        (
            "/api/v1/orchestrator/jobs/{id}/history",
            &[
                "since",
                "event_type",
                "execution_id",
                "next_token",
                "limit",
                "job_version",
                "all_job_versions",
            ],
        ),
        (
            "/api/v1/orchestrator/jobs/{id}/logs",
            &["job_version", "all_job_versions"],
        ),
        (
            "/api/v1/orchestrator/nodes",
            &[
                "limit",
                "next_token",
                "reverse",
                "order_by",
                "filter-approval",
                "filter-status",
                "labels",
            ],
        ),
    ];
    for (path, parameters) in wanted {
        let documented = names(path);
        for parameter in parameters {
            assert!(
                documented.iter().any(|d| d == parameter),
                "{path} does not document {parameter}"
            );
        }
    }
    for path in ["/api/v1/agent/authconfig", "/", "/version", "/livez"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is not documented"
        );
    }
}
