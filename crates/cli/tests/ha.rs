//! No single point of failure: three orchestrators form a Raft group
//! (`Orchestrator.Cluster.*`), three compute nodes know all three, and a stream of WASM jobs
//! goes to any member while the leader is killed with SIGKILL. A new leader must take over
//! within seconds; afterwards every acknowledged job is in one terminal state, no execution
//! ran twice (each run of `record_run.wat` appends a byte to a file named by its execution ID,
//! counted outside the system), and the audit chain verifies on every member and is the same
//! on the two that lived.

mod common;

use bacalhau_client::ApiClient;
use bacalhau_models::{ExecutionStateType, Job, JobId, JobStateType, parse_job_spec};
use base64::Engine as _;
use common::{ComputeProcess, Server, free_port, stderr, stdout, wasm_binary};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const JOBS: usize = 1000;
const MEMBERS: usize = 3;
const NODES: usize = 3;
/// The whole test ends well within this.
const LIMIT: Duration = Duration::from_secs(300);

fn job_spec(name: &str, module: &str, runs: &Path) -> Job {
    parse_job_spec(&format!(
        r#"
Name: {name}
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: /record_run.wasm
    InputSources:
      - Target: /record_run.wasm
        Source: {{Type: inline, Params: {{URL: "data:application/wasm;base64,{module}"}}}}
      - Target: /runs
        Source: {{Type: local, Params: {{SourcePath: "{}", ReadWrite: true}}}}
"#,
        runs.display()
    ))
    .expect("the job spec")
}

/// Submits jobs `range`, each to the next member in turn, retrying (under a new name) while
/// a write is not acknowledged; returns the acknowledged.
async fn submit(
    clients: Arc<Vec<ApiClient>>,
    module: Arc<String>,
    runs: PathBuf,
    range: std::ops::Range<usize>,
    submitted: Arc<AtomicUsize>,
) -> Vec<JobId> {
    let mut acknowledged = Vec::new();
    let mut member = range.start;
    for i in range {
        let mut attempt = 0;
        loop {
            member += 1;
            let client = &clients[member % clients.len()];
            let job = job_spec(&format!("ha-{i}-{attempt}"), &module, &runs);
            match client.put_job(&job, false).await {
                Ok(put) => {
                    acknowledged.push(JobId::from(put.job_id.as_str()));
                    submitted.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                // Unacknowledged: it may or may not exist; only acknowledged jobs are promised.
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    acknowledged
}

/// The leader's index among the members, as `asking` sees it.
async fn leader(asking: &ApiClient, names: &[String]) -> Option<usize> {
    let status = asking.cluster_status().await.ok()?;
    let leader = status.leader?;
    names.iter().position(|n| *n == leader)
}

/// The audit log's hashes, in order, as a member holds it.
async fn chain(client: &ApiClient) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut since = 0;
    loop {
        let page = client.audit_log(since, 1000).await.expect("the audit log");
        if page.items.is_empty() {
            return hashes;
        }
        for event in page.items {
            since = event.seq_num;
            hashes.push(event.hash);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_and_repeats_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).expect("the runs directory");
    let allow = format!("Compute.AllowListedLocalPaths={}:rw", runs.display());
    let module =
        Arc::new(base64::engine::general_purpose::STANDARD.encode(wasm_binary("record_run")));

    let api_ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let raft_ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("orchestrator-{i}")).collect();
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let peers: Vec<String> = (0..MEMBERS)
            .filter(|j| *j != i)
            .map(|j| format!("127.0.0.1:{}", raft_ports[j]))
            .collect();
        let args = [
            "serve".to_string(),
            "--orchestrator".into(),
            "--name".into(),
            names[i].clone(),
            "-c".into(),
            "Orchestrator.Cluster.Host=127.0.0.1".into(),
            "-c".into(),
            format!("Orchestrator.Cluster.Port={}", raft_ports[i]),
            "-c".into(),
            format!("Orchestrator.Cluster.Peers={}", peers.join(",")),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        members.push(Some(
            Server::start_with(&dir.path().join(&names[i]), api_ports[i], &args).await,
        ));
    }
    let clients: Arc<Vec<ApiClient>> = Arc::new(
        members
            .iter()
            .flatten()
            .map(|m| m.client())
            .collect::<Vec<_>>(),
    );
    let first_leader = common::eventually(30, "a leader", || {
        let client = clients[0].clone();
        let names = names.clone();
        async move { leader(&client, &names).await }
    })
    .await;

    let orchestrators: Vec<String> = api_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes: Vec<ComputeProcess> = (0..NODES)
        .map(|i| {
            ComputeProcess::start(
                &dir.path().join(format!("node-{i}")),
                &format!("ha-node-{i}"),
                &orchestrators.join(","),
                &["-c", &allow],
            )
        })
        .collect();
    common::eventually(30, "three connected nodes", || {
        let client = clients[first_leader].clone();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            let connected = nodes
                .iter()
                .filter(|n| n.connection == bacalhau_models::node::ConnectionStatus::Connected)
                .count();
            (connected == NODES).then_some(())
        }
    })
    .await;

    let submitted = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = [0..JOBS / 2, JOBS / 2..JOBS]
        .into_iter()
        .map(|range| {
            tokio::spawn(submit(
                Arc::clone(&clients),
                Arc::clone(&module),
                runs.clone(),
                range,
                Arc::clone(&submitted),
            ))
        })
        .collect();

    // Mid-stream, kill -9 the leader.
    common::eventually(120, "a third of the jobs submitted", || {
        let n = submitted.load(Ordering::SeqCst);
        async move { (n >= JOBS / 3).then_some(()) }
    })
    .await;
    let killed_at = Instant::now();
    if let Some(mut old) = members[first_leader].take() {
        old.kill9();
    }
    let survivor = (first_leader + 1) % MEMBERS;
    let new_leader = common::eventually(30, "a new leader", || {
        let client = clients[survivor].clone();
        let names = names.clone();
        async move { leader(&client, &names).await.filter(|l| *l != first_leader) }
    })
    .await;
    let failover = killed_at.elapsed();

    let mut acknowledged = Vec::new();
    for submitter in submitters {
        acknowledged.extend(submitter.await.expect("a submitter"));
    }
    assert_eq!(acknowledged.len(), JOBS);

    // Settle: every acknowledged job reaches a terminal state.
    let reader = &clients[new_leader];
    let mut pending: BTreeSet<JobId> = acknowledged.iter().cloned().collect();
    let mut states: BTreeMap<JobId, JobStateType> = BTreeMap::new();
    while !pending.is_empty() {
        assert!(
            started.elapsed() < LIMIT,
            "{} acknowledged jobs not terminal after {LIMIT:?}, e.g. {:?}",
            pending.len(),
            pending.iter().take(5).collect::<Vec<_>>()
        );
        let mut still = BTreeSet::new();
        for id in &pending {
            match reader.get_job(id.as_str(), "").await {
                Ok(found) if found.job.state.state_type.is_terminal() => {
                    states.insert(id.clone(), found.job.state.state_type);
                }
                Ok(_) => {
                    still.insert(id.clone());
                }
                Err(e) => panic!("acknowledged job {id} is gone: {e}"),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // What ran, counted outside the system: one file per execution, one byte per run.
    let mut runs_of: BTreeMap<String, u64> = BTreeMap::new();
    for entry in std::fs::read_dir(&runs).expect("the runs directory") {
        let entry = entry.expect("an entry");
        let size = entry.metadata().expect("metadata").len();
        runs_of.insert(entry.file_name().to_string_lossy().into_owned(), size);
    }
    let duplicated: Vec<_> = runs_of.iter().filter(|(_, n)| **n > 1).collect();
    let mut completed_without_a_run = Vec::new();
    for id in &acknowledged {
        let executions = reader
            .job_executions(id.as_str())
            .await
            .expect("executions")
            .items;
        for execution in executions
            .iter()
            .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
        {
            if runs_of.get(execution.id.as_str()) != Some(&1) {
                completed_without_a_run.push(execution.id.clone());
            }
        }
    }
    let completed = states
        .values()
        .filter(|s| **s == JobStateType::Completed)
        .count();
    println!(
        "ha: {JOBS} jobs acknowledged through {MEMBERS} members, completed {completed}, lost 0; \
         leader killed with SIGKILL after {} submissions, new leader in {:.2} s; executions \
         run {}, run twice {}; {:.1} s",
        JOBS / 3,
        failover.as_secs_f64(),
        runs_of.len(),
        duplicated.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        duplicated.is_empty(),
        "executions that ran twice: {duplicated:?}"
    );
    assert!(
        completed_without_a_run.is_empty(),
        "completed executions with no recorded run: {completed_without_a_run:?}"
    );
    assert!(
        completed * 10 >= JOBS * 9,
        "only {completed} of {JOBS} jobs completed"
    );
    assert!(
        failover < Duration::from_secs(5),
        "no new leader within 5 s of the kill: {failover:?}"
    );

    // The audit chain verifies on every living member, and is the same on each.
    let mut chains = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let Some(member) = member else { continue };
        let verify = member.cli(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "the audit chain does not verify on {}:\n{}{}",
            names[i],
            stdout(&verify),
            stderr(&verify)
        );
        chains.push((i, chain(&member.client()).await));
    }
    let (first, reference) = &chains[0];
    for (i, other) in &chains[1..] {
        assert!(
            other == reference,
            "{} and {} hold different audit chains ({} vs {} events)",
            names[*first],
            names[*i],
            reference.len(),
            other.len()
        );
    }
    for node in &mut nodes {
        node.kill9();
    }
}
