//! The schedulers' tests, as data: a snapshot of jobs, executions and nodes in, a plan out.

use super::*;
use bacalhau_models::node::{ComputeNodeInfo, ConnectionStatus, Membership, NodeInfo};
use bacalhau_models::{ExecutionStateType, TriggeredBy, parse_job_spec};
use std::sync::Arc;

const NOW: Timestamp = 1_000_000_000_000;

fn job(spec: &str) -> Job {
    let mut job = parse_job_spec(spec).unwrap();
    job.id = bacalhau_models::JobId::from("j-test");
    job.version = 1;
    job.state = State::new(JobStateType::Pending);
    job.normalize(&Default::default());
    job
}

fn noop_job(count: i64, queue_timeout: i64) -> Job {
    job(&format!(
        "Type: batch\nCount: {count}\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n   Timeouts: {{QueueTimeout: {queue_timeout}}}\n"
    ))
}

fn node(id: &str, labels: &[(&str, &str)]) -> NodeView {
    let big = Resources {
        cpu: 8.0,
        memory: 16 << 30,
        disk: 100 << 30,
        gpu: 0,
        gpus: vec![],
    };
    NodeView::new(NodeState {
        info: NodeInfo {
            node_id: NodeId::from(id),
            node_type: bacalhau_models::node::NodeType::Compute,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            compute_node_info: ComputeNodeInfo {
                execution_engines: vec!["noop".into(), "docker".into()],
                max_capacity: big.clone(),
                available_capacity: big.clone(),
                max_job_requirements: big,
                ..Default::default()
            },
            ..Default::default()
        },
        membership: Membership::Approved,
        connection: ConnectionStatus::Connected,
        connection_state: bacalhau_models::node::ConnectionState {
            status: ConnectionStatus::Connected,
            ..Default::default()
        },
    })
}

/// The node's compute info, to change in a test.
fn info(view: &mut NodeView) -> &mut ComputeNodeInfo {
    &mut Arc::make_mut(&mut view.state).info.compute_node_info
}

fn eval(job: &Job, triggered_by: TriggeredBy) -> Evaluation {
    Evaluation::new(job.id.clone(), "default", &job.r#type, 0, triggered_by, NOW)
}

fn plan(job: Job, executions: Vec<Execution>, nodes: Vec<NodeView>, eval: &Evaluation) -> Plan {
    let job_type = job.job_type().unwrap();
    let snapshot = Snapshot {
        job,
        executions,
        nodes: Arc::new(nodes),
    };
    scheduler_for(job_type).plan(eval, &snapshot, NOW)
}

fn new_state(plan: &Plan) -> Option<JobStateType> {
    plan.job_state.as_ref().map(|s| s.state_type)
}

#[test]
fn no_nodes_and_no_queue_timeout_fails_with_upstreams_message() {
    let job = noop_job(1, 0);
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], vec![], &e);
    let state = plan.job_state.unwrap();
    assert_eq!(state.state_type, JobStateType::Failed);
    assert_eq!(
        state.message,
        "not enough nodes to run job. requested: 1, available: 0, suitable: 0."
    );
    assert!(plan.create.is_empty());
}

#[test]
fn no_nodes_with_queue_timeout_queues_and_sets_a_deadline() {
    let job = noop_job(1, 60);
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], vec![], &e);
    assert_eq!(new_state(&plan), Some(JobStateType::Queued));
    assert_eq!(plan.follow_ups.len(), 1);
    assert_eq!(plan.follow_ups[0].wait_until, NOW + 60_000_000_000);
    assert_eq!(plan.follow_ups[0].triggered_by, TriggeredBy::JobQueue);
}

#[test]
fn queue_deadline_reached_fails_the_job() {
    let mut job = noop_job(1, 60);
    job.state = State::new(JobStateType::Queued);
    let mut e = eval(&job, TriggeredBy::JobQueue);
    e.wait_until = NOW;
    let plan = plan(job, vec![], vec![], &e);
    assert_eq!(new_state(&plan), Some(JobStateType::Failed));
    assert!(plan.follow_ups.is_empty());
}

/// A node that dropped off moments ago (or has not reconnected since an orchestrator restart).
fn reconnecting(id: &str, returns_by: Timestamp) -> NodeView {
    let mut view = node(id, &[]);
    view.connected = false;
    view.returns_by = Some(returns_by);
    view
}

#[test]
fn a_job_waits_for_a_node_within_its_grace_period_instead_of_failing() {
    let job = noop_job(1, 0);
    let e = eval(&job, TriggeredBy::JobRegister);
    let until = NOW + 2_000_000_000;
    let plan = plan(job.clone(), vec![], vec![reconnecting("n1", until)], &e);
    assert_eq!(new_state(&plan), Some(JobStateType::Queued));
    assert!(plan.create.is_empty());
    assert_eq!(plan.follow_ups.len(), 1);
    assert_eq!(plan.follow_ups[0].wait_until, until);

    // The follow-up finds the node lost: the job fails as upstream's would.
    let mut queued = job;
    queued.state = State::new(JobStateType::Queued);
    let mut follow_up = eval(&queued, TriggeredBy::JobQueue);
    follow_up.wait_until = until;
    let mut lost = node("n1", &[]);
    lost.connected = false;
    lost.lost = true;
    let plan = super::tests::plan(queued, vec![], vec![lost], &follow_up);
    assert_eq!(new_state(&plan), Some(JobStateType::Failed));
}

#[test]
fn a_reconnecting_node_that_could_not_run_the_job_is_not_waited_for() {
    let job = noop_job(1, 0);
    let e = eval(&job, TriggeredBy::JobRegister);
    let mut unsuitable = reconnecting("n1", NOW + 2_000_000_000);
    info(&mut unsuitable).execution_engines = vec!["docker".into()];
    let plan = plan(job, vec![], vec![unsuitable], &e);
    assert_eq!(new_state(&plan), Some(JobStateType::Failed));
}

#[test]
fn count_spreads_over_distinct_nodes() {
    let job = noop_job(3, 0);
    let e = eval(&job, TriggeredBy::JobRegister);
    let nodes = vec![node("a", &[]), node("b", &[]), node("c", &[])];
    let plan = plan(job, vec![], nodes, &e);
    let mut chosen: Vec<_> = plan.create.iter().map(|e| e.node_id.as_str()).collect();
    chosen.sort();
    assert_eq!(chosen, vec!["a", "b", "c"]);
    let mut partitions: Vec<_> = plan.create.iter().map(|e| e.partition_index).collect();
    partitions.sort();
    assert_eq!(partitions, vec![0, 1, 2]);
    assert_eq!(new_state(&plan), Some(JobStateType::Running));
}

#[test]
fn constraints_reject_nodes_and_the_reason_is_reported() {
    let mut job = noop_job(1, 0);
    job.constraints = bacalhau_models::selector::parse_selector("zone=eu").unwrap();
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], vec![node("a", &[("zone", "us")])], &e);
    let state = plan.job_state.unwrap();
    assert_eq!(state.state_type, JobStateType::Failed);
    assert!(
        state.message.contains("available: 1, suitable: 0")
            && state.message.contains("Node a: labels don't match"),
        "{}",
        state.message
    );
}

#[test]
fn unsupported_engine_is_a_rejection_reason() {
    let mut job = noop_job(1, 0);
    job.tasks[0].engine.r#type = "wasm".into();
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], vec![node("a", &[])], &e);
    assert!(
        plan.job_state
            .unwrap()
            .message
            .contains("does not support engine wasm")
    );
}

#[test]
fn all_partitions_completed_completes_the_job() {
    let job = noop_job(2, 0);
    let e = eval(&job, TriggeredBy::ExecUpdate);
    let executions: Vec<Execution> = (0..2)
        .map(|p| {
            let mut x = new_execution(&job, &e, &NodeId::from("a"), p, NOW);
            x.compute_state = State::new(ExecutionStateType::Completed);
            x
        })
        .collect();
    let plan = plan(job, executions, vec![node("a", &[])], &e);
    assert_eq!(new_state(&plan), Some(JobStateType::Completed));
    assert!(plan.create.is_empty());
}

#[test]
fn a_stopped_job_stops_its_live_executions() {
    let mut job = noop_job(1, 0);
    job.state = State::new(JobStateType::Stopped);
    let e = eval(&job, TriggeredBy::JobCancel);
    let live = new_execution(&job, &e, &NodeId::from("a"), 0, NOW);
    let live_id = live.id.clone();
    let plan = plan(job, vec![live], vec![node("a", &[])], &e);
    assert_eq!(
        plan.stop,
        vec![(live_id, StopReason::JobTerminal(JobStateType::Stopped))]
    );
}

#[test]
fn a_failed_partition_is_retried_on_another_node() {
    let mut job = noop_job(1, 0);
    job.state = State::new(JobStateType::Running);
    let e = eval(&job, TriggeredBy::ExecFailure);
    let mut failed = new_execution(&job, &e, &NodeId::from("a"), 0, NOW);
    failed.compute_state = State::new(ExecutionStateType::Failed);
    let mut failed_again = failed.clone();
    failed_again.id = ExecutionId::generate();
    let plan = plan(
        job,
        vec![failed, failed_again],
        vec![node("a", &[]), node("b", &[])],
        &e,
    );
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].node_id.as_str(), "b");
}

#[test]
fn a_failure_another_attempt_would_repeat_fails_the_job_with_its_reason() {
    let mut job = noop_job(1, 0);
    job.state = State::new(JobStateType::Running);
    let e = eval(&job, TriggeredBy::ExecFailure);
    let mut failed = new_execution(&job, &e, &NodeId::from("a"), 0, NOW);
    failed.compute_state = State::with_message(ExecutionStateType::Failed, "exited with code 3");
    failed.set_retryable(false);
    assert_eq!(failed.retryable(), Some(false));
    let plan = plan(job, vec![failed], vec![node("a", &[]), node("b", &[])], &e);
    assert!(plan.create.is_empty(), "not retried");
    let state = plan.job_state.unwrap();
    assert_eq!(state.state_type, JobStateType::Failed);
    assert!(
        state.message.ends_with("exited with code 3"),
        "{}",
        state.message
    );
}

#[test]
fn ops_job_without_nodes_fails() {
    let job = job("Type: ops\nTasks:\n - Name: main\n   Engine: {Type: noop}\n");
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], vec![], &e);
    assert_eq!(new_state(&plan), Some(JobStateType::Failed));
}

#[test]
fn daemon_job_runs_on_every_matching_node() {
    let job = job("Type: daemon\nTasks:\n - Name: main\n   Engine: {Type: noop}\n");
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], vec![node("a", &[]), node("b", &[])], &e);
    assert_eq!(plan.create.len(), 2);
    assert_eq!(new_state(&plan), Some(JobStateType::Running));
}

#[test]
fn total_timeout_schedules_a_deadline_and_fails_the_job_past_it() {
    let mut job = noop_job(1, 0);
    job.tasks[0].timeouts.total_timeout = 10;
    job.create_time = NOW;
    let e = eval(&job, TriggeredBy::JobRegister);
    let first = plan(job.clone(), vec![], vec![node("a", &[])], &e);
    let deadline = first
        .follow_ups
        .iter()
        .find(|f| f.triggered_by == TriggeredBy::JobTimeout)
        .expect("a deadline evaluation");
    assert_eq!(deadline.wait_until, NOW + 10_000_000_000);

    job.create_time = NOW - 11_000_000_000;
    job.state = State::new(JobStateType::Running);
    let late = plan(job, vec![], vec![node("a", &[])], &e);
    let state = late.job_state.unwrap();
    assert_eq!(state.state_type, JobStateType::Failed);
    assert!(
        state.message.contains("Job took longer than 10s"),
        "{}",
        state.message
    );
}

#[test]
fn a_job_goes_to_the_node_that_holds_its_s3_prefix() {
    let job = job(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox:1.37.0}}\n   InputSources:\n    - Target: /inputs\n      Source: {Type: s3, Params: {Bucket: logs, Key: 2024/}}\n",
    );
    let mut holder = node("node-b", &[]);
    info(&mut holder).storage_sources = vec!["s3".into()];
    info(&mut holder).data_locality.s3 = vec!["logs/2024".into()];
    // The holder has less free capacity than the others, and still wins.
    info(&mut holder).available_capacity.cpu = 1.0;
    let mut others = vec![node("node-a", &[]), node("node-c", &[])];
    for other in &mut others {
        info(other).storage_sources = vec!["s3".into()];
    }
    let nodes = vec![others.remove(0), holder, others.remove(0)];
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], nodes, &e);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].node_id.as_str(), "node-b");
}

#[test]
fn a_full_holder_loses_its_data_locality_to_a_node_with_room() {
    let job = job(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox:1.37.0}}\n   Resources: {CPU: '1'}\n   InputSources:\n    - Target: /data\n      Source: {Type: ipfs, Params: {CID: QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH}}\n",
    );
    let mut holder = node("node-b", &[]);
    info(&mut holder).data_locality.ipfs =
        vec!["QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH".into()];
    let mut nodes = vec![node("node-a", &[]), holder, node("node-c", &[])];
    for n in &mut nodes {
        info(n).storage_sources = vec!["ipfs".into()];
    }
    let e = eval(&job, TriggeredBy::JobRegister);
    let placed = plan(job.clone(), vec![], nodes.clone(), &e);
    assert_eq!(placed.create[0].node_id.as_str(), "node-b");
    // Busy: less than the job's one CPU free. Another node takes it (and fetches the data).
    info(&mut nodes[1]).available_capacity.cpu = 0.5;
    let placed = plan(job, vec![], nodes, &e);
    assert_eq!(placed.create.len(), 1);
    assert_ne!(placed.create[0].node_id.as_str(), "node-b");
}

#[test]
fn a_local_input_only_runs_where_its_path_is_allow_listed() {
    let job = job(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox:1.37.0}}\n   InputSources:\n    - Target: /data\n      Source: {Type: local, Params: {SourcePath: /srv/data/set1}}\n",
    );
    let mut nodes: Vec<NodeView> = ["node-a", "node-b"].iter().map(|n| node(n, &[])).collect();
    for n in &mut nodes {
        info(n).storage_sources = vec!["local".into()];
    }
    info(&mut nodes[1]).data_locality.local_paths = vec!["/srv/data/*".into()];
    let e = eval(&job, TriggeredBy::JobRegister);
    let plan = plan(job, vec![], nodes, &e);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].node_id.as_str(), "node-b");
}

#[test]
fn timeouts_at_the_edge_of_i64_neither_overflow_nor_fire() {
    // Found by fuzzing the API: these used to overflow `create_time + timeout` and panic.
    let huge = i64::MAX;
    let job = job(&format!(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n   Timeouts: {{TotalTimeout: {huge}, ExecutionTimeout: {huge}}}\n"
    ));
    let e = eval(&job, TriggeredBy::ExecUpdate);
    let mut running = new_execution(&job, &e, &NodeId::from("a"), 0, NOW);
    running.compute_state = State::new(ExecutionStateType::Running);
    let plan = plan(job, vec![running], vec![node("a", &[])], &e);
    assert!(plan.stop.is_empty(), "{:?}", plan.stop);
    assert_ne!(new_state(&plan), Some(JobStateType::Failed));
}

/// A noop job verified on `nodes` nodes, with one completed replica per entry of `outputs`
/// (the node, what it printed).
fn verified(nodes: u64, outputs: &[(&str, &str)]) -> (Job, Evaluation, Vec<Execution>) {
    let mut job = noop_job(1, 0);
    job.meta.insert(
        bacalhau_models::content::VERIFY_META.into(),
        nodes.to_string(),
    );
    job.state = State::new(JobStateType::Running);
    let e = eval(&job, TriggeredBy::ExecUpdate);
    let executions = outputs
        .iter()
        .enumerate()
        .map(|(replica, (node, stdout))| {
            let mut x = new_execution(&job, &e, &NodeId::from(*node), replica as u64, NOW);
            x.compute_state = State::new(ExecutionStateType::Completed);
            x.run_output = Some(bacalhau_models::RunCommandResult {
                stdout: stdout.to_string(),
                ..Default::default()
            });
            x
        })
        .collect();
    (job, e, executions)
}

#[test]
fn a_verified_job_places_one_replica_per_node_and_never_two_on_one() {
    let (job, e, done) = verified(3, &[("a", "same")]);
    let nodes = vec![node("a", &[]), node("b", &[]), node("c", &[])];
    let plan = plan(job, done, nodes, &e);
    let mut placed: Vec<&str> = plan.create.iter().map(|x| x.node_id.as_str()).collect();
    placed.sort_unstable();
    assert_eq!(placed, ["b", "c"], "node a already ran a replica");
    let mut replicas: Vec<u64> = plan.create.iter().map(|x| x.partition_index).collect();
    replicas.sort_unstable();
    assert_eq!(replicas, [1, 2]);
}

#[test]
fn agreeing_replicas_complete_and_an_odd_one_fails_the_job_by_name() {
    let nodes = || vec![node("a", &[]), node("b", &[]), node("c", &[])];
    let (job, e, done) = verified(3, &[("a", "same"), ("b", "same"), ("c", "same")]);
    let agreed = plan(job, done, nodes(), &e);
    assert_eq!(new_state(&agreed), Some(JobStateType::Completed));

    let (job, e, done) = verified(3, &[("a", "same"), ("b", "odd"), ("c", "same")]);
    let disagreed = plan(job, done, nodes(), &e);
    assert_eq!(new_state(&disagreed), Some(JobStateType::Failed));
    let message = &disagreed.job_state.as_ref().unwrap().message;
    assert!(message.contains("odd: b (output-sha256:"), "{message}");
    assert!(!message.contains("odd: a"), "{message}");
}
