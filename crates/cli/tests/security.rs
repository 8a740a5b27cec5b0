//! Private clusters with real processes on loopback: the node join token, API users and their
//! capabilities (the 401/403 matrix), TLS for the API and the node channel with a CA made by
//! the test, and the hash-chained audit log detecting an edit made in the store.

mod common;

use bacalhau_client::{ApiClient, ClientError, ClientOptions, Credentials};
use bacalhau_models::{JobStateType, parse_job_spec};
use common::{ComputeProcess, Server, eventually, free_port, stderr, stdout};
use redb::ReadableTable as _;
use std::path::Path;

fn noop_job(name: &str) -> bacalhau_models::Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nCount: 1\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n   Timeouts: {{QueueTimeout: 600}}\n"
    ))
    .expect("spec")
}

async fn wait_completed(client: &ApiClient, id: &str) {
    common::wait_completed(client, id, 30).await
}

async fn compute_nodes(client: &ApiClient) -> Vec<String> {
    client
        .list_nodes()
        .await
        .expect("nodes")
        .nodes
        .into_iter()
        .filter(|n| n.info.node_type == bacalhau_models::node::NodeType::Compute)
        .map(|n| n.info.node_id.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_wrong_join_token_is_refused_and_one_with_the_right_token_runs_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start_with(
        &dir.path().join("orchestrator"),
        port,
        &[
            "serve",
            "--orchestrator",
            "-c",
            "Orchestrator.Auth.Token=the-right-token",
        ],
    )
    .await;
    let client = server.client();
    let address = format!("127.0.0.1:{port}");
    let intruder = ComputeProcess::start(
        &dir.path().join("intruder"),
        "intruder",
        &address,
        &["-c", "Compute.Auth.Token=a-wrong-token"],
    );
    let no_token = ComputeProcess::start(&dir.path().join("bare"), "bare", &address, &[]);
    let _member = ComputeProcess::start(
        &dir.path().join("member"),
        "member",
        &address,
        &["-c", "Compute.Auth.Token=the-right-token"],
    );
    eventually(30, "the member to join", || async {
        compute_nodes(&client)
            .await
            .contains(&"member".to_string())
            .then_some(())
    })
    .await;
    for (node, process) in [("intruder", &intruder), ("bare", &no_token)] {
        eventually(
            30,
            &format!("{node} to be told why it was refused"),
            || async {
                // Told at least twice: it retried, and was refused again.
                let log = std::fs::read_to_string(&process.log).ok()?;
                (log.matches("refused by the orchestrator: node")
                    .filter(|_| log.contains("presented an invalid join token"))
                    .count()
                    >= 2)
                    .then_some(())
            },
        )
        .await;
    }
    let submitted = client.put_job(&noop_job("joined"), false).await.unwrap();
    wait_completed(&client, &submitted.job_id).await;
    assert_eq!(compute_nodes(&client).await, vec!["member".to_string()]);
    let executions = client
        .job_executions(&submitted.job_id)
        .await
        .unwrap()
        .items;
    assert!(executions.iter().all(|e| e.node_id.as_str() == "member"));
    // Refusals are in the audit log, and the token never is.
    let log = client.audit_log(0, 10_000).await.unwrap().items;
    // Once, though the intruder keeps retrying: the log is not a place for retry noise.
    let refusals = log
        .iter()
        .filter(|e| {
            e.event
                .message
                .contains("intruder refused: invalid join token")
        })
        .count();
    assert_eq!(refusals, 1, "{log:?}");
    let config = serde_json::to_string(&client.config().await.unwrap()).unwrap();
    assert!(!config.contains("the-right-token"), "{config}");
    assert!(!server.logs().contains("the-right-token"));
}

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

/// One API-key user and one Basic user per capability, plus wildcard users; the Basic user of
/// `read:job` has a bcrypt hash, the others plain passwords.
fn users_config(dir: &Path, bcrypt_hash: &str) -> std::path::PathBuf {
    let mut yaml = String::from(
        "API:\n  Auth:\n    Users:\n      - Alias: admin\n        APIKey: admin-key-0123456789abcdef\n        Capabilities: [{Actions: ['*']}]\n      - Alias: reader\n        APIKey: reader-key-0123456789abcdef\n        Capabilities: [{Actions: ['read:*']}]\n",
    );
    for (i, capability) in CAPABILITIES.iter().enumerate() {
        let password = if *capability == "read:job" {
            bcrypt_hash.to_string()
        } else {
            format!("password-{i}-0123456789")
        };
        yaml.push_str(&format!(
            "      - Alias: key{i}\n        APIKey: {}\n        Capabilities: [{{Actions: ['{capability}']}}]\n      - Username: basic{i}\n        Password: '{password}'\n        Capabilities: [{{Actions: ['{capability}']}}]\n",
            api_key(i)
        ));
    }
    let path = dir.join("users.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

const CAPABILITIES: &[&str] = &[
    "read:job",
    "write:job",
    "read:node",
    "write:node",
    "read:agent",
    "write:agent",
];

fn api_key(i: usize) -> String {
    format!("key-{i}-0123456789abcdefghij")
}

fn basic_password(i: usize) -> String {
    if CAPABILITIES[i] == "read:job" {
        "the bcrypt one".to_string()
    } else {
        format!("password-{i}-0123456789")
    }
}

/// Calls one endpoint per capability (`write:agent` has none upstream either) and returns
/// the HTTP status of each: 200 for success, else the error's.
async fn statuses(client: &ApiClient, job_name: &str) -> Vec<(&'static str, u16)> {
    fn status<T>(result: Result<T, ClientError>) -> u16 {
        match result {
            Ok(_) => 200,
            Err(e) => e.status().unwrap_or(0),
        }
    }
    vec![
        (
            "read:job",
            status(client.list_jobs(&Default::default()).await),
        ),
        (
            "write:job",
            status(client.put_job(&noop_job(job_name), true).await),
        ),
        ("read:node", status(client.list_nodes().await)),
        (
            "write:node",
            status(client.update_node("no-such-node", "approve", "").await),
        ),
        ("read:agent", status(client.config().await)),
        ("open", status(client.alive().await)),
        ("open", status(client.version().await)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_capability_lets_through_exactly_its_own_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    // The bcrypt hash comes from our own CLI, as an operator would make it.
    let hash = common::hash_password("the bcrypt one");
    let config = users_config(dir.path(), &hash);
    let server = Server::start_with(
        &dir.path().join("node"),
        free_port(),
        &["serve", "--orchestrator", "-c", config.to_str().unwrap()],
    )
    .await;

    // No credentials: open routes only; the rest 401 in upstream's error JSON.
    for (route, status) in statuses(&server.client(), "anon").await {
        let want = if route == "open" { 200 } else { 401 };
        assert_eq!(status, want, "anonymous {route}");
    }
    let wrong = server.client_with(Some(Credentials::ApiKey("wrong-key-0123456789abc".into())));
    assert_eq!(
        wrong
            .list_jobs(&Default::default())
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    let wrong_password = server.client_with(Some(Credentials::Basic {
        username: "basic0".into(),
        password: "not the bcrypt one".into(),
    }));
    assert_eq!(
        wrong_password
            .list_jobs(&Default::default())
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );

    for (i, capability) in CAPABILITIES.iter().enumerate() {
        let users = [
            (format!("key{i}"), Credentials::ApiKey(api_key(i))),
            (
                format!("basic{i}"),
                Credentials::Basic {
                    username: format!("basic{i}"),
                    password: basic_password(i),
                },
            ),
        ];
        for (name, credentials) in users {
            let client = server.client_with(Some(credentials));
            for (route, status) in statuses(&client, &format!("job-of-{name}")).await {
                let allowed = route == "open" || route == *capability;
                if allowed {
                    assert!(
                        status != 401 && status != 403,
                        "{name} ({capability}) was refused {route}: {status}"
                    );
                } else {
                    assert_eq!(status, 403, "{name} ({capability}) on {route}");
                }
            }
        }
    }
    for (name, key, allows_writes) in [
        ("admin", ADMIN_KEY, true),
        ("reader", "reader-key-0123456789abcdef", false),
    ] {
        let client = server.client_with(Some(Credentials::ApiKey(key.into())));
        for (route, status) in statuses(&client, &format!("job-of-{name}")).await {
            let allowed = route == "open" || route.starts_with("read:") || allows_writes;
            assert_eq!(
                allowed,
                status != 401 && status != 403,
                "{name} on {route}: {status}"
            );
        }
    }

    // The refusal is upstream's error JSON, and the CLI reads credentials as upstream does.
    let refused = server.cli_with_env(
        &["job", "list"],
        &[("BACALHAU_API_KEY", &api_key(1))], // write:job only
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Request Forbidden"),
        "{}",
        stderr(&refused)
    );
    let listed = server.cli_with_env(
        &["job", "list"],
        &[
            ("BACALHAU_API_USERNAME", "basic0"),
            ("BACALHAU_API_PASSWORD", "the bcrypt one"),
        ],
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    let half = server.cli_with_env(&["job", "list"], &[("BACALHAU_API_USERNAME", "basic0")]);
    assert!(
        stderr(&half).contains("BACALHAU_API_USERNAME provided but not BACALHAU_API_PASSWORD"),
        "{}",
        stderr(&half)
    );
    let both = server.cli_with_env(
        &["job", "list"],
        &[
            ("BACALHAU_API_KEY", ADMIN_KEY),
            ("BACALHAU_API_USERNAME", "basic0"),
            ("BACALHAU_API_PASSWORD", "the bcrypt one"),
        ],
    );
    assert!(
        stderr(&both).contains("can't use both"),
        "{}",
        stderr(&both)
    );

    // The history names who submitted; secrets never appear in the agent's config.
    let admin = server.client_with(Some(Credentials::ApiKey(ADMIN_KEY.into())));
    let submitted = admin.put_job(&noop_job("by-admin"), false).await.unwrap();
    let history = admin
        .job_history(&submitted.job_id, "", "", "")
        .await
        .unwrap()
        .items;
    assert_eq!(history[0].actor, "admin", "{history:?}");
    let config = serde_json::to_string(&admin.config().await.unwrap()).unwrap();
    assert!(
        !config.contains(ADMIN_KEY) && !config.contains("$2"),
        "{config}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_node_channel_speak_tls_with_a_ca_made_by_the_test() {
    let dir = tempfile::tempdir().unwrap();
    let made = bacalhau_api::tls::self_signed(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca, &made.ca_pem).unwrap();
    std::fs::write(&cert, &made.cert_pem).unwrap();
    std::fs::write(&key, &made.key_pem).unwrap();
    let port = free_port();
    let cert_arg = format!("API.TLS.CertFile={}", cert.display());
    let key_arg = format!("API.TLS.KeyFile={}", key.display());
    let server = Server::start_full(
        &dir.path().join("orchestrator"),
        port,
        &["serve", "--orchestrator", "-c", &cert_arg, "-c", &key_arg],
        &[],
        Some(&ca),
    )
    .await;
    let ca_arg = format!("Compute.TLS.CACert={}", ca.display());
    let _node = ComputeProcess::start(
        &dir.path().join("node"),
        "tls-node",
        &format!("127.0.0.1:{port}"),
        &["-c", &ca_arg, "-c", "Compute.TLS.RequireTLS=true"],
    );
    let client = server.client();
    eventually(30, "the node to join over wss", || async {
        compute_nodes(&client).await.first().cloned()
    })
    .await;
    let submitted = client.put_job(&noop_job("over-tls"), false).await.unwrap();
    wait_completed(&client, &submitted.job_id).await;

    // The CLI trusts the CA through API.TLS.CAFile (BACALHAU_API_TLS_CAFILE, set by the harness).
    let listed = server.cli(&["job", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("over-tls"));

    // Without the CA the certificate is refused; plain HTTP gets no answer it can read.
    let untrusting = ApiClient::with_options(
        &format!("https://127.0.0.1:{port}"),
        &ClientOptions::default(),
    )
    .unwrap();
    let err = untrusting.alive().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Unreachable { .. }),
        "expected a refused certificate, got {err}"
    );
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let plain = ApiClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    assert!(plain.alive().await.is_err());
    let refused = common::cli_raw(
        &["agent", "alive"],
        &[
            ("BACALHAU_API_HOST", "127.0.0.1"),
            ("BACALHAU_API_PORT", &port.to_string()),
            ("BACALHAU_API_TLS_USETLS", "true"),
        ],
    );
    assert!(!refused.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_an_event_edited_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let port = free_port();
    let args = ["serve", "--orchestrator", "--compute"];
    let mut server = Server::start_with(&data, port, &args).await;
    let client = server.client();
    let first = client.put_job(&noop_job("first"), false).await.unwrap();
    wait_completed(&client, &first.job_id).await;
    let second = client.put_job(&noop_job("second"), false).await.unwrap();
    wait_completed(&client, &second.job_id).await;

    let verified = server.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout(&verified));
    assert!(stdout(&verified).contains("chain intact"));
    let history = server.cli(&["job", "history", &first.job_id, "--verify"]);
    assert!(history.status.success(), "{}", stdout(&history));
    let export = dir.path().join("audit.jsonl");
    let exported = server.cli(&["audit", "export", "--output", export.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["SeqNum"], i as u64 + 1);
        assert!(line["Hash"].as_str().is_some_and(|h| h.len() == 64));
        assert!(line["Actor"].as_str().is_some_and(|a| !a.is_empty()));
    }
    assert_eq!(lines[0]["Actor"], "anonymous");

    // Edit the message of the first job's second event in the store, as someone with the
    // disk could, and restart.
    let target = client
        .job_history(&first.job_id, "", "", "")
        .await
        .unwrap()
        .items[1]
        .seq_num;
    server.kill9();
    let store_file = data.join("orchestrator/orchestrator.redb");
    // What the orchestrator wrote since its last checkpoint is in its redo log beside the
    // file; opening and closing the store applies it, so the edit below lands on the rows.
    drop(bacalhau_orchestrator::store::Store::open(&store_file).unwrap());
    {
        // A job's rows are kept under its number.
        const JOB_NUMBERS: redb::TableDefinition<&str, u64> =
            redb::TableDefinition::new("job_numbers");
        const HISTORY: redb::TableDefinition<(u64, u64), &[u8]> =
            redb::TableDefinition::new("history_by_job");
        let db = redb::Database::open(&store_file).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let number = txn
                .open_table(JOB_NUMBERS)
                .unwrap()
                .get(first.job_id.as_str())
                .unwrap()
                .expect("the job's number")
                .value();
            let mut table = txn.open_table(HISTORY).unwrap();
            let key = (number, target);
            let mut event: serde_json::Value =
                serde_json::from_slice(table.get(key).unwrap().expect("event").value()).unwrap();
            event["Event"]["Message"] = "nothing to see here".into();
            let bytes = serde_json::to_vec(&event).unwrap();
            table.insert(key, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let server = Server::start_with(&data, port, &args).await;
    let broken = server.cli(&["audit", "verify"]);
    assert!(!broken.status.success());
    assert!(
        stdout(&broken).contains(&format!("event {target} was altered")),
        "{}",
        stdout(&broken)
    );
    let history = server.cli(&["job", "history", &first.job_id, "--verify"]);
    assert!(!history.status.success());
    assert!(
        stdout(&history).contains(&format!("event {target} was altered")),
        "{}",
        stdout(&history)
    );
}

/// Every file under `dir`, as bytes, with its path.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path, bytes));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_from_the_node_environment_reaches_the_container_and_nothing_else() {
    const SECRET: &str = "swordfish-7d1c0e";
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start_with(
        &dir.path().join("orchestrator"),
        port,
        &["serve", "--orchestrator"],
    )
    .await;
    let address = format!("127.0.0.1:{port}");
    // Both nodes hold the variable; only the keeper's allow-list lets jobs read it.
    let keeper = ComputeProcess::start_with_env(
        &dir.path().join("keeper"),
        "keeper",
        &address,
        &[
            "-c",
            "Compute.Env.AllowList=SECRET_*",
            "--labels",
            "name=keeper",
        ],
        &[("SECRET_TOKEN", SECRET)],
    );
    let stranger = ComputeProcess::start_with_env(
        &dir.path().join("stranger"),
        "stranger",
        &address,
        &["--labels", "name=stranger"],
        &[("SECRET_TOKEN", SECRET)],
    );
    let client = server.client();
    eventually(30, "both nodes to join", || async {
        (compute_nodes(&client).await.len() == 2).then_some(())
    })
    .await;
    // The container proves it saw the value by printing it reversed, so the value itself never
    // travels back in the job's output.
    let spec = |name: &str, selector: &str| {
        // Queueing would wait for a node that can resolve the variable; the pinned job must
        // fail instead.
        let queue = if selector.is_empty() { 600 } else { 0 };
        parse_job_spec(&format!(
            "Name: {name}\nType: batch\nCount: 1\n{selector}Tasks:\n - Name: main\n   Engine:\n     Type: docker\n     Params: {{Image: 'busybox:1.37.0', Entrypoint: [sh, -c, 'echo \"$TOKEN\" | rev']}}\n   Env: {{TOKEN: 'env:SECRET_TOKEN'}}\n   Timeouts: {{QueueTimeout: {queue}}}\n"
        ))
        .expect("spec")
    };
    let reversed: String = SECRET.chars().rev().collect();
    for i in 0..3 {
        let submitted = client
            .put_job(&spec(&format!("secret-{i}"), ""), false)
            .await
            .unwrap();
        wait_completed(&client, &submitted.job_id).await;
        let executions = client
            .job_executions(&submitted.job_id)
            .await
            .unwrap()
            .items;
        let done: Vec<_> = executions
            .iter()
            .filter(|e| {
                e.compute_state.state_type == bacalhau_models::ExecutionStateType::Completed
            })
            .collect();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].node_id.as_str(), "keeper");
        let stdout = &done[0].run_output.as_ref().expect("run output").stdout;
        assert_eq!(stdout.trim(), reversed);
    }
    // Pinned to the stranger, the job fails and says which variable.
    let pinned = spec(
        "pinned",
        "Constraints: [{Key: name, Operator: '=', Values: [stranger]}]\n",
    );
    let submitted = client.put_job(&pinned, false).await.unwrap();
    let failed = eventually(30, "the pinned job to fail", || async {
        let job = client.get_job(&submitted.job_id, "").await.ok()?.job;
        (job.state.state_type == JobStateType::Failed).then_some(job)
    })
    .await;
    let executions = client
        .job_executions(&submitted.job_id)
        .await
        .unwrap()
        .items;
    let reasons = format!(
        "{} {:?}",
        failed.state.message,
        executions
            .iter()
            .map(|e| &e.compute_state.message)
            .collect::<Vec<_>>()
    );
    assert!(reasons.contains("SECRET_TOKEN"), "{reasons}");

    // Nowhere else: not the orchestrator's files, not its API, not the nodes' logs or stores.
    let mut answers = String::new();
    for job in client.list_jobs(&Default::default()).await.unwrap().items {
        answers.push_str(
            &serde_json::to_string(
                &client
                    .get_job(job.id.as_str(), "history,executions")
                    .await
                    .unwrap(),
            )
            .unwrap(),
        );
        answers.push_str(
            &serde_json::to_string(
                &client
                    .job_history(job.id.as_str(), "", "", "")
                    .await
                    .unwrap()
                    .items,
            )
            .unwrap(),
        );
    }
    answers.push_str(
        &serde_json::to_string(&client.audit_log(0, 10_000).await.unwrap().items).unwrap(),
    );
    answers.push_str(&serde_json::to_string(&client.list_nodes().await.unwrap().nodes).unwrap());
    assert!(answers.contains("env:SECRET_TOKEN"));
    assert!(!answers.contains(SECRET));
    let mut searched = 0;
    for root in [
        server.data_dir.clone(),
        dir.path().join("keeper"),
        dir.path().join("stranger"),
    ] {
        for (path, bytes) in files_under(&root) {
            searched += 1;
            assert!(
                !contains(&bytes, SECRET.as_bytes()),
                "the secret is in {}",
                path.display()
            );
        }
    }
    assert!(searched > 3);
    for log in [&server.log, &keeper.log, &stranger.log] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains(SECRET), "the secret is in {}", log.display());
    }
}
