//! Drop-in compatibility with upstream v1.9, as its users would try it: every config key,
//! switches written cobra's way, job specs as templates, upstream's inline WASM layout, HTTP
//! networking from the CLI, GPUs found by `nvidia-smi`, private registries with the node's
//! credentials, and two nodes on one host with default settings.

mod common;

use base64::Engine as _;
use common::{ComputeProcess, Server, cli_raw, eventually, free_port, stderr, stdout};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Upstream's keys we accept without acting on them. When one gets built, it leaves this list.
const UNUSED_UPSTREAM_KEYS: &[&str] = &[
    "API.Auth.AccessPolicyPath",
    "API.Auth.Methods",
    "API.Auth.Oauth2.Audience",
    "API.Auth.Oauth2.DeviceAuthorizationEndpoint",
    "API.Auth.Oauth2.DeviceClientID",
    "API.Auth.Oauth2.Issuer",
    "API.Auth.Oauth2.JWKSUri",
    "API.Auth.Oauth2.PollingInterval",
    "API.Auth.Oauth2.ProviderID",
    "API.Auth.Oauth2.ProviderName",
    "API.Auth.Oauth2.Scopes",
    "API.Auth.Oauth2.TokenEndpoint",
    "API.TLS.AutoCert",
    "API.TLS.AutoCertCachePath",
    "Compute.Heartbeat.InfoUpdateInterval",
    "Compute.Heartbeat.ResourceUpdateInterval",
    "Compute.Network.AdvertisedAddress",
    "Engines.Types.Docker.ManifestCache.Refresh",
    "Engines.Types.Docker.ManifestCache.Size",
    "Engines.Types.Docker.ManifestCache.TTL",
    "InputSources.Types.IPFS.Endpoint",
    "JobAdmissionControl.Locality",
    "JobAdmissionControl.ProbeExec",
    "JobAdmissionControl.ProbeHTTP",
    "JobAdmissionControl.RejectStatelessJobs",
    "Logging.LogDebugInfoInterval",
    "Orchestrator.Advertise",
    "Orchestrator.EvaluationBroker.MaxRetryCount",
    "Orchestrator.EvaluationBroker.VisibilityTimeout",
    "Orchestrator.Host",
    "Orchestrator.Port",
    "Orchestrator.Scheduler.HousekeepingInterval",
    "Orchestrator.Scheduler.HousekeepingTimeout",
    "Orchestrator.Scheduler.QueueBackoff",
    "Orchestrator.SupportReverseProxy",
    "Orchestrator.TLS.CACert",
    "Orchestrator.TLS.ServerCert",
    "Orchestrator.TLS.ServerKey",
    "Orchestrator.TLS.ServerTimeout",
    "Publishers.Types.IPFS.Endpoint",
    "Publishers.Types.S3.PreSignedURLDisabled",
    "Publishers.Types.S3.PreSignedURLExpiration",
    "Publishers.Types.S3Managed.Bucket",
    "Publishers.Types.S3Managed.Endpoint",
    "Publishers.Types.S3Managed.Key",
    "Publishers.Types.S3Managed.PreSignedURLExpiration",
    "Publishers.Types.S3Managed.Region",
    "ResultDownloaders.Disabled",
    "ResultDownloaders.Types.IPFS.Endpoint",
    "StrictVersionMatch",
    "UpdateConfig.Interval",
    "WebUI.Backend",
];

/// Upstream's keys and kinds (`tests/data/upstream-config-keys.tsv`).
fn upstream_keys() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-config-keys.tsv");
    std::fs::read_to_string(path)
        .expect("the upstream key list")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, kind) = line.split_once('\t').expect("key<TAB>kind");
            (key.to_string(), kind.to_string())
        })
        .collect()
}

/// Sets `path` in a JSON tree, making the sections on the way.
fn put(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        node = node
            .as_object_mut()
            .expect("a section")
            .entry(part.to_string())
            .or_insert_with(|| json!({}));
    }
    node.as_object_mut()
        .expect("a section")
        .insert(parts[parts.len() - 1].to_string(), value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_config_key_loads_and_the_unused_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("node");
    let keys = upstream_keys();
    assert_eq!(keys.len(), 130, "upstream v1.9 has 130 keys");
    // A value of the right kind for every key; keys whose value changes what the node does get
    // a working one.
    let mut tree = json!({});
    for (key, kind) in &keys {
        let value = match kind.as_str() {
            "string" => json!(""),
            "int" => json!(1),
            "bool" => json!(false),
            "duration" => json!("1m0s"),
            "stringlist" => json!([]),
            "map" => json!({}),
            _ => json!(null),
        };
        put(&mut tree, key, value);
    }
    for (key, value) in [
        ("API.Host", json!("127.0.0.1")),
        ("API.Port", json!(port)),
        ("API.Auth.Users", json!([])),
        (
            "API.Auth.Methods",
            json!({"ClientKey": {"Type": "challenge"}}),
        ),
        ("API.TLS.AutoCert", json!("node.example.org")),
        ("Compute.AllocatedCapacity.CPU", json!("80%")),
        ("Compute.AllocatedCapacity.Memory", json!("80%")),
        ("Compute.AllocatedCapacity.Disk", json!("80%")),
        ("Compute.AllocatedCapacity.GPU", json!("100%")),
        ("Compute.Auth.Token", json!("join-secret")),
        ("Orchestrator.Auth.Token", json!("join-secret")),
        ("Compute.Enabled", json!(true)),
        ("Orchestrator.Enabled", json!(true)),
        ("Compute.Heartbeat.Interval", json!("100ms")),
        ("Compute.Network.PortRangeStart", json!(20000)),
        ("Compute.Network.PortRangeEnd", json!(32000)),
        ("Compute.Orchestrators", json!(["nats://127.0.0.1:4222"])),
        ("DataDir", json!(data)),
        ("Labels", json!({"zone": "compat"})),
        ("Logging.Level", json!("info")),
        ("Logging.Mode", json!("default")),
        ("NameProvider", json!("puuid")),
        ("Orchestrator.Host", json!("0.0.0.0")),
        ("Orchestrator.Port", json!(4222)),
        ("Orchestrator.Scheduler.WorkerCount", json!(8)),
        ("JobAdmissionControl.Locality", json!("anywhere")),
        ("JobDefaults.Batch.Task.Resources.CPU", json!("100m")),
        ("JobDefaults.Batch.Task.Resources.Memory", json!("64Mb")),
        (
            "JobDefaults.Batch.Task.Timeouts.ExecutionTimeout",
            json!("5m"),
        ),
        ("JobDefaults.Batch.Task.Timeouts.TotalTimeout", json!("10m")),
        ("Publishers.Types.Local.Address", json!("127.0.0.1")),
        ("Publishers.Types.Local.Port", json!(0)),
        ("ResultDownloaders.Timeout", json!("5m")),
        ("WebUI.Listen", json!("127.0.0.1:0")),
    ] {
        put(&mut tree, key, value);
    }
    let file = dir.path().join("upstream.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(&tree).unwrap()).unwrap();
    let server = Server::start_with(&data, port, &["-c", file.to_str().unwrap(), "serve"]).await;
    let client = server.client();
    eventually(30, "the hybrid node to connect", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            nodes
                .iter()
                .any(|n| {
                    n.connection_state.status == bacalhau_models::node::ConnectionStatus::Connected
                })
                .then_some(())
        }
    })
    .await;
    let run = server.cli(&[
        "docker",
        "run",
        "busybox:1.37.0",
        "--",
        "echo",
        "configured",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));

    let log = server.logs();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("accepted but not used"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning at start:\n{log}");
    let named: Vec<&str> = keys
        .iter()
        .map(|(key, _)| key.as_str())
        .filter(|key| warnings[0].contains(&format!(" {key} (")))
        .collect();
    assert_eq!(
        named, UNUSED_UPSTREAM_KEYS,
        "the warning names exactly the unused keys"
    );
    assert!(!log.contains("unknown config key"), "{log}");
}

#[test]
fn unknown_keys_warn_with_a_suggestion_and_wrong_kinds_fail() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "Compute:\n  Heartbeat:\n    Intervall: 5s\nAPI:\n  Port: 4321\n",
    )
    .unwrap();
    let shown = cli_raw(&["-c", typo.to_str().unwrap(), "config", "show"], &[]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        stderr(&shown).contains("did you mean Compute.Heartbeat.Interval?"),
        "{}",
        stderr(&shown)
    );
    assert!(stdout(&shown).contains("Port: 4321"), "{}", stdout(&shown));

    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(&wrong, "API:\n  Port: lots\n").unwrap();
    let refused = cli_raw(&["-c", wrong.to_str().unwrap(), "config", "show"], &[]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("API.Port")
            && message.contains("lots")
            && message.contains("whole number"),
        "{message}"
    );

    let env = cli_raw(
        &["config", "show"],
        &[("BACALHAU_COMPUTE_HEARTBEAT_INTERVAL", "soon")],
    );
    assert!(!env.status.success());
    assert!(
        stderr(&env).contains("BACALHAU_COMPUTE_HEARTBEAT_INTERVAL"),
        "{}",
        stderr(&env)
    );

    // Both forms of `config set`, and `config list` naming unused keys.
    let home = dir.path().join("home");
    let config = home.join(".bacalhau/config.yaml");
    let in_home = |args: &[&str]| {
        Command::new(common::binary())
            .args(args)
            .env("HOME", &home)
            .output()
            .expect("run bacalhau")
    };
    let set = in_home(&["config", "set", "API.Port=4322"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let set = in_home(&["config", "set", "Compute.Orchestrators", "a:1,b:2"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("Port: 4322") && written.contains("a:1"),
        "{written}"
    );
    let list = in_home(&["config", "list", "--output", "csv"]);
    let list = stdout(&list);
    assert!(list.contains("API.Port,4322,"), "{list}");
    assert!(list.contains("Orchestrator.Cluster.Peers,,"), "{list}");
    assert!(list.contains("accepted, not used"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_and_templates_as_upstream_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "compat-cli").await;

    // `--wait` takes no value: the image after it is the image.
    let waited = server.cli(&[
        "docker",
        "run",
        "--wait",
        "busybox:1.37.0",
        "--",
        "echo",
        "hi",
    ]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    assert!(stdout(&waited).contains("hi"), "{}", stdout(&waited));
    let quick = server.cli(&[
        "docker",
        "run",
        "--wait=false",
        "--id-only",
        "busybox:1.37.0",
        "--",
        "echo",
        "later",
    ]);
    assert!(quick.status.success(), "{}", stderr(&quick));
    assert!(
        stdout(&quick).trim().starts_with("j-"),
        "{}",
        stdout(&quick)
    );
    let followed = server.cli(&[
        "docker",
        "run",
        "-f",
        "busybox:1.37.0",
        "--",
        "echo",
        "streamed",
    ]);
    assert!(
        stdout(&followed).contains("streamed"),
        "{}",
        stdout(&followed)
    );

    // Templates: -V, -E, a missing variable, --no-template.
    let spec = dir.path().join("template.yaml");
    std::fs::write(
        &spec,
        "Name: {{.name}}\nType: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n        Image: busybox:1.37.0\n        Parameters: [echo, \"{{.greeting}} from {{.APP_PLACE}}\"]\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let rendered = server.cli_with_env(
        &[
            "job",
            "run",
            "-V",
            "name=templated",
            "-V",
            "greeting=hello",
            "-E",
            "^APP_",
            spec,
        ],
        &[("APP_PLACE", "the environment")],
    );
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    assert!(
        stdout(&rendered).contains("hello from the environment"),
        "{}",
        stdout(&rendered)
    );
    let job = server.client().get_job("templated", "").await.unwrap().job;
    assert_eq!(job.name, "templated");
    let missing = server.cli(&["job", "run", "-V", "name=x", spec]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("\"greeting\""),
        "{}",
        stderr(&missing)
    );
    let literal = dir.path().join("literal.yaml");
    std::fs::write(
        &literal,
        "Name: literal\nType: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n        Image: busybox:1.37.0\n        Parameters: [echo, \"{{.kept}}\"]\n",
    )
    .unwrap();
    let kept = server.cli(&["job", "run", "--no-template", literal.to_str().unwrap()]);
    assert!(kept.status.success(), "{}", stderr(&kept));
    assert!(stdout(&kept).contains("{{.kept}}"), "{}", stdout(&kept));

    // `job validate`, and `job run --dry-run` showing the server's diff.
    let valid = server.cli(&[
        "job",
        "validate",
        "-V",
        "name=v",
        "-V",
        "greeting=g",
        "-V",
        "APP_PLACE=here",
        spec,
    ]);
    assert!(
        stdout(&valid).contains("OK"),
        "{}{}",
        stdout(&valid),
        stderr(&valid)
    );
    let diff = server.cli_with_env(
        &[
            "job",
            "run",
            "--dry-run",
            "-V",
            "name=templated",
            "-V",
            "greeting=bye",
            "-E",
            "^APP_",
            spec,
        ],
        &[("APP_PLACE", "the environment")],
    );
    assert!(diff.status.success(), "{}", stderr(&diff));
    assert!(
        stdout(&diff).contains("bye"),
        "the diff shows the change:\n{}",
        stdout(&diff)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_inline_wasm_layout_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "compat-wasm").await;
    // As upstream's testdata/jobs/wasm.yaml writes it: the module's base64 over two lines.
    let encoded = base64::engine::general_purpose::STANDARD.encode(common::wasm_binary("noop"));
    let cut = (encoded.len() / 2) / 4 * 4;
    let spec = format!(
        "Name: Wasm Job\nType: batch\nCount: 1\nTasks:\n  - Name: main\n    Engine:\n      Type: wasm\n      Params:\n        EntryModule: /module.wasm\n    InputSources:\n      - Target: /module.wasm\n        Source:\n          Type: inline\n          Params:\n            URL: |-\n              data:application/wasm;base64,{}\n              {}\n",
        &encoded[..cut],
        &encoded[cut..]
    );
    let run = server.cli_with_stdin(&["job", "run"], Some(&spec));
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(stdout(&run).contains("Hello, world!"), "{}", stdout(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_networking_from_the_cli_reaches_only_its_domains() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::FileServer::start(vec![("hello.txt".into(), b"via the proxy".to_vec())]);
    let port = files.url.rsplit(':').next().unwrap().to_string();
    let server = Server::hybrid(dir.path(), "compat-http").await;
    let script = format!(
        "wget -q -O- http://localhost:{port}/hello.txt; echo; wget -q -O- http://127.0.0.1:{port}/hello.txt 2>&1 || echo refused-by-name"
    );
    let run = server.cli(&[
        "docker",
        "run",
        "--network",
        "http",
        "--domain",
        "localhost",
        "busybox:1.37.0",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let out = stdout(&run);
    assert!(out.contains("via the proxy"), "{out}");
    assert!(out.contains("refused-by-name"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_job_goes_to_the_node_whose_nvidia_smi_shows_one() {
    let dir = tempfile::tempdir().unwrap();
    // A recorded `nvidia-smi` on the GPU node's PATH only.
    let tools = dir.path().join("gpu-tools");
    std::fs::create_dir_all(&tools).unwrap();
    let fake = tools.join("nvidia-smi");
    std::fs::write(
        &fake,
        "#!/bin/sh\nprintf '0, NVIDIA GeForce RTX 3090, 24576\\n1, NVIDIA A100-PCIE-40GB, 40960\\n'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let port = free_port();
    let server = Server::start_on(&dir.path().join("orchestrator"), port).await;
    let orchestrator = format!("127.0.0.1:{port}");
    let _plain = ComputeProcess::start(&dir.path().join("plain"), "plain", &orchestrator, &[]);
    let _gpu = ComputeProcess::start_with_env(
        &dir.path().join("gpu"),
        "gpu-node",
        &orchestrator,
        &[],
        &[("PATH", &path)],
    );
    let client = server.client();
    let gpu_node = eventually(30, "both nodes, one with GPUs", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            let connected = nodes
                .iter()
                .filter(|n| {
                    n.connection_state.status == bacalhau_models::node::ConnectionStatus::Connected
                })
                .count();
            let gpu = nodes
                .into_iter()
                .find(|n| n.info.node_id.as_str() == "gpu-node")?;
            (connected == 2).then_some(gpu)
        }
    })
    .await;
    let compute = &gpu_node.info.compute_node_info;
    assert_eq!(compute.max_capacity.gpu, 2);
    assert_eq!(compute.max_capacity.gpus[1].name, "NVIDIA A100-PCIE-40GB");
    let labels = &gpu_node.info.labels;
    assert_eq!(
        labels.get("GPU-0").map(String::as_str),
        Some("NVIDIA-GeForce-RTX-3090")
    );
    assert_eq!(
        labels.get("GPU-1-Memory").map(String::as_str),
        Some("40960-MiB")
    );
    assert_eq!(labels.get("os_type").map(String::as_str), Some("linux"));

    // No GPU here: Docker is asked for one and says it cannot, on the GPU node.
    let run = server.cli(&[
        "docker",
        "run",
        "--id-only",
        "--gpu",
        "1",
        "busybox:1.37.0",
        "--",
        "true",
    ]);
    let id = stdout(&run).trim().to_string();
    let executions = client.job_executions(&id).await.unwrap().items;
    assert!(!executions.is_empty(), "{}", stderr(&run));
    assert!(
        executions.iter().all(|e| e.node_id.as_str() == "gpu-node"),
        "{executions:?}"
    );
    let job = client.get_job(&id, "").await.unwrap().job;
    let reason = format!("{} {}", job.state.message, stderr(&run)).to_lowercase();
    assert!(
        reason.contains("device driver \"nvidia\"") && reason.contains("[[gpu]]"),
        "Docker was asked for an NVIDIA GPU: {reason}"
    );
}

/// Runs a command and fails the test, with its output, if it fails.
fn sh(command: &mut Command) -> String {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_is_pulled_with_the_nodes_credentials_only() {
    let dir = tempfile::tempdir().unwrap();
    let registry_bin = "/usr/bin/docker-registry";
    assert!(
        Path::new(registry_bin).exists(),
        "{registry_bin} is missing: run scripts/setup-test-env.sh"
    );
    // Debian's registry on loopback with one htpasswd user (bcrypt from our own CLI).
    let hash = common::hash_password("registry-secret");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("builder:{hash}")).unwrap();
    let port = free_port();
    let config = dir.path().join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.path().join("blobs").display(),
            htpasswd.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    let mut registry = Command::new(registry_bin)
        .args(["serve", config.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start docker-registry");
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v2/");
    eventually(30, "the registry to answer", || {
        let request = http.get(&url).send();
        async move { request.await.ok().filter(|r| r.status().as_u16() == 401) }
    })
    .await;

    // Push a private image, then drop it from the engine so a job must pull it.
    let logins = dir.path().join("docker-config");
    std::fs::create_dir_all(&logins).unwrap();
    let registry_host = format!("127.0.0.1:{port}");
    let image = format!("{registry_host}/private/busybox:1.37.0");
    let docker = |args: &[&str]| {
        let mut command = Command::new("docker");
        command.env("DOCKER_CONFIG", &logins).args(args);
        command
    };
    sh(
        docker(&["login", &registry_host, "-u", "builder", "--password-stdin"]).stdin(
            std::fs::File::open({
                let secret = dir.path().join("secret");
                std::fs::write(&secret, "registry-secret").unwrap();
                secret
            })
            .unwrap(),
        ),
    );
    sh(&mut docker(&["tag", "busybox:1.37.0", &image]));
    sh(&mut docker(&["push", &image]));
    sh(&mut docker(&["rmi", &image]));

    // A node without credentials fails clearly; one with the login runs the job.
    let anonymous = Server::hybrid(dir.path(), "registry-anonymous").await;
    let refused = anonymous.cli(&["docker", "run", &image, "--", "echo", "pulled"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&format!("no credentials for {registry_host}")),
        "{}",
        stderr(&refused)
    );
    drop(anonymous);
    let logged_in = Server::start_with_env(
        &dir.path().join("registry-node"),
        free_port(),
        &["serve", "--name", "registry-node"],
        &[("DOCKER_CONFIG", logins.to_str().unwrap())],
    )
    .await;
    let pulled = logged_in.cli(&["docker", "run", &image, "--", "echo", "pulled"]);
    let _ = Command::new("docker").args(["rmi", &image]).output();
    let _ = registry.kill();
    let _ = registry.wait();
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert!(stdout(&pulled).contains("pulled"), "{}", stdout(&pulled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hybrid_nodes_on_one_host_with_default_publisher_ports() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for name in ["first", "second"] {
        let port = free_port();
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        // Not the harness's `Publishers.Types.Local.Port=0`: both want the default port.
        let log = data.with_extension("log");
        let child = Command::new(common::binary())
            .args([
                "serve",
                "--name",
                name,
                "--api-host",
                "127.0.0.1",
                "--api-port",
            ])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&data)
            .env("HOME", &data)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("serve");
        nodes.push((child, port, data));
    }
    for (_, port, data) in &nodes {
        let env = [
            ("BACALHAU_API_HOST", "127.0.0.1"),
            ("BACALHAU_API_PORT", &port.to_string()),
            ("HOME", data.to_str().unwrap()),
        ];
        let client = bacalhau_client::ApiClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        eventually(30, "the node to connect", || {
            let client = client.clone();
            async move {
                let nodes = client.list_nodes().await.ok()?.nodes;
                nodes
                    .iter()
                    .any(|n| {
                        n.connection_state.status
                            == bacalhau_models::node::ConnectionStatus::Connected
                    })
                    .then_some(())
            }
        })
        .await;
        let run = cli_raw(
            &[
                "docker",
                "run",
                "--id-only",
                "-o",
                "out:/out",
                "-p",
                "local",
                "busybox:1.37.0",
                "--",
                "sh",
                "-c",
                "echo published > /out/f.txt",
            ],
            &env,
        );
        assert!(run.status.success(), "{}", stderr(&run));
        let id = stdout(&run).trim().to_string();
        let results = data.join("results");
        let got = cli_raw(
            &["job", "get", &id, "--output-dir", results.to_str().unwrap()],
            &env,
        );
        assert!(got.status.success(), "{}", stderr(&got));
        assert_eq!(
            std::fs::read_to_string(results.join("out/f.txt")).unwrap_or_default(),
            "published\n"
        );
    }
    // Both asked for 6001; at least one was told it is taken and said so.
    let first_err = std::fs::read_to_string(dir.path().join("first.err")).unwrap_or_default();
    let second_err = std::fs::read_to_string(dir.path().join("second.err")).unwrap_or_default();
    assert!(
        format!("{first_err}{second_err}").contains("port 6001 of the local publisher is taken"),
        "one node says it took another port:\n{first_err}\n{second_err}"
    );
    for (mut child, _, _) in nodes {
        let _ = child.kill();
        let _ = child.wait();
    }
}
