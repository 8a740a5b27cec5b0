//! The node channel over QUIC (`Orchestrator.QUIC.Enabled`, a node given `quic://HOST:PORT`):
//! real processes on loopback.

mod common;

use bacalhau_client::ApiClient;
use bacalhau_models::node::ConnectionStatus;
use bacalhau_models::parse_job_spec;
use common::{ComputeProcess, Server, eventually, free_port, wait_completed, wait_nodes};
use std::path::Path;

const QUIC: &[&str] = &[
    "serve",
    "--orchestrator",
    "-c",
    "Orchestrator.QUIC.Enabled=true",
];

fn noop_job(name: &str) -> bacalhau_models::Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nCount: 1\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n   Timeouts: {{QueueTimeout: 600}}\n"
    ))
    .expect("spec")
}

async fn run_one(client: &ApiClient, name: &str) {
    let submitted = client.put_job(&noop_job(name), false).await.unwrap();
    wait_completed(client, &submitted.job_id, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_over_quic_runs_jobs_and_is_back_at_once_after_its_orchestrator_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("orchestrator");
    let port = free_port();
    let mut server = Server::start_with(&data, port, QUIC).await;
    assert!(
        server.logs().contains(&format!("quic://127.0.0.1:{port}")),
        "{}",
        server.logs()
    );
    let _node = ComputeProcess::start(
        &dir.path().join("node"),
        "quic-node",
        &format!("quic://127.0.0.1:{port}"),
        &[],
    );
    let client = server.client();
    wait_nodes(&client, 1).await;
    run_one(&client, "over-quic").await;

    // Killed, the orchestrator sends nothing; started again it answers the node's next
    // heartbeat with a stateless reset (its key is kept in the data directory), so the node
    // dials again at once (its heartbeats come every 5 s). Without the reset the node would
    // wait out the 30 s idle timeout, past the 15 s given here.
    server.kill9();
    let server = Server::start_with(&data, port, QUIC).await;
    let client = server.client();
    eventually(15, "the node back after the restart", || async {
        let nodes = client.list_nodes().await.ok()?.nodes;
        nodes
            .iter()
            .any(|n| n.connection_state.status == ConnectionStatus::Connected)
            .then_some(())
    })
    .await;
    run_one(&client, "after-the-restart").await;
}

fn write_self_signed(dir: &Path, name: &str) -> (String, String, String) {
    let made = bacalhau_api::tls::self_signed(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    let path = |file: &str| dir.join(format!("{name}-{file}"));
    std::fs::write(path("ca.pem"), &made.ca_pem).unwrap();
    std::fs::write(path("cert.pem"), &made.cert_pem).unwrap();
    std::fs::write(path("key.pem"), &made.key_pem).unwrap();
    let shown = |file: &str| path(file).display().to_string();
    (shown("ca.pem"), shown("cert.pem"), shown("key.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_a_node_asking_for_tls_checks_the_orchestrators_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = write_self_signed(dir.path(), "server");
    let (other_ca, _, _) = write_self_signed(dir.path(), "other");
    let port = free_port();
    let cert_arg = format!("API.TLS.CertFile={cert}");
    let key_arg = format!("API.TLS.KeyFile={key}");
    let mut args = QUIC.to_vec();
    args.extend(["-c", &cert_arg, "-c", &key_arg]);
    let server = Server::start_full(
        &dir.path().join("orchestrator"),
        port,
        &args,
        &[],
        Some(Path::new(&ca)),
    )
    .await;
    let client = server.client();
    let orchestrator = format!("quic://127.0.0.1:{port}");

    // A CA that did not sign the orchestrator's certificate: no handshake, and the log says why.
    let wrong_ca = format!("Compute.TLS.CACert={other_ca}");
    let untrusting = ComputeProcess::start(
        &dir.path().join("untrusting"),
        "untrusting",
        &orchestrator,
        &["-c", &wrong_ca, "-c", "Compute.TLS.RequireTLS=true"],
    );
    eventually(30, "the refused certificate in the node's log", || async {
        let log = std::fs::read_to_string(&untrusting.log).unwrap_or_default();
        log.to_lowercase().contains("certificate").then_some(())
    })
    .await;
    let nodes = client.list_nodes().await.unwrap().nodes;
    assert!(
        nodes
            .iter()
            .all(|n| n.info.node_id.to_string() != "untrusting"),
        "{nodes:?}"
    );

    let right_ca = format!("Compute.TLS.CACert={ca}");
    let _trusting = ComputeProcess::start(
        &dir.path().join("trusting"),
        "trusting",
        &orchestrator,
        &["-c", &right_ca, "-c", "Compute.TLS.RequireTLS=true"],
    );
    wait_nodes(&client, 1).await;
    run_one(&client, "over-quic-with-tls").await;
}
