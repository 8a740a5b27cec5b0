use super::*;
use crate::client::{ApiClient, ListJobsOptions};
use bacalhau_models::{JobStateType, parse_job_spec};
use bacalhau_orchestrator::OrchestratorConfig;
use std::time::{Duration, Instant};

struct Harness {
    client: ApiClient,
    base: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = Orchestrator::start(OrchestratorConfig {
        data_dir: dir.path().to_path_buf(),
        job_defaults: Default::default(),
        workers: 2,
        nodes: Default::default(),
    })
    .await
    .unwrap();
    let state = Arc::new(AppState {
        orchestrator: Arc::new(orchestrator),
        node_info: NodeInfo::default(),
        config: serde_json::json!({}),
        version: BuildVersionInfo {
            git_version: "v0.0.0-test".into(),
            ..Default::default()
        },
        auth: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    Harness {
        client: ApiClient::new(&base).unwrap(),
        base,
        _dir: dir,
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
