//! Retention end to end: with `Orchestrator.JobRetention` a node drops ended jobs' records
//! while the audit log keeps every event and still verifies, and `Orchestrator.CompactOnStart`
//! compacts the store when the node starts again.

mod common;

use common::{Server, eventually, free_port, run_ok, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_jobs_are_dropped_after_their_retention_and_the_audit_log_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("retention-node");
    let port = free_port();
    let args = [
        "-c",
        "Orchestrator.JobRetention=1s",
        "serve",
        "--name",
        "retention-node",
    ];
    let server = Server::start_with(&data, port, &args).await;
    let module = common::wasm_module("noop");
    let id = run_ok(
        &server,
        &["wasm", "run", "--id-only", module.to_str().unwrap()],
    )
    .trim()
    .to_string();
    let client = server.client();
    eventually(30, "the ended job's record to be dropped", || async {
        client.get_job(&id, "").await.is_err().then_some(())
    })
    .await;
    let gone = server.cli(&["job", "describe", &id]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));
    let audit = client.audit_log(0, 1000).await.unwrap().items;
    let of_job: Vec<&str> = audit
        .iter()
        .filter(|e| e.job_id.as_str() == id)
        .map(|e| e.event.message.as_str())
        .collect();
    assert_eq!(of_job.first(), Some(&"Job submitted"), "{of_job:?}");
    assert!(
        of_job.iter().any(|m| m.starts_with("Job record dropped")),
        "{of_job:?}"
    );
    let verified = server.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout(&verified));

    // Started again with compaction: it compacts, and still serves and verifies.
    drop(server);
    let server = Server::start_with(
        &data,
        port,
        &[
            "-c",
            "Orchestrator.CompactOnStart=true",
            "serve",
            "--name",
            "retention-node",
        ],
    )
    .await;
    assert!(
        server.logs().contains("compacted the orchestrator's store"),
        "{}",
        server.logs()
    );
    let verified = server.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout(&verified));
}
