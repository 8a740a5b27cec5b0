//! The web UI in a real browser (headless Debian chromium over WebDriver): approve a pending
//! node, submit a Docker job through the Submit page, watch it complete with its output in the
//! live logs, download its result through the link, stop a long job with the button; with API
//! users, nothing without signing in and a read-only user who cannot stop a job. Screenshots
//! of every page land in `target/ui-screenshots/`.

mod common;

use common::webdriver::Browser;
use common::{Server, free_port};
use std::path::PathBuf;
use std::process::Command;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots")
}

fn busybox_present() {
    assert!(
        Command::new("docker")
            .args(["image", "inspect", "busybox:1.37.0"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "busybox:1.37.0 is missing: run scripts/build-test-images.sh"
    );
}

/// The job ID in a Job page's URL.
fn job_id_of(url: &str) -> String {
    url.split("/ui/jobs/")
        .nth(1)
        .and_then(|rest| rest.split(['?', '/', '#']).next())
        .unwrap_or_else(|| panic!("not a job page: {url}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_approves_a_node_runs_a_job_reads_its_logs_downloads_its_result_and_stops_another() {
    busybox_present();
    let dir = tempfile::tempdir().unwrap();
    // Manual approval: the hybrid's own compute node starts pending, for the UI to approve.
    let server = Server::start_with(
        &dir.path().join("node"),
        free_port(),
        &[
            "serve",
            "--name",
            "ui-node",
            "-c",
            "Orchestrator.NodeManager.ManualApproval=true",
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let browser = Browser::start(&screenshots()).await;

    // Nodes: the pending node gets approved with its button.
    browser.goto(&format!("{base}/ui/nodes")).await;
    browser
        .wait_text("#nodes tbody", 20, |t| {
            t.contains("ui-node") && t.contains("PENDING")
        })
        .await;
    browser.screenshot("nodes-pending").await;
    browser
        .click("button[data-node='ui-node'][data-action='approve']")
        .await;
    browser
        .wait_text("#nodes tbody", 10, |t| t.contains("APPROVED"))
        .await;
    browser.screenshot("nodes").await;

    // Submit: a missing image is named beside its field; then the job goes in.
    browser.goto(&format!("{base}/ui/submit")).await;
    browser.screenshot("submit").await;
    browser.click("#docker-details summary").await;
    browser
        .type_into(
            "#docker-command",
            "sh -c 'echo hello from the ui; echo 42 > /outputs/answer.txt'",
        )
        .await;
    browser.click("#docker-form button.primary").await;
    let error = browser.text("#error-image").await;
    assert!(error.contains("Image"), "{error}");
    browser.screenshot("submit-error").await;
    browser.type_into("#docker-image", "busybox:1.37.0").await;
    browser.click("#docker-form input[name=publish]").await;
    browser.click("#docker-form button.primary").await;

    // Job: live state to Completed, stdout in the live logs, the result through its link.
    browser.wait_for("#live", 10).await;
    let job_id = job_id_of(&browser.url().await);
    browser
        .wait_text("#state", 60, |t| t.contains("Completed"))
        .await;
    browser
        .wait_text("#logs", 20, |t| t.contains("hello from the ui"))
        .await;
    browser.screenshot("job").await;
    let href = browser
        .attribute("a.result", "href")
        .await
        .expect("a result link");
    let href = if href.starts_with('/') {
        format!("{base}{href}")
    } else {
        href
    };
    let archive = reqwest::get(&href)
        .await
        .and_then(|r| r.error_for_status())
        .expect("the result downloads")
        .bytes()
        .await
        .unwrap();
    let saved = dir.path().join("result.tar.gz");
    std::fs::write(&saved, &archive).unwrap();
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&saved)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("answer.txt"), "{listing}");
    assert!(listing.contains("stdout"), "{listing}");

    // A long job, stopped with the button.
    browser.goto(&format!("{base}/ui/submit")).await;
    browser
        .type_into(
            "#spec",
            "Name: long\nType: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params: {Image: 'busybox:1.37.0', Entrypoint: [sleep, '300']}\n",
        )
        .await;
    browser.click("#spec-form button.primary").await;
    browser.wait_for("#live", 10).await;
    browser
        .wait_text("#state", 60, |t| t.contains("Running"))
        .await;
    browser.click("#stop").await;
    browser
        .wait_text("#state", 30, |t| t.contains("Stopped"))
        .await;
    browser.screenshot("job-stopped").await;

    // Jobs: both, filterable by state; Audit: the chain verifies and names the UI's actions.
    browser.goto(&format!("{base}/ui/jobs")).await;
    let table = browser.text("#jobs tbody").await;
    assert!(
        table.contains("long") && table.contains(&job_id[..10]),
        "{table}"
    );
    browser.screenshot("jobs").await;
    browser.goto(&format!("{base}/ui/jobs?state=Stopped")).await;
    let stopped = browser.text("#jobs tbody").await;
    assert!(
        stopped.contains("long") && !stopped.contains(&job_id[..10]),
        "{stopped}"
    );
    // On a phone's width the table scrolls inside the page, not the page itself.
    browser.resize(400, 900).await;
    browser.goto(&format!("{base}/ui/jobs")).await;
    let overflow = browser
        .script_async(
            "arguments[arguments.length - 1](document.documentElement.scrollWidth <= window.innerWidth + 1)",
        )
        .await;
    assert_eq!(
        overflow, true,
        "the Jobs page is wider than a narrow screen"
    );
    browser.screenshot("jobs-narrow").await;
    browser.resize(1280, 1000).await;
    browser.goto(&format!("{base}/ui/audit")).await;
    let verdict = browser.text("#verification").await;
    assert!(verdict.contains("Chain verified"), "{verdict}");
    let audit = browser.text("#audit").await;
    assert!(audit.contains("node ui-node: approve"), "{audit}");
    browser.screenshot("audit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_users_every_page_needs_a_sign_in_and_a_reader_cannot_stop_jobs() {
    const ADMIN_KEY: &str = "ui-admin-key-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        format!(
            "API:\n  Auth:\n    Users:\n      - Alias: admin\n        APIKey: {ADMIN_KEY}\n        Capabilities: [{{Actions: ['*']}}]\n      - Username: reader\n        Password: reader-password-1\n        Capabilities: [{{Actions: ['read:*']}}]\n"
        ),
    )
    .unwrap();
    let ui_port = free_port();
    let listen = format!("WebUI.Listen=127.0.0.1:{ui_port}");
    let server = Server::start_with(
        &dir.path().join("node"),
        free_port(),
        &[
            "serve",
            "--orchestrator",
            "-c",
            users.to_str().unwrap(),
            "-c",
            "WebUI.Enabled=true",
            "-c",
            &listen,
        ],
    )
    .await;
    // Upstream's WebUI.Listen serves the same UI (and asks for a sign-in there too).
    let login = reqwest::get(format!("http://127.0.0.1:{ui_port}/ui/jobs"))
        .await
        .expect("the UI listens on WebUI.Listen");
    assert!(
        login.url().path().starts_with("/ui/login"),
        "{}",
        login.url()
    );
    let base = format!("http://127.0.0.1:{}", server.port);
    let admin = server.client_with(Some(bacalhau_client::Credentials::ApiKey(ADMIN_KEY.into())));
    let queued = bacalhau_models::parse_job_spec(
        "Name: waiting\nType: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n   Timeouts: {QueueTimeout: 600}\n",
    )
    .unwrap();
    let job_id = admin.put_job(&queued, false).await.unwrap().job_id;

    let browser = Browser::start(&screenshots()).await;
    for page in [
        "/ui/jobs",
        "/ui/submit",
        "/ui/nodes",
        "/ui/audit",
        &format!("/ui/jobs/{job_id}"),
    ] {
        browser.goto(&format!("{base}{page}")).await;
        let url = browser.url().await;
        assert!(
            url.contains("/ui/login"),
            "{page} opened without signing in: {url}"
        );
    }
    browser.screenshot("login").await;
    // A wrong password is refused on the page.
    browser.type_into("#username", "reader").await;
    browser.type_into("#password", "not-the-password").await;
    browser.click("form.login button").await;
    assert!(browser.text("#login-error").await.contains("not valid"));

    // The reader signs in and lands where they were going: no stop button for them...
    browser.goto(&format!("{base}/ui/jobs/{job_id}")).await;
    browser.type_into("#username", "reader").await;
    browser.type_into("#password", "reader-password-1").await;
    browser.click("form.login button").await;
    browser
        .wait_text("#state", 10, |t| t.contains("Queued"))
        .await;
    assert!(
        browser.find("#stop").await.is_none(),
        "a reader sees the stop button"
    );
    // Nor the pages they may not use.
    let nav = browser.text("header nav").await;
    assert!(nav.contains("Jobs") && nav.contains("Nodes"), "{nav}");
    assert!(!nav.contains("Submit") && !nav.contains("Audit"), "{nav}");
    browser.screenshot("job-as-reader").await;
    // ...and posting the form anyway (with a valid CSRF token) is refused with 403.
    let status = browser
        .script_async(&format!(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('/ui/jobs/{job_id}/stop', {{method: 'POST', body: new URLSearchParams({{csrf}})}})
               .then(r => done(r.status), e => done(String(e)));"
        ))
        .await;
    assert_eq!(status, 403, "{status}");
    let job = admin.get_job(&job_id, "").await.unwrap().job;
    assert_eq!(job.state.state_type, bacalhau_models::JobStateType::Queued);

    // The reader signs out; the admin signs in with the API key and may stop it.
    browser.click("header .who button").await;
    browser.wait_for("#api_key", 10).await;
    browser.goto(&format!("{base}/ui/jobs/{job_id}")).await;
    browser.type_into("#api_key", ADMIN_KEY).await;
    browser.click("form.login button").await;
    browser.click("#stop").await;
    browser
        .wait_text("#state", 20, |t| t.contains("Stopped"))
        .await;
    let history = admin.job_history(&job_id, "", "", "").await.unwrap().items;
    assert!(
        history
            .iter()
            .any(|e| e.actor == "admin" && e.event.message.contains("stop")),
        "{history:?}"
    );
}

/// The points of a chart's first line that stand above its zero line (the plot's bottom is
/// y = 94 in the SVG's own units).
fn raised_points(points: &str) -> usize {
    points
        .split_whitespace()
        .filter_map(|point| point.split_once(',')?.1.parse::<f64>().ok())
        .filter(|y| *y < 94.0)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_page_charts_a_burst_of_jobs_as_it_happens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("node"),
        free_port(),
        &[
            "serve",
            "--name",
            "charted",
            "-c",
            "WebUI.ChartInterval=250ms",
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let browser = Browser::start(&screenshots()).await;
    browser.goto(&format!("{base}/ui/cluster")).await;
    browser
        .wait_text("#chart-nodes figcaption", 20, |t| t.contains("nodes: 1"))
        .await;

    // A burst of jobs while the page is open: its charts follow without a reload.
    let client = server.client();
    let spec = "Type: batch\nCount: 1\nTasks:\n - Name: main\n   Engine: {Type: noop}\n";
    let mut ids = Vec::new();
    for i in 0..40 {
        let job = bacalhau_models::parse_job_spec(&format!("Name: burst-{i}\n{spec}")).unwrap();
        ids.push(client.put_job(&job, false).await.unwrap().job_id);
    }
    for id in &ids {
        common::wait_completed(&client, id, 30).await;
    }
    let before = browser.url().await;
    let mut raised = 0;
    for _ in 0..100 {
        let points = browser
            .attribute("#chart-completed polyline", "points")
            .await
            .unwrap_or_default();
        raised = raised_points(&points);
        if raised > 0 && browser.find("#chart-latency polyline.a").await.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(raised > 0, "the completed-jobs chart never rose above zero");
    assert_eq!(browser.url().await, before, "the page was not reloaded");
    let latency = browser.text("#chart-latency figcaption").await;
    assert!(
        latency.contains("p50: ") && latency.contains(" ms"),
        "{latency}"
    );
    browser.screenshot("cluster-charts").await;

    // The node's own page charts its capacity use.
    browser.goto(&format!("{base}/ui/nodes/charted")).await;
    browser.wait_for("#chart-capacity svg", 10).await;
    let points = browser.attribute("#chart-capacity", "data-points").await;
    assert!(
        points.and_then(|p| p.parse::<u32>().ok()).unwrap_or(0) > 0,
        "no capacity samples for the node"
    );
    browser.screenshot("node-charts").await;
}
