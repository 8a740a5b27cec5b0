//! Compute nodes, scheduling and the node channel with real processes on loopback: placement
//! over distinct nodes, queueing until a matching node joins, node loss, a network partition
//! (a TCP proxy that drops and restores traffic) and kill -9 of the orchestrator.

mod common;

use bacalhau_client::ApiClient;
use bacalhau_models::{Execution, ExecutionStateType, JobStateType, parse_job_spec};
use common::{ComputeProcess, Proxy, Server, eventually, free_port, wait_nodes};
use std::collections::BTreeSet;
use std::time::Duration;

fn noop_job(name: &str, count: u32, duration: &str, extra: &str) -> bacalhau_models::Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nCount: {count}\n{extra}Tasks:\n - Name: main\n   Engine: {{Type: noop, Params: {{Duration: {duration}}}}}\n   Timeouts: {{QueueTimeout: 600}}\n"
    ))
    .expect("spec")
}

async fn wait_state(client: &ApiClient, id: &str, want: JobStateType, seconds: u64) {
    eventually(seconds, &format!("job {id} to be {want}"), || async {
        let job = client.get_job(id, "").await.ok()?.job;
        (job.state.state_type == want).then_some(())
    })
    .await
}

async fn executions(client: &ApiClient, id: &str) -> Vec<Execution> {
    client.job_executions(id).await.expect("executions").items
}

async fn running_on(client: &ApiClient, id: &str) -> Execution {
    eventually(20, "an execution to be running", || async {
        executions(client, id)
            .await
            .into_iter()
            .find(|e| e.compute_state.state_type == ExecutionStateType::Running)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_3_runs_on_3_distinct_nodes_of_a_devstack() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("devstack"),
        free_port(),
        &["devstack", "--compute-nodes", "3"],
    )
    .await;
    let client = server.client();
    wait_nodes(&client, 3).await;
    let put = client
        .put_job(&noop_job("three", 3, "0s", ""), false)
        .await
        .unwrap();
    wait_state(&client, &put.job_id, JobStateType::Completed, 20).await;
    let executions = executions(&client, &put.job_id).await;
    assert_eq!(executions.len(), 3);
    let nodes: BTreeSet<_> = executions.iter().map(|e| e.node_id.clone()).collect();
    assert_eq!(nodes.len(), 3, "executions share nodes: {nodes:?}");
    assert!(
        executions
            .iter()
            .all(|e| e.compute_state.state_type == ExecutionStateType::Completed)
    );
    let partitions: BTreeSet<_> = executions.iter().map(|e| e.partition_index).collect();
    assert_eq!(partitions, BTreeSet::from([0, 1, 2]));
    let history = client
        .job_history(&put.job_id, "", "", "")
        .await
        .unwrap()
        .items;
    let requested = history
        .iter()
        .filter(|e| e.event.message.starts_with("Requested execution on"))
        .count();
    assert_eq!(requested, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_for_a_matching_node_and_runs_when_it_joins() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("orchestrator")).await;
    let client = server.client();
    let address = format!("127.0.0.1:{}", server.port);
    let _us = ComputeProcess::start(
        &dir.path().join("us"),
        "us-node",
        &address,
        &["--labels", "zone=us"],
    );
    wait_nodes(&client, 1).await;
    let job = noop_job(
        "eu-only",
        1,
        "0s",
        "Constraints:\n - {Key: zone, Operator: '=', Values: [eu]}\n",
    );
    let put = client.put_job(&job, false).await.unwrap();
    wait_state(&client, &put.job_id, JobStateType::Queued, 20).await;
    let queued = client.get_job(&put.job_id, "").await.unwrap().job;
    assert!(
        queued.state.message.contains("labels don't match"),
        "{}",
        queued.state.message
    );
    let _eu = ComputeProcess::start(
        &dir.path().join("eu"),
        "eu-node",
        &address,
        &["--labels", "zone=eu"],
    );
    wait_state(&client, &put.job_id, JobStateType::Completed, 20).await;
    let executions = executions(&client, &put.job_id).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].node_id.as_str(), "eu-node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_compute_node_s_execution_is_rescheduled_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("orchestrator")).await;
    let client = server.client();
    let address = format!("127.0.0.1:{}", server.port);
    let mut a = ComputeProcess::start(&dir.path().join("a"), "node-a", &address, &[]);
    let mut b = ComputeProcess::start(&dir.path().join("b"), "node-b", &address, &[]);
    wait_nodes(&client, 2).await;
    let put = client
        .put_job(&noop_job("survivor", 1, "3s", ""), false)
        .await
        .unwrap();
    let first = running_on(&client, &put.job_id).await;
    if first.node_id.as_str() == "node-a" {
        a.kill9();
    } else {
        b.kill9();
    }
    wait_state(&client, &put.job_id, JobStateType::Completed, 40).await;
    let executions = executions(&client, &put.job_id).await;
    let lost = executions.iter().find(|e| e.id == first.id).unwrap();
    assert_eq!(lost.compute_state.state_type, ExecutionStateType::Failed);
    let completed: Vec<_> = executions
        .iter()
        .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
        .collect();
    assert_eq!(completed.len(), 1);
    assert_ne!(completed[0].node_id, first.node_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A long grace period: the partition must heal before the node counts as lost.
    let server = Server::start_with(
        &dir.path().join("orchestrator"),
        free_port(),
        &[
            "-c",
            "Orchestrator.NodeManager.RescheduleGracePeriod=60s",
            "serve",
            "--orchestrator",
        ],
    )
    .await;
    let client = server.client();
    let proxy = Proxy::start(server.port).await;
    let _node = ComputeProcess::start(
        &dir.path().join("edge"),
        "edge-node",
        &format!("127.0.0.1:{}", proxy.port),
        &[],
    );
    wait_nodes(&client, 1).await;
    let put = client
        .put_job(&noop_job("partitioned", 1, "2s", ""), false)
        .await
        .unwrap();
    let execution = running_on(&client, &put.job_id).await;

    proxy.set_cut(true);
    eventually(20, "the node to be seen as disconnected", || async {
        let node = client.get_node("edge-node").await.ok()?.node;
        (node.connection_state.status == bacalhau_models::node::ConnectionStatus::Disconnected)
            .then_some(())
    })
    .await;
    // The execution finishes on the far side of the partition; its report waits in the outbox.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = client.get_job(&put.job_id, "").await.unwrap().job;
    assert_eq!(during.state.state_type, JobStateType::Running);

    proxy.set_cut(false);
    wait_state(&client, &put.job_id, JobStateType::Completed, 30).await;
    let executions = executions(&client, &put.job_id).await;
    assert_eq!(executions.len(), 1, "nothing was rescheduled");
    assert_eq!(executions[0].id, execution.id);
    let history = client
        .job_history(&put.job_id, "execution", execution.id.as_str(), "")
        .await
        .unwrap()
        .items;
    for message in ["Accepted by the node", "Running", "Completed successfully"] {
        let n = history
            .iter()
            .filter(|e| e.event.message == message)
            .count();
        assert_eq!(n, 1, "{message:?} recorded {n} times: {history:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_completes_after_the_orchestrator_is_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("orchestrator");
    // A long grace period: the node must not count as lost while the orchestrator is down.
    let args = [
        "-c",
        "Orchestrator.NodeManager.RescheduleGracePeriod=60s",
        "serve",
        "--orchestrator",
    ];
    let port = free_port();
    let mut server = Server::start_with(&data, port, &args).await;
    let client = server.client();
    let _node = ComputeProcess::start(
        &dir.path().join("node"),
        "steady-node",
        &format!("127.0.0.1:{port}"),
        &[],
    );
    wait_nodes(&client, 1).await;
    let put = client
        .put_job(&noop_job("outlive", 1, "2s", ""), false)
        .await
        .unwrap();
    running_on(&client, &put.job_id).await;
    server.kill9();
    // The execution ends while the orchestrator is down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server = Server::start_with(&data, port, &args).await;
    let client = server.client();
    wait_state(&client, &put.job_id, JobStateType::Completed, 30).await;
    let executions = executions(&client, &put.job_id).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(
        executions[0].compute_state.state_type,
        ExecutionStateType::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_manual_approval_a_node_waits_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("orchestrator"),
        free_port(),
        &[
            "-c",
            "Orchestrator.NodeManager.ManualApproval=true",
            "serve",
            "--orchestrator",
        ],
    )
    .await;
    let client = server.client();
    let address = format!("127.0.0.1:{}", server.port);
    let _node = ComputeProcess::start(&dir.path().join("new"), "new-node", &address, &[]);
    eventually(20, "the node to be pending", || async {
        let node = client.get_node("new-node").await.ok()?.node;
        (node.membership == bacalhau_models::node::Membership::Pending
            && node.connection_state.status == bacalhau_models::node::ConnectionStatus::Connected)
            .then_some(())
    })
    .await;
    let put = client
        .put_job(&noop_job("needs-approval", 1, "0s", ""), false)
        .await
        .unwrap();
    wait_state(&client, &put.job_id, JobStateType::Queued, 20).await;

    let approve = server.cli(&["node", "approve", "new-node"]);
    assert!(approve.status.success(), "{}", common::stderr(&approve));
    wait_state(&client, &put.job_id, JobStateType::Completed, 20).await;

    let reject = server.cli(&["node", "reject", "new-node"]);
    assert!(reject.status.success(), "{}", common::stderr(&reject));
    eventually(20, "the rejected node to be refused", || async {
        let node = client.get_node("new-node").await.ok()?.node;
        (node.membership == bacalhau_models::node::Membership::Rejected
            && node.connection_state.status
                == bacalhau_models::node::ConnectionStatus::Disconnected)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_job_runs_on_every_node_including_nodes_that_join_later() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("orchestrator")).await;
    let client = server.client();
    let address = format!("127.0.0.1:{}", server.port);
    let _first = ComputeProcess::start(&dir.path().join("first"), "first-node", &address, &[]);
    wait_nodes(&client, 1).await;
    let daemon = parse_job_spec(
        "Name: everywhere\nType: daemon\nTasks:\n - Name: main\n   Engine: {Type: noop, Params: {Duration: 60s}}\n",
    )
    .unwrap();
    let put = client.put_job(&daemon, false).await.unwrap();
    wait_state(&client, &put.job_id, JobStateType::Running, 20).await;
    let _second = ComputeProcess::start(&dir.path().join("second"), "second-node", &address, &[]);
    let nodes = eventually(20, "executions on both nodes", || async {
        let nodes: BTreeSet<String> = executions(&client, &put.job_id)
            .await
            .iter()
            .filter(|e| e.compute_state.state_type == ExecutionStateType::Running)
            .map(|e| e.node_id.to_string())
            .collect();
        (nodes.len() == 2).then_some(nodes)
    })
    .await;
    assert_eq!(
        nodes,
        BTreeSet::from(["first-node".to_string(), "second-node".to_string()])
    );
    client.stop_job(&put.job_id, "done").await.unwrap();
    eventually(20, "every daemon execution to be cancelled", || async {
        executions(&client, &put.job_id)
            .await
            .iter()
            .all(|e| e.compute_state.state_type == ExecutionStateType::Cancelled)
            .then_some(())
    })
    .await;
}
