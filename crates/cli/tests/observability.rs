//! What an operator sees of a running cluster: `/metrics` scraped by a real Prometheus (Debian's
//! `prometheus`, on loopback) behind the API's users, `bacalhau agent metrics`, a compute-only
//! node's own `/metrics`, and JSON log lines that carry job IDs at the level a config file sets.

mod common;

use bacalhau_client::{ApiClient, ClientOptions, Credentials};
use bacalhau_models::parse_job_spec;
use common::{ComputeProcess, Server, eventually, free_port, stdout, wait_completed};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
const SCRAPER_KEY: &str = "scraper-key-0123456789abcdef";
const WRITER_KEY: &str = "writer-key-0123456789abcdef";

fn noop_job(name: &str) -> bacalhau_models::Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nCount: 1\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n"
    ))
    .expect("spec")
}

async fn run_jobs(client: &ApiClient, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let submitted = client
            .put_job(&noop_job(&format!("{prefix}-{i}")), false)
            .await
            .expect("submit");
        ids.push(submitted.job_id);
    }
    for id in &ids {
        wait_completed(client, id, 30).await;
    }
    ids
}

/// A Prometheus server on loopback, stopped when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target_port: u16, bearer: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: bacalhau\n    authorization:\n      type: Bearer\n      credentials: {bearer}\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("Debian's prometheus (scripts/setup-test-env.sh installs it)");
        Prometheus { child, port, log }
    }

    /// The first sample of a PromQL instant query, once there is one.
    async fn query(&self, promql: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let body: serde_json::Value = reqwest::Client::new()
            .get(url)
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_metrics(port: u16, bearer: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("GET /metrics");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_jobs_a_node_completed_with_a_read_agent_credential() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        format!(
            "API:\n  Auth:\n    Users:\n      - Alias: admin\n        APIKey: {ADMIN_KEY}\n        Capabilities: [{{Actions: ['*']}}]\n      - Alias: scraper\n        APIKey: {SCRAPER_KEY}\n        Capabilities: [{{Actions: ['read:agent']}}]\n      - Alias: writer\n        APIKey: {WRITER_KEY}\n        Capabilities: [{{Actions: ['write:job']}}]\n"
        ),
    )
    .unwrap();
    let users = users.display().to_string();
    let port = free_port();
    let server = Server::start_with(
        &dir.path().join("node"),
        port,
        &["serve", "--name", "metered", "-c", &users],
    )
    .await;
    let admin = ApiClient::with_options(
        &format!("http://127.0.0.1:{port}"),
        &ClientOptions {
            credentials: Some(Credentials::ApiKey(ADMIN_KEY.into())),
            ..Default::default()
        },
    )
    .unwrap();
    run_jobs(&admin, "counted", 5).await;

    // Without a credential, or with one lacking read:agent, the figures are refused.
    assert_eq!(get_metrics(port, None).await.0, 401);
    assert_eq!(get_metrics(port, Some(WRITER_KEY)).await.0, 403);
    let (status, text) = get_metrics(port, Some(SCRAPER_KEY)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("bacalhau_jobs{type=\"batch\",state=\"Completed\"} 5"),
        "{text}"
    );
    assert!(
        text.contains(
            "bacalhau_compute_executions_ended_total{node=\"metered\",state=\"Completed\"} 5"
        ),
        "{text}"
    );

    let prometheus = Prometheus::start(dir.path(), port, SCRAPER_KEY);
    let completed = eventually(60, "Prometheus to scrape the completed jobs", || async {
        prometheus
            .query("sum(bacalhau_jobs{state=\"Completed\"})")
            .await
    })
    .await;
    assert_eq!(
        completed,
        5.0,
        "prometheus log:\n{}",
        std::fs::read_to_string(&prometheus.log).unwrap_or_default()
    );
    // A histogram arrives whole: Prometheus reads how many jobs ended and how fast.
    let ended = eventually(30, "the job duration histogram", || async {
        prometheus
            .query("sum(bacalhau_job_duration_seconds_count)")
            .await
    })
    .await;
    assert_eq!(ended, 5.0);

    // The terminal view of the same figures.
    let output = server.cli_with_env(
        &["agent", "metrics", "--filter", "bacalhau_jobs"],
        &[("BACALHAU_API_KEY", SCRAPER_KEY)],
    );
    let table = stdout(&output);
    assert!(
        table
            .lines()
            .any(|line| line.contains("type=batch,state=Completed") && line.ends_with(" 5")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_only_node_serves_its_own_metrics_beside_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("orchestrator")).await;
    let _node = ComputeProcess::start(
        &dir.path().join("worker"),
        "worker",
        &format!("127.0.0.1:{}", server.port),
        &[],
    );
    let client = server.client();
    let address = eventually(30, "the compute node to join", || async {
        let nodes = client.list_nodes().await.ok()?.nodes;
        nodes
            .into_iter()
            .find(|n| n.info.node_id.as_str() == "worker")
            .map(|n| n.info.compute_node_info.address)
            .filter(|a| !a.is_empty())
    })
    .await;
    run_jobs(&client, "remote", 2).await;
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("the node's /metrics")
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "bacalhau_compute_executions_ended_total{node=\"worker\",state=\"Completed\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("bacalhau_compute_capacity{node=\"worker\",resource=\"cpu\"}"),
        "{text}"
    );
    // The orchestrator's figures are the orchestrator's: not on the node.
    assert!(!text.contains("bacalhau_jobs{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_at_the_level_a_config_file_sets_carry_each_jobs_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logging.yaml");
    std::fs::write(&config, "Logging:\n  Level: debug\n  Mode: json\n").unwrap();
    let config = config.display().to_string();
    let server = Server::start_with(
        &dir.path().join("node"),
        free_port(),
        &["serve", "--name", "logged", "-c", &config],
    )
    .await;
    let ids = run_jobs(&server.client(), "logged", 1).await;
    let id = &ids[0];
    let logs = server.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .collect();
    let about_job: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["job_id"] == id.as_str())
        .collect();
    let messages: Vec<&str> = about_job
        .iter()
        .filter_map(|line| line["fields"]["message"].as_str())
        .collect();
    assert!(messages.contains(&"job submitted"), "{messages:?}");
    assert!(messages.contains(&"job ended"), "{messages:?}");
    // Execution events come at debug, with the execution's ID beside the job's.
    assert!(
        about_job.iter().any(|line| line["level"] == "DEBUG"
            && line["fields"]["execution_id"].is_string()
            && line["fields"]["message"] == "Completed successfully"),
        "{about_job:?}"
    );
}

/// The test's OTLP/HTTP receiver (`tests/python/otlp_receiver.py`, decoding with
/// opentelemetry-proto), stopped when dropped.
struct OtlpReceiver {
    child: Child,
    port: u16,
    output: std::path::PathBuf,
}

impl OtlpReceiver {
    async fn start(dir: &Path) -> OtlpReceiver {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup-test-env.sh (it installs opentelemetry-proto)",
            python.display()
        );
        let port_file = dir.join("otlp.port");
        let output = dir.join("otlp.jsonl");
        let child = Command::new(python)
            .arg(root.join("tests/python/otlp_receiver.py"))
            .arg(&port_file)
            .arg(&output)
            .spawn()
            .expect("the OTLP receiver");
        let port = eventually(20, "the OTLP receiver to listen", || async {
            std::fs::read_to_string(&port_file)
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .await;
        OtlpReceiver {
            child,
            port,
            output,
        }
    }

    fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_spans_from_the_orchestrator_and_the_compute_node_form_one_trace() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start(dir.path()).await;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
    ];
    let server = Server::start_with_env(
        &dir.path().join("orchestrator"),
        free_port(),
        &["serve", "--orchestrator", "--name", "traced-orchestrator"],
        &env,
    )
    .await;
    let _node = ComputeProcess::start_with_env(
        &dir.path().join("traced-node"),
        "traced-node",
        &format!("127.0.0.1:{}", server.port),
        &[],
        &env,
    );
    let client = server.client();
    eventually(30, "the compute node to join", || async {
        let nodes = client.list_nodes().await.ok()?.nodes;
        nodes
            .iter()
            .any(|n| n.info.node_id.as_str() == "traced-node")
            .then_some(())
    })
    .await;
    let job = parse_job_spec(
        "Name: traced\nType: batch\nCount: 1\nTasks:\n - Name: main\n   Engine: {Type: noop}\n   Publisher: {Type: local}\n",
    )
    .unwrap();
    let id = client.put_job(&job, false).await.unwrap().job_id;
    wait_completed(&client, &id, 30).await;

    let wanted = [
        "job",
        "submit",
        "evaluation",
        "plan",
        "bid",
        "execution",
        "inputs",
        "run",
        "publish",
    ];
    let spans = eventually(30, "every span of the job at the receiver", || async {
        let spans: Vec<serde_json::Value> = receiver
            .received()
            .into_iter()
            .filter(|s| s["kind"] == "span" && s["attributes"]["bacalhau.job.id"] == id.as_str())
            .collect();
        wanted
            .iter()
            .all(|name| spans.iter().any(|s| s["name"] == *name))
            .then_some(spans)
    })
    .await;
    // One trace, one root, every other span's parent among them: one tree.
    let trace = spans[0]["trace_id"].as_str().unwrap().to_string();
    assert!(
        spans.iter().all(|s| s["trace_id"] == trace.as_str()),
        "{spans:#?}"
    );
    let roots: Vec<_> = spans.iter().filter(|s| s["parent_span_id"] == "").collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    assert_eq!(roots[0]["name"], "job");
    let ids: Vec<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    for span in &spans {
        let parent = span["parent_span_id"].as_str().unwrap();
        assert!(
            parent.is_empty() || ids.contains(&parent),
            "dangling parent: {span:#}"
        );
    }
    let node_of = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["node"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    for name in ["job", "submit", "evaluation", "plan"] {
        assert_eq!(node_of(name), "traced-orchestrator", "{name}");
    }
    for name in ["bid", "execution", "inputs", "run", "publish"] {
        assert_eq!(node_of(name), "traced-node", "{name}");
    }
    // The run and the publish hang under the execution span.
    let execution = spans.iter().find(|s| s["name"] == "execution").unwrap();
    let run = spans.iter().find(|s| s["name"] == "run").unwrap();
    assert_eq!(run["parent_span_id"], execution["span_id"]);

    // Metrics arrive from both processes too.
    eventually(30, "metrics from both processes", || async {
        let metrics: Vec<serde_json::Value> = receiver
            .received()
            .into_iter()
            .filter(|m| m["kind"] == "metric")
            .collect();
        let from = |node: &str, name: &str| {
            metrics
                .iter()
                .any(|m| m["node"] == node && m["name"] == name)
        };
        (from("traced-orchestrator", "bacalhau.jobs")
            && from("traced-node", "bacalhau.compute.executions"))
        .then_some(())
    })
    .await;
}
