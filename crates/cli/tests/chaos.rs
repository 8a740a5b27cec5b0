//! Chaos with real processes: a stream of 1 000 WASM jobs at an orchestrator and three compute
//! nodes, while a seeded schedule kill -9s the orchestrator or a node at random moments (and
//! restarts it on the same data) and cuts nodes off through TCP proxies. Every job runs
//! `record_run.wat`, which appends one byte to a file named by its execution ID in a shared
//! directory, so the runs can be counted outside the system under test. Afterwards: every
//! acknowledged job is in one terminal state, no execution ran twice, every run belongs to an
//! execution the orchestrator knows, every completed job's execution really ran, and the audit
//! chain verifies. The schedule's seed is printed; `BACALHAU_CHAOS_SEED` replays a schedule
//! (the timing of a real cluster still varies; the checks hold for any timing).

mod common;

use bacalhau_client::ApiClient;
use bacalhau_client::client::ListJobsOptions;
use bacalhau_models::{ExecutionStateType, Job, JobId, JobStateType};
use common::{ComputeProcess, Proxy, Server, free_port, stderr, stdout};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: usize = 1000;
const NODES: usize = 3;
/// Faults injected while the jobs stream in.
const ROUNDS: usize = 12;
/// The whole test, faults and settling included, ends well within this.
const LIMIT: Duration = Duration::from_secs(420);

/// xorshift64*: a small seeded generator, so a schedule can be replayed from its seed.
struct Schedule(u64);

impl Schedule {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// A compute node behind its own proxy, restartable on the same data.
struct Node {
    name: String,
    data: PathBuf,
    proxy: Proxy,
    allow: String,
    process: Option<ComputeProcess>,
    /// Killed processes, kept so their logs print if the test fails.
    killed: Vec<ComputeProcess>,
}

impl Node {
    fn start(&mut self) {
        self.process = Some(ComputeProcess::start(
            &self.data,
            &self.name,
            &format!("127.0.0.1:{}", self.proxy.port),
            &["-c", &self.allow],
        ));
    }

    fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
            self.killed.push(process);
        }
    }
}

#[derive(Debug, Default)]
struct Faults {
    orchestrator_kills: u32,
    node_kills: u32,
    partitions: u32,
}

/// Submits jobs `from..to`, retrying while the orchestrator is down; returns the acknowledged.
async fn submit(
    client: ApiClient,
    module: Arc<String>,
    runs: PathBuf,
    range: std::ops::Range<usize>,
) -> Vec<JobId> {
    let mut acknowledged = Vec::new();
    for i in range {
        let mut attempt = 0;
        loop {
            let job = common::runs::record_run_job(&format!("chaos-{i}-{attempt}"), &module, &runs);
            match client.put_job(&job, false).await {
                Ok(put) => {
                    acknowledged.push(JobId::from(put.job_id.as_str()));
                    break;
                }
                // Unacknowledged: it may or may not exist; only acknowledged jobs are promised.
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    acknowledged
}

/// Every job the orchestrator holds, acknowledged or not.
async fn all_jobs(client: &ApiClient) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut options = ListJobsOptions {
        limit: 500,
        ..ListJobsOptions::default()
    };
    loop {
        let page = client.list_jobs(&options).await.expect("list jobs");
        jobs.extend(page.items);
        if page.next_token.is_empty() {
            return jobs;
        }
        options.next_token = page.next_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_under_kill_9_and_partitions_loses_and_repeats_nothing() {
    let started = Instant::now();
    let seed = std::env::var("BACALHAU_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de_u64);
    println!("chaos schedule seed {seed} (BACALHAU_CHAOS_SEED replays it)");
    let mut schedule = Schedule(seed.max(1));

    let dir = tempfile::tempdir().expect("tempdir");
    let common::runs::Recording {
        runs,
        allow,
        module,
    } = common::runs::Recording::new(dir.path());

    let data = dir.path().join("orchestrator");
    let port = free_port();
    let args = ["serve", "--orchestrator"];
    let mut server = Server::start_with(&data, port, &args).await;
    let client = server.client();
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let mut node = Node {
            name: format!("chaos-{i}"),
            data: dir.path().join(format!("node-{i}")),
            proxy: Proxy::start(port).await,
            allow: allow.clone(),
            process: None,
            killed: Vec::new(),
        };
        node.start();
        nodes.push(node);
    }
    common::eventually(30, "three connected nodes", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            (nodes.len() == NODES).then_some(())
        }
    })
    .await;

    // The stream: two submitters, half the jobs each.
    let submitters: Vec<_> = [0..JOBS / 2, JOBS / 2..JOBS]
        .into_iter()
        .map(|range| {
            tokio::spawn(submit(
                client.clone(),
                Arc::clone(&module),
                runs.clone(),
                range,
            ))
        })
        .collect();

    // The faults, while jobs stream in and run.
    let mut faults = Faults::default();
    for _ in 0..ROUNDS {
        tokio::time::sleep(schedule.millis(200, 900)).await;
        match schedule.below(3) {
            0 => {
                server.kill9();
                tokio::time::sleep(schedule.millis(0, 800)).await;
                server = Server::start_with(&data, port, &args).await;
                faults.orchestrator_kills += 1;
            }
            1 => {
                let node = &mut nodes[schedule.below(NODES as u64) as usize];
                node.kill9();
                tokio::time::sleep(schedule.millis(0, 3000)).await;
                node.start();
                faults.node_kills += 1;
            }
            _ => {
                let node = &nodes[schedule.below(NODES as u64) as usize];
                node.proxy.set_cut(true);
                // Past the reschedule grace period (2 s) about half the time.
                tokio::time::sleep(schedule.millis(300, 4000)).await;
                node.proxy.set_cut(false);
                faults.partitions += 1;
            }
        }
    }

    let mut acknowledged = Vec::new();
    for submitter in submitters {
        acknowledged.extend(submitter.await.expect("a submitter"));
    }
    assert_eq!(acknowledged.len(), JOBS);

    // Settle: every acknowledged job reaches a terminal state.
    let settled = common::runs::settle(
        &client,
        acknowledged.iter().cloned().collect(),
        started,
        LIMIT,
    )
    .await;
    let states: BTreeMap<JobId, JobStateType> = settled
        .iter()
        .map(|(id, state)| (id.clone(), state.state_type))
        .collect();
    // Why jobs did not complete, counted by message.
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for state in settled.values() {
        if state.state_type != JobStateType::Completed {
            *reasons.entry(state.message.clone()).or_default() += 1;
        }
    }

    // What ran, counted outside the system: one file per execution, one byte per run.
    let runs_of = common::runs::recorded(&runs);
    let duplicated: Vec<_> = runs_of.iter().filter(|(_, n)| **n > 1).collect();

    // Every execution the orchestrator knows, of every job (acknowledged or not).
    let mut known_executions = BTreeSet::new();
    let mut rescheduled = 0;
    let mut completed_without_a_run = Vec::new();
    let mut completed_twice = Vec::new();
    for job in all_jobs(&client).await {
        let executions = client
            .job_executions(job.id.as_str())
            .await
            .expect("executions")
            .items;
        let ran = executions
            .iter()
            .filter(|e| runs_of.contains_key(e.id.as_str()))
            .count();
        if ran > 1 {
            rescheduled += 1;
        }
        let completed: Vec<_> = executions
            .iter()
            .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
            .collect();
        if completed.len() > 1 {
            let history = client
                .job_history(job.id.as_str(), "", "", "")
                .await
                .map(|h| h.items)
                .unwrap_or_default();
            let story: Vec<String> = history
                .iter()
                .map(|e| {
                    format!(
                        "{} {:?} {} [{}]",
                        e.time,
                        e.execution_id.as_ref().map(|id| id.short()),
                        e.event.message,
                        e.actor
                    )
                })
                .collect();
            completed_twice.push(format!("{}:\n  {}", job.id, story.join("\n  ")));
        }
        for execution in &completed {
            if runs_of.get(execution.id.as_str()) != Some(&1) {
                completed_without_a_run.push(execution.id.clone());
            }
        }
        known_executions.extend(executions.into_iter().map(|e| e.id.to_string()));
    }
    let phantom: Vec<_> = runs_of
        .keys()
        .filter(|id| !known_executions.contains(*id))
        .collect();

    let completed = states
        .values()
        .filter(|s| **s == JobStateType::Completed)
        .count();
    println!(
        "chaos: faults injected {} (orchestrator kill -9 {}, node kill -9 {}, partitions {}); \
         jobs acknowledged {}, completed {completed}, failed or stopped {}; lost 0; \
         executions run {}, run twice {}, runs unknown to the orchestrator {}; \
         jobs run on more than one node (rescheduled) {rescheduled}; {:.1} s",
        faults.orchestrator_kills + faults.node_kills + faults.partitions,
        faults.orchestrator_kills,
        faults.node_kills,
        faults.partitions,
        acknowledged.len(),
        states.len() - completed,
        runs_of.len(),
        duplicated.len(),
        phantom.len(),
        started.elapsed().as_secs_f64()
    );
    println!("why jobs did not complete: {reasons:#?}");
    assert!(
        duplicated.is_empty(),
        "executions that ran twice: {duplicated:?}"
    );
    assert!(
        phantom.is_empty(),
        "runs of executions the orchestrator does not know: {phantom:?}"
    );
    assert!(
        completed_without_a_run.is_empty(),
        "completed executions with no recorded run: {completed_without_a_run:?}"
    );
    assert!(
        completed_twice.is_empty(),
        "jobs completed twice:\n{}",
        completed_twice.join("\n")
    );
    assert!(
        completed * 10 >= JOBS * 9,
        "only {completed} of {JOBS} jobs completed (retries should absorb the faults)"
    );

    let verify = server.cli(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "the audit chain does not verify:\n{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    for node in &mut nodes {
        node.kill9();
    }
}
