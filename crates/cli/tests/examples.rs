//! Runs every file of `examples/` against a devstack (an orchestrator and three compute nodes in
//! one process) set up as the examples' comments ask, so none goes stale: specs with
//! `bacalhau job run`, scripts with bash and the built binary first on PATH. An example that
//! is not in [`EXPECTED`] fails the test, so a new one cannot go untested.

mod common;

use common::{S3_ENV, S3Server, Server, free_port};
use std::path::Path;
use std::process::Command;

/// Each example and a line of what it prints when it works.
const EXPECTED: &[(&str, &str)] = &[
    ("hello.yaml", "Hello World"),
    ("noop.yaml", "Job successfully submitted"),
    ("inline-input.yaml", "Hello from inside the spec"),
    ("wasm.sh", "Exiting with 3"),
    ("local-input.sh", "3 /inputs/words.txt"),
    ("url-input.sh", "Porto,232000"),
    ("local-publisher.sh", "primes: 2 3 5 7 11 13"),
    ("s3.sh", "records: 6"),
    ("s3-partitions.sh", "partition 2: "),
    ("daemon.sh", "Stopped"),
    ("secrets.sh", "the job got a token of 17 characters"),
    ("ipfs.sh", "100 /in/numbers.txt"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut examples: Vec<String> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".sh"))
        .collect();
    examples.sort();
    for name in &examples {
        assert!(
            EXPECTED.iter().any(|(example, _)| example == name),
            "examples/{name} is not run by this test: add it to EXPECTED"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("examples-data");
    std::fs::create_dir_all(&shared).unwrap();
    let s3 = S3Server::start(dir.path()).await;
    s3.create_bucket("examples").await;
    let allow = format!("Compute.AllowListedLocalPaths={}", shared.display());
    let mut env = S3_ENV.to_vec();
    env.push(("EXAMPLE_TOKEN", "not-a-real-token!"));
    let server = Server::start_with_env(
        &dir.path().join("devstack"),
        free_port(),
        &[
            "-c",
            &allow,
            "-c",
            "Compute.Env.AllowList=EXAMPLE_*",
            "devstack",
            "--compute-nodes",
            "3",
        ],
        &env,
    )
    .await;

    let bin_dir = Path::new(common::binary()).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let file = root.join("examples").join(name);
        let mut command = if name.ends_with(".sh") {
            let mut bash = Command::new("bash");
            bash.arg(&file);
            bash
        } else {
            let mut run = Command::new(common::binary());
            run.args(["job", "run"]).arg(&file);
            run
        };
        let output = command
            .current_dir(&root)
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("BACALHAU_API_HOST", "127.0.0.1")
            .env("BACALHAU_API_PORT", server.port.to_string())
            .env("EXAMPLES_DIR", &shared)
            .env("S3_ENDPOINT", &s3.endpoint)
            .env("S3_BUCKET", "examples")
            .envs(S3_ENV.iter().copied())
            .output()
            .expect("run the example");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.contains(expected) {
            failures.push(format!(
                "examples/{name} ({}), expected {expected:?} in its output:\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n\n{}",
        failures.len(),
        EXPECTED.len(),
        failures.join("\n\n")
    );
}
