//! Keyed by content, end to end: the result cache (a second identical WASM job completes with
//! no node running it; a changed input byte or parameter misses; a secret's value is in no
//! record), lineage through a pipeline (URL → job 1 → CID → job 2 → CID → job 3) in the CLI,
//! the API and the audit log, and verified re-execution on three nodes (agreement completes,
//! one odd node fails the job naming it).

mod common;

use bacalhau_models::JobStateType;
use bacalhau_models::lineage::LineageNode;
use base64::Engine as _;
use common::{ComputeProcess, FileServer, Server, eventually, run_ok, stderr};
use serde_json::{Value, json};
use std::path::Path;

/// A batch job running `cat.wat` on `/data/in.txt`, read from `input`, publishing to IPFS.
fn cat_job(input: Value, env: Value) -> Value {
    let module = base64::engine::general_purpose::STANDARD.encode(common::wasm_binary("cat"));
    json!({
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {
                "EntryModule": "/module/cat.wasm",
                "Parameters": ["/data/in.txt"],
            }},
            "Env": env,
            "InputSources": [
                {"Target": "/module/cat.wasm", "Source": {"Type": "inline", "Params": {
                    "URL": format!("data:application/wasm;base64,{module}")}}},
                {"Target": "/data/in.txt", "Source": input},
            ],
            "Publisher": {"Type": "ipfs"},
        }],
    })
}

fn inline(text: &str) -> Value {
    json!({"Type": "inline", "Params": {"URL": format!("data:,{text}")}})
}

/// Submits `spec` with `job run --id-only` plus `flags`; returns the job ID.
fn submit(server: &Server, dir: &Path, spec: &Value, flags: &[&str]) -> String {
    let file = dir.join(format!("spec-{}.json", common::free_port()));
    std::fs::write(&file, spec.to_string()).unwrap();
    let mut args = vec!["job", "run", "--id-only"];
    args.extend_from_slice(flags);
    args.push(file.to_str().unwrap());
    run_ok(server, &args).trim().to_string()
}

/// The node's own count of executions it finished, from its `/metrics`.
async fn executions_run_by_nodes(server: &Server) -> u64 {
    let text = server.client().metrics().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("bacalhau_compute_executions_ended_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Everything under `dir`'s files, for `job get`'s output.
fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_identical_job_is_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "hunter2-never-stored";
    let server = Server::start_with_env(
        &dir.path().join("cache-node"),
        common::free_port(),
        &[
            "-c",
            "Compute.Env.AllowList=TOKEN",
            "serve",
            "--name",
            "cache-node",
        ],
        &[("TOKEN", secret)],
    )
    .await;
    let client = server.client();
    let spec = cat_job(inline("hello%20cache"), json!({"TOKEN": "env:TOKEN"}));

    let first = submit(&server, dir.path(), &spec, &["--cache"]);
    common::wait_completed(&client, &first, 60).await;
    assert_eq!(executions_run_by_nodes(&server).await, 1);
    let ran = client.job_executions(&first).await.unwrap().items;
    let key = ran[0].compute_state.details["ContentKey"].clone();
    assert_eq!(key.len(), 64, "{:?}", ran[0].compute_state.details);

    // The same job again: completed by the submission itself, no node runs it.
    let second = submit(&server, dir.path(), &spec, &["--cache"]);
    let job = client.get_job(&second, "").await.unwrap().job;
    assert_eq!(job.state.state_type, JobStateType::Completed);
    assert_eq!(
        executions_run_by_nodes(&server).await,
        1,
        "the node ran nothing more"
    );
    let served = client.job_executions(&second).await.unwrap().items;
    assert_eq!(served.len(), 1);
    assert_eq!(
        served[0].compute_state.details["CachedFrom"],
        format!("{first}/{}", ran[0].id)
    );
    let history = client.job_history(&second, "", "", "").await.unwrap().items;
    assert!(
        history.iter().any(|e| e.event.message
            == format!(
                "Served from the cache of job {first}, execution {}",
                ran[0].id
            )),
        "{history:#?}"
    );
    assert!(
        !history
            .iter()
            .any(|e| e.event.message.contains("Accepted by the node")),
        "{history:#?}"
    );
    let described = run_ok(&server, &["job", "describe", &second]);
    assert!(described.contains("Cache: hit"), "{described}");
    // A third hit still names the run that computed the result.
    let third = submit(&server, dir.path(), &spec, &["--cache"]);
    let served = client.job_executions(&third).await.unwrap().items;
    assert_eq!(
        served[0].compute_state.details["CachedFrom"],
        format!("{first}/{}", ran[0].id)
    );

    // `job get` returns the same bytes for both.
    let get = |id: &str, to: &str| {
        let out = dir.path().join(to);
        run_ok(
            &server,
            &["job", "get", id, "--output-dir", out.to_str().unwrap()],
        );
        tree_bytes(&out)
    };
    let a = get(&first, "get-first");
    let b = get(&second, "get-second");
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert!(a.iter().any(|(_, bytes)| bytes == b"hello cache"), "{a:?}");

    // One input byte, or one parameter, changed: a miss, and the node runs it.
    let byte = submit(
        &server,
        dir.path(),
        &cat_job(inline("hello%20cachf"), json!({"TOKEN": "env:TOKEN"})),
        &["--cache"],
    );
    common::wait_completed(&client, &byte, 60).await;
    assert_eq!(executions_run_by_nodes(&server).await, 2);
    let mut param = spec.clone();
    param["Tasks"][0]["Engine"]["Params"]["Parameters"] = json!(["/data/in.txt", "/data/in.txt"]);
    let param = submit(&server, dir.path(), &param, &["--cache"]);
    common::wait_completed(&client, &param, 60).await;
    assert_eq!(executions_run_by_nodes(&server).await, 3);
    for id in [&byte, &param] {
        let executions = client.job_executions(id).await.unwrap().items;
        assert!(
            !executions[0]
                .compute_state
                .details
                .contains_key("CachedFrom"),
            "{id} missed"
        );
        assert_ne!(executions[0].compute_state.details["ContentKey"], key);
    }

    // Without --cache the same spec runs.
    let uncached = submit(&server, dir.path(), &spec, &[]);
    common::wait_completed(&client, &uncached, 60).await;
    assert_eq!(executions_run_by_nodes(&server).await, 4);

    // Hits and misses are counted.
    let metrics = client.metrics().await.unwrap();
    assert!(
        metrics.contains("bacalhau_cache_lookups_total{result=\"hit\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bacalhau_cache_lookups_total{result=\"miss\"} 3"),
        "{metrics}"
    );

    // The secret's value is in no answer of the API and nowhere in the store.
    for id in [&first, &second] {
        let job = serde_json::to_string(&client.get_job(id, "").await.unwrap()).unwrap();
        let executions = serde_json::to_string(&client.job_executions(id).await.unwrap()).unwrap();
        let history =
            serde_json::to_string(&client.job_history(id, "", "", "").await.unwrap()).unwrap();
        for text in [job, executions, history] {
            assert!(!text.contains(secret));
        }
    }
    drop(server);
    // The node's own records: executions of the jobs it ran, none of the ones served. The
    // server was killed, so the store is opened as the node would open it again (its redo
    // log applied), not read raw.
    {
        let store = bacalhau_compute::store::NodeStore::open(
            &dir.path().join("cache-node/compute/compute.redb"),
        )
        .unwrap();
        let mut ran: Vec<String> = store
            .executions()
            .unwrap()
            .into_iter()
            .map(|local| local.execution.job_id.to_string())
            .collect();
        ran.sort();
        let mut expected = vec![first.clone(), byte.clone(), param.clone(), uncached.clone()];
        expected.sort();
        assert_eq!(ran, expected, "the node ran exactly the jobs not served");
    }
    let mut found = Vec::new();
    let mut stack = vec![dir.path().join("cache-node")];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "redb" || e == "redb-log" || e == "db")
                && std::fs::read(&path)
                    .unwrap()
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes())
            {
                found.push(path);
            }
        }
    }
    assert!(found.is_empty(), "the secret is stored in {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_follows_a_pipeline_back_to_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::start(vec![("cities.csv".into(), b"Lisbon\nPorto\n".to_vec())]);
    let server = Server::hybrid(dir.path(), "lineage-node").await;
    let client = server.client();
    let url = format!("{}/cities.csv", files.url);

    // Job 1 reads the URL; jobs 2 and 3 each read the previous result by CID.
    let mut spec = cat_job(
        json!({"Type": "urlDownload", "Params": {"URL": url}}),
        json!({}),
    );
    // A download lands in a folder at its target, under the URL's file name.
    spec["Tasks"][0]["InputSources"][1]["Target"] = json!("/data");
    spec["Tasks"][0]["Engine"]["Params"]["Parameters"] = json!(["/data/cities.csv"]);
    let first = submit(&server, dir.path(), &spec, &[]);
    common::wait_completed(&client, &first, 60).await;
    let cid_of = |id: String| {
        let client = client.clone();
        async move {
            let executions = client.job_executions(&id).await.unwrap().items;
            executions[0]
                .published_result
                .as_ref()
                .and_then(|r| r.param_str("CID"))
                .unwrap()
                .to_string()
        }
    };
    let cid1 = cid_of(first.clone()).await;
    let next = |cid: &str| {
        let mut spec = cat_job(json!({"Type": "ipfs", "Params": {"CID": cid}}), json!({}));
        // The previous job's stdout, inside its result tree, twice: each step's result
        // differs from the one before.
        spec["Tasks"][0]["InputSources"][1]["Target"] = json!("/data/prev");
        spec["Tasks"][0]["Engine"]["Params"]["Parameters"] =
            json!(["/data/prev/stdout", "/data/prev/stdout"]);
        submit(&server, dir.path(), &spec, &[])
    };
    let second = next(&cid1);
    common::wait_completed(&client, &second, 60).await;
    let cid2 = cid_of(second.clone()).await;
    let third = next(&cid2);
    common::wait_completed(&client, &third, 60).await;
    let cid3 = cid_of(third.clone()).await;
    assert_ne!(cid1, cid2);
    assert_ne!(cid2, cid3);

    // The CLI's tree of job 3 goes back through job 2 and job 1 to the URL.
    let tree = run_ok(&server, &["job", "lineage", &third]);
    for needle in [&second, &first, &url, &cid1, &cid2] {
        assert!(tree.contains(needle.as_str()), "{needle} in\n{tree}");
    }
    let json_tree = run_ok(&server, &["job", "lineage", &third, "--output", "json"]);
    let node: LineageNode = serde_json::from_str(&json_tree).unwrap();
    assert_eq!(node.job_id.as_str(), third);
    let up2 = &node.inputs[1].produced_by[0];
    assert_eq!(up2.job_id.as_str(), second);
    let up1 = &up2.inputs[1].produced_by[0];
    assert_eq!(up1.job_id.as_str(), first);
    let url_input = &up1.inputs[1];
    assert_eq!(url_input.place, format!("url:{url}"));
    let fetched = url_input.identity.as_ref().unwrap().to_string();
    let digest = bacalhau_models::content::Identity::sha256(&{
        use sha2::Digest as _;
        sha2::Sha256::digest(b"Lisbon\nPorto\n")
    })
    .to_string();
    let digest = digest.trim_start_matches("sha256:").to_string();
    assert_eq!(fetched, format!("sha256:{digest}"));

    // Downstream of job 1: job 2, then job 3.
    let down = client.job_lineage(&first, "", 10).await.unwrap();
    assert_eq!(down.consumed_by[0].job_id.as_str(), second);
    assert_eq!(down.consumed_by[0].consumed_by[0].job_id.as_str(), third);

    // The links are in the hash-chained audit log, which verifies.
    let audit = client.audit_log(0, 1000).await.unwrap().items;
    let lineage_events: Vec<_> = audit
        .iter()
        .filter(|e| e.event.topic == bacalhau_models::history::Topic::Lineage)
        .collect();
    assert_eq!(lineage_events.len(), 3, "{lineage_events:#?}");
    assert!(
        lineage_events
            .iter()
            .any(|e| e.event.details.get("Input:/data") == Some(&format!("sha256:{digest}")))
    );
    let verified = server.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stderr(&verified));

    // The job page draws the graph, every job a link.
    let page = reqwest::get(format!("http://127.0.0.1:{}/ui/jobs/{second}", server.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"lineage\""), "{page}");
    for id in [&first, &second, &third] {
        assert!(page.contains(&format!("href=\"/ui/jobs/{id}\"")), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_jobs_need_every_node_to_agree() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("orchestrator")).await;
    let client = server.client();
    let address = format!("127.0.0.1:{}", server.port);
    let allow = "Compute.Env.AllowList=FLAVOUR";
    let mut nodes = Vec::new();
    for (name, flavour) in [("node-a", "same"), ("node-b", "same"), ("node-c", "odd")] {
        nodes.push(ComputeProcess::start_with_env(
            &dir.path().join(name),
            name,
            &address,
            &["-c", allow],
            &[("FLAVOUR", flavour)],
        ));
    }
    common::wait_nodes(&client, 3).await;

    // Deterministic: three nodes, one CID.
    let agreed = submit(
        &server,
        dir.path(),
        &cat_job(inline("same%20everywhere"), json!({})),
        &["--verify", "3"],
    );
    common::wait_completed(&client, &agreed, 90).await;
    let executions = client.job_executions(&agreed).await.unwrap().items;
    let mut ran_on: Vec<String> = executions.iter().map(|e| e.node_id.to_string()).collect();
    ran_on.sort();
    assert_eq!(ran_on, ["node-a", "node-b", "node-c"]);
    let results = client.job_results(&agreed).await.unwrap().items;
    assert_eq!(results.len(), 1, "one result for the job: {results:?}");

    // A job whose output depends on the node (a Docker job printing a variable node-c sets
    // differently): node-c is named as the odd one.
    let spec = json!({
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "docker", "Params": {
                "Image": "busybox:1.37.0",
                "Entrypoint": ["sh", "-c", "echo $FLAVOUR"],
            }},
            "Env": {"FLAVOUR": "env:FLAVOUR"},
            "Network": {"Type": "None"},
        }],
    });
    let disagreed = submit(
        &server,
        dir.path(),
        &spec,
        &["--verify", "3", "--wait=false"],
    );
    let job = eventually(90, "the verified job to end", || async {
        let job = client.get_job(&disagreed, "").await.ok()?.job;
        job.state.state_type.is_terminal().then_some(job)
    })
    .await;
    assert_eq!(
        job.state.state_type,
        JobStateType::Failed,
        "{:?}",
        job.state
    );
    let message = &job.state.message;
    assert!(message.contains("verification failed"), "{message}");
    assert!(message.contains("odd: node-c ("), "{message}");
    for node in ["node-a", "node-b", "node-c"] {
        assert!(
            message.contains(&format!("{node}: output-sha256:")),
            "{message}"
        );
    }
    // Each node keyed the same task the same way (the image by the ID it ran, the variable by
    // its reference): the key is the same, the results are not.
    let keys: std::collections::BTreeSet<String> = client
        .job_executions(&disagreed)
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|e| e.compute_state.details.get("ContentKey").cloned())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");

    // A request that cannot be verified is refused at submission, naming the field.
    let file = dir.path().join("verify-one.json");
    std::fs::write(&file, cat_job(inline("x"), json!({})).to_string()).unwrap();
    let refused = server.cli(&["job", "run", "--verify", "1", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused)
            .contains("Meta[bacalhau-rs/verify]: verification needs from 2 to 16 nodes, found 1"),
        "{}",
        stderr(&refused)
    );
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_default_caches_without_the_flag_and_a_job_may_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("default-node"),
        common::free_port(),
        &[
            "-c",
            "Orchestrator.ResultCacheDefault=true",
            "serve",
            "--name",
            "default-node",
        ],
    )
    .await;
    let client = server.client();
    let spec = cat_job(inline("by%20default"), json!({}));
    let first = submit(&server, dir.path(), &spec, &[]);
    common::wait_completed(&client, &first, 60).await;
    let job = client.get_job(&first, "").await.unwrap().job;
    assert_eq!(
        job.meta["bacalhau-rs/cache"], "true",
        "the default is recorded"
    );
    let second = submit(&server, dir.path(), &spec, &[]);
    let served = client.job_executions(&second).await.unwrap().items;
    assert!(
        served[0].compute_state.details.contains_key("CachedFrom"),
        "{served:?}"
    );
    let mut opted_out = spec.clone();
    opted_out["Meta"] = json!({"bacalhau-rs/cache": "false"});
    let third = submit(&server, dir.path(), &opted_out, &[]);
    common::wait_completed(&client, &third, 60).await;
    assert_eq!(executions_run_by_nodes(&server).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_whose_result_is_gone_is_dropped_and_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("orchestrator")).await;
    let client = server.client();
    let address = format!("127.0.0.1:{}", server.port);
    // Only node-a is up at first: the run and its pinned result land there.
    let mut a = ComputeProcess::start(&dir.path().join("a"), "node-a", &address, &[]);
    common::wait_nodes(&client, 1).await;
    let spec = cat_job(inline("kept%20on%20a"), json!({}));
    let first = submit(&server, dir.path(), &spec, &["--cache"]);
    common::wait_completed(&client, &first, 60).await;
    let hit = submit(&server, dir.path(), &spec, &["--cache"]);
    let served = client.job_executions(&hit).await.unwrap().items;
    assert_eq!(served[0].node_id.as_str(), "node-a");
    assert!(served[0].compute_state.details.contains_key("CachedFrom"));

    // node-a goes away with the only copy; node-b joins.
    a.kill9();
    let _b = ComputeProcess::start(&dir.path().join("b"), "node-b", &address, &[]);
    eventually(30, "node-a disconnected and node-b connected", || async {
        let nodes = client.list_nodes().await.ok()?.nodes;
        let status = |name: &str| {
            nodes
                .iter()
                .find(|n| n.info.node_id.as_str() == name)
                .map(|n| n.connection_state.status)
        };
        (status("node-a") != Some(bacalhau_models::node::ConnectionStatus::Connected)
            && status("node-b") == Some(bacalhau_models::node::ConnectionStatus::Connected))
        .then_some(())
    })
    .await;
    let rerun = submit(&server, dir.path(), &spec, &["--cache"]);
    common::wait_completed(&client, &rerun, 60).await;
    let executions = client.job_executions(&rerun).await.unwrap().items;
    assert_eq!(executions[0].node_id.as_str(), "node-b");
    assert!(
        !executions[0]
            .compute_state
            .details
            .contains_key("CachedFrom")
    );
    let history = client.job_history(&rerun, "", "", "").await.unwrap().items;
    assert!(
        history.iter().any(|e| e
            .event
            .message
            .starts_with(&format!("Cache entry of job {first} dropped"))),
        "{history:#?}"
    );
    // node-b's run is the entry now.
    let again = submit(&server, dir.path(), &spec, &["--cache"]);
    let served = client.job_executions(&again).await.unwrap().items;
    assert_eq!(served[0].node_id.as_str(), "node-b");
    assert_eq!(
        served[0].compute_state.details["CachedFrom"],
        format!("{rerun}/{}", executions[0].id)
    );
}

/// Builds a busybox image holding `text` at `/v`, and answers its ID.
fn image_with(tag: &str, text: &str) -> String {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("v"), text).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox:1.37.0\nCOPY v /v\n",
    )
    .unwrap();
    let built = std::process::Command::new("docker")
        .args(["build", "--quiet", "-t", tag])
        .arg(ctx.path())
        .output()
        .expect("docker build");
    assert!(built.status.success(), "{}", stderr(&built));
    String::from_utf8_lossy(&built.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_image_by_id_is_cached_and_another_image_misses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "image-node").await;
    let client = server.client();
    let one = image_with("bacalhau-test-cache:one", "one\n");
    let two = image_with("bacalhau-test-cache:two", "two\n");
    assert!(one.starts_with("sha256:") && one != two, "{one} {two}");
    let job = |image: &str| {
        json!({
            "Type": "batch",
            "Count": 1,
            "Tasks": [{
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {
                    "Image": image,
                    "Entrypoint": ["cat", "/v"],
                }},
                "Network": {"Type": "None"},
            }],
        })
    };
    let first = submit(&server, dir.path(), &job(&one), &["--cache"]);
    common::wait_completed(&client, &first, 60).await;
    let hit = submit(&server, dir.path(), &job(&one), &["--cache"]);
    let served = client.job_executions(&hit).await.unwrap().items;
    assert!(
        served[0].compute_state.details.contains_key("CachedFrom"),
        "{served:?}"
    );
    assert_eq!(served[0].run_output.as_ref().unwrap().stdout, "one\n");
    // Another image (another digest): a miss, and it runs.
    let other = submit(&server, dir.path(), &job(&two), &["--cache"]);
    common::wait_completed(&client, &other, 60).await;
    let ran = client.job_executions(&other).await.unwrap().items;
    assert!(!ran[0].compute_state.details.contains_key("CachedFrom"));
    assert_eq!(ran[0].run_output.as_ref().unwrap().stdout, "two\n");
    // By tag, the orchestrator cannot know the digest: the job runs, with a warning.
    let file = dir.path().join("by-tag.json");
    std::fs::write(&file, job("bacalhau-test-cache:one").to_string()).unwrap();
    let by_tag = server.cli(&["job", "run", "--cache", file.to_str().unwrap()]);
    assert!(by_tag.status.success(), "{}", stderr(&by_tag));
    assert!(
        stderr(&by_tag)
            .contains("Engine.Params.Image: image \"bacalhau-test-cache:one\" is named by tag"),
        "{}",
        stderr(&by_tag)
    );
}
