//! Data in and results out, end to end: inputs from `urlDownload`, S3 (a moto server) with
//! partitioning, results published locally and to S3 and fetched with `job get`, and jobs
//! placed on the node that holds their data. Needs the busybox images and the test venv
//! (`scripts/setup-test-env.sh`).

mod common;

use bacalhau_models::{ExecutionStateType, JobStateType};
use common::{
    ComputeProcess, FileServer, S3_ENV, S3Server, Server, eventually, free_port, stderr, stdout,
};
use std::path::Path;

async fn hybrid(dir: &Path, name: &str) -> Server {
    Server::start_with_env(
        &dir.join(name),
        free_port(),
        &["serve", "--name", name],
        S3_ENV,
    )
    .await
}

fn run_ok(server: &Server, args: &[&str]) -> String {
    let run = server.cli_with_env(args, S3_ENV);
    assert!(
        run.status.success(),
        "{args:?} failed:\n{}{}",
        stdout(&run),
        stderr(&run)
    );
    stdout(&run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_publisher_results_come_back_with_job_get() {
    let dir = tempfile::tempdir().unwrap();
    let server = hybrid(dir.path(), "results-local").await;
    // Upstream's output example.
    let id = run_ok(
        &server,
        &[
            "docker",
            "run",
            "--id-only",
            "-o",
            "output_custom:/output_custom",
            "-p",
            "local",
            "busybox:1.37.0",
            "--",
            "sh",
            "-c",
            "echo 15 > /output_custom/output.txt; echo done",
        ],
    );
    let id = id.trim();
    let results = server.client().job_results(id).await.unwrap().items;
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].r#type, "urlDownload");

    let out = dir.path().join("downloaded");
    let get = run_ok(
        &server,
        &["job", "get", id, "--output-dir", out.to_str().unwrap()],
    );
    assert!(get.contains("have been written to"), "{get}");
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap_or_default();
    assert_eq!(read("output_custom/output.txt"), "15\n");
    assert_eq!(read("stdout"), "done\n");
    assert_eq!(read("exitCode"), "0");
    assert!(out.join("stderr").exists());
    assert!(
        !out.join("raw").exists(),
        "the raw downloads are cleaned up"
    );

    // --raw keeps the archive as it came.
    let raw = dir.path().join("raw-copy");
    run_ok(
        &server,
        &["get", id, "--raw", "--output-dir", raw.to_str().unwrap()],
    );
    let archives: Vec<_> = std::fs::read_dir(raw.join("raw"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        archives.len() == 1 && archives[0].ends_with(".tar.gz"),
        "{archives:?}"
    );

    // The execution says how much it published.
    let describe = run_ok(&server, &["job", "describe", id]);
    assert!(describe.contains("Published"), "{describe}");

    // A result name that would climb out of the results directory is refused.
    let bad = server.cli(&[
        "docker",
        "run",
        "-o",
        "../escape:/out",
        "-p",
        "local",
        "busybox:1.37.0",
        "--",
        "true",
    ]);
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_inputs_are_downloaded_for_docker_and_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let noop = common::wasm_binary("noop");
    let files = FileServer::start(vec![
        ("data/table.csv".into(), b"a,b\n1,2\n".to_vec()),
        ("noop.wasm".into(), noop),
    ]);
    let server = hybrid(dir.path(), "url-inputs").await;
    let input = format!("{}/data/table.csv", files.url);
    let out = run_ok(
        &server,
        &[
            "docker",
            "run",
            "-i",
            &input,
            "busybox:1.37.0",
            "--",
            "cat",
            "/inputs/table.csv",
        ],
    );
    assert!(out.contains("a,b\n1,2\n"), "{out}");

    let module = format!("{}/noop.wasm", files.url);
    let out = run_ok(&server, &["wasm", "run", &module]);
    assert!(out.contains("Hello, world!"), "{out}");

    // A missing file fails the job and says why.
    let missing = format!("{}/nope.csv", files.url);
    let run = server.cli(&[
        "docker",
        "run",
        "-i",
        &missing,
        "busybox:1.37.0",
        "--",
        "true",
    ]);
    assert!(!run.status.success());
    let text = format!("{}{}", stdout(&run), stderr(&run));
    assert!(text.contains("404"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_inputs_outputs_and_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    s3.create_bucket("inputs").await;
    s3.create_bucket("results").await;
    for i in 0..10 {
        s3.put(
            "inputs",
            &format!("data/part-{i:02}.txt"),
            format!("object {i}\n").as_bytes(),
        )
        .await;
    }
    s3.put("inputs", "other/skip.txt", b"not under the prefix")
        .await;
    let server = Server::start_with_env(
        &dir.path().join("s3-devstack"),
        free_port(),
        &["devstack", "--compute-nodes", "3"],
        S3_ENV,
    )
    .await;
    let endpoint = format!("opt=endpoint={}", s3.endpoint);

    // A Docker job lists its S3 input.
    let input = format!("s3://inputs/data/,{endpoint}");
    let listing = run_ok(
        &server,
        &[
            "docker",
            "run",
            "-i",
            &input,
            "busybox:1.37.0",
            "--",
            "sh",
            "-c",
            "ls /inputs; cat /inputs/part-03.txt",
        ],
    );
    assert!(listing.contains("object 3\n"), "{listing}");
    for i in 0..10 {
        assert!(listing.contains(&format!("part-{i:02}.txt")), "{listing}");
    }
    assert!(!listing.contains("skip.txt"), "{listing}");

    // Results published to S3 land there, and `job get` fetches them.
    let publisher = format!("s3://results/jobs/{{jobID}},{endpoint}");
    let id = run_ok(
        &server,
        &[
            "docker",
            "run",
            "--id-only",
            "-o",
            "out:/out",
            "-p",
            &publisher,
            "busybox:1.37.0",
            "--",
            "sh",
            "-c",
            "echo result > /out/r.txt",
        ],
    );
    let id = id.trim();
    let results = server.client().job_results(id).await.unwrap().items;
    assert!(
        s3.get("results", &format!("jobs/{id}.tar.gz"))
            .await
            .is_some(),
        "the archive is in the bucket: {results:?}"
    );
    let out = dir.path().join("from-s3");
    run_ok(
        &server,
        &["job", "get", id, "--output-dir", out.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("out/r.txt")).unwrap_or_default(),
        "result\n"
    );

    // Ten objects split across three executions: each processed exactly once.
    let spec = format!(
        r#"
Type: batch
Count: 3
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: busybox:1.37.0
        Parameters: ["ls", "/inputs"]
    InputSources:
      - Target: /inputs
        Source:
          Type: s3
          Params:
            Bucket: inputs
            Key: data/
            Endpoint: {}
            Partition:
              Type: object
"#,
        s3.endpoint
    );
    let run = server.cli_with_stdin(&["job", "run", "--id-only", "-"], Some(&spec));
    assert!(run.status.success(), "{}", stderr(&run));
    let id = stdout(&run).trim().to_string();
    let client = server.client();
    let executions = eventually(60, "three completed partitions", || {
        let client = client.clone();
        let id = id.clone();
        async move {
            let executions = client.job_executions(&id).await.ok()?.items;
            let done: Vec<_> = executions
                .into_iter()
                .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
                .collect();
            (done.len() == 3).then_some(done)
        }
    })
    .await;
    let mut seen: Vec<String> = executions
        .iter()
        .flat_map(|e| {
            e.run_output
                .clone()
                .unwrap_or_default()
                .stdout
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    seen.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("part-{i:02}.txt")).collect();
    assert_eq!(
        seen, expected,
        "each object exactly once across the partitions"
    );
    let job = client.get_job(&id, "").await.unwrap().job;
    assert_eq!(job.state.state_type, JobStateType::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_to_the_node_that_holds_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("rows.txt"), "on node b\n").unwrap();
    let port = free_port();
    let server = Server::start_with(
        &dir.path().join("orchestrator"),
        port,
        &["serve", "--orchestrator"],
    )
    .await;
    let orchestrator = format!("127.0.0.1:{port}");
    let allow = format!("Compute.AllowListedLocalPaths={}", data.display());
    let _a = ComputeProcess::start(&dir.path().join("a"), "node-a", &orchestrator, &[]);
    let _b = ComputeProcess::start(
        &dir.path().join("b"),
        "node-b",
        &orchestrator,
        &["-c", &allow],
    );
    let _c = ComputeProcess::start(&dir.path().join("c"), "node-c", &orchestrator, &[]);
    let client = server.client();
    eventually(30, "three nodes", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            (nodes.len() == 3).then_some(())
        }
    })
    .await;
    let mount = format!("file://{}:/data", data.display());
    for _ in 0..3 {
        let run = server.cli(&[
            "docker",
            "run",
            "--id-only",
            "-i",
            &mount,
            "busybox:1.37.0",
            "--",
            "cat",
            "/data/rows.txt",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let id = stdout(&run).trim().to_string();
        let executions = client.job_executions(&id).await.unwrap().items;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].node_id.as_str(), "node-b");
        assert_eq!(
            executions[0].run_output.clone().unwrap_or_default().stdout,
            "on node b\n"
        );
    }
}
