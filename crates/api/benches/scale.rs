//! Scale: N simulated compute nodes connected to a real orchestrator process (the release
//! `bacalhau serve --orchestrator`) over the real node protocol (WebSocket, handshake,
//! heartbeats at the orchestrator's interval, acks, execution updates). Reports the
//! orchestrator's CPU and RSS while the nodes idle, placement latency (submit → the node
//! receives `RunExecution`) while 1 000 noop jobs arrive at a steady 100 jobs/s, and
//! throughput: JOBS noop jobs from 32 clients, submit → Completed. The simulated nodes live
//! in this process and complete each execution at once, so the figures are the
//! orchestrator's alone (its store is durable: every acknowledged change is fsync'd).
//!
//! `cargo bench -p bacalhau-api --bench scale [-- NODES JOBS IDLE_SECS [SCRAPE_MS]]`
//! Needs `cargo build --release -p bacalhau` first (`BACALHAU_BENCH_BINARY` runs another
//! build, e.g. an older commit's, for an A/B). With SCRAPE_MS, `/metrics` is fetched that
//! often during the throughput run, as a Prometheus would, and the scrapes are reported.

mod common;

use bacalhau_api::node_channel::websocket_connector;
use bacalhau_client::ApiClient;
use bacalhau_compute::Link;
use bacalhau_models::node::ComputeNodeInfo;
use bacalhau_models::{
    ExecutionStateType, JobId, JobStateType, NodeId, NodeInfo, Resources, parse_job_spec,
};
use bacalhau_protocol::{ExecutionUpdate, Frame, Heartbeat, Hello, Message};
use common::{BoxError, arg, percentile};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When each job's first execution reached a node.
type Arrivals = Arc<Mutex<HashMap<JobId, Instant>>>;

fn capacity() -> Resources {
    Resources {
        cpu: 64.0,
        memory: 256 << 30,
        disk: 1 << 40,
        gpu: 0,
        gpus: vec![],
    }
}

/// A simulated node's handshake: its link, and the heartbeat interval it was given.
async fn join(url: String, name: &str) -> Result<(Link, Duration), BoxError> {
    let mut link = websocket_connector(url, None)().await?;
    let info = NodeInfo {
        node_id: NodeId::from(name),
        node_type: bacalhau_models::node::NodeType::Compute,
        supported_protocols: vec![bacalhau_protocol::PROTOCOL.into()],
        compute_node_info: ComputeNodeInfo {
            execution_engines: vec!["noop".into()],
            max_capacity: capacity(),
            available_capacity: capacity(),
            max_job_requirements: capacity(),
            ..Default::default()
        },
        ..Default::default()
    };
    link.outgoing
        .send(Frame::Hello(Box::new(Hello {
            node_info: info,
            token: String::new(),
            last_applied: 0,
        })))
        .await?;
    let interval = match link.incoming.recv().await {
        Some(Frame::Welcome(welcome)) if welcome.accepted => {
            Duration::from_millis(welcome.heartbeat_interval_ms.max(100))
        }
        other => return Err(format!("{name}: no welcome: {other:?}").into()),
    };
    Ok((link, interval))
}

/// A joined node: heartbeats, and every execution accepted and completed at once.
async fn serve(mut link: Link, interval: Duration, arrivals: Arrivals) -> Result<(), BoxError> {
    let outgoing = link.outgoing.clone();
    tokio::spawn(async move {
        // Nodes start at different moments, so their heartbeats spread over the interval.
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let beat = Frame::Heartbeat(Heartbeat {
                available: capacity(),
                queued: Resources::default(),
                running: 0,
                enqueued: 0,
                ipfs_roots: None,
            });
            if outgoing.send(beat).await.is_err() {
                return;
            }
        }
    });
    let mut seq = 0;
    while let Some(frame) = link.incoming.recv().await {
        let Frame::Message { seq: theirs, body } = frame else {
            continue;
        };
        link.outgoing.send(Frame::Ack { seq: theirs }).await?;
        let Message::RunExecution { execution, .. } = body else {
            continue;
        };
        arrivals
            .lock()
            .map_err(|_| "poisoned")?
            .entry(execution.job_id.clone())
            .or_insert_with(Instant::now);
        for state in [
            ExecutionStateType::BidAccepted,
            ExecutionStateType::Completed,
        ] {
            seq += 1;
            let update = ExecutionUpdate {
                execution_id: execution.id.clone(),
                job_id: execution.job_id.clone(),
                state,
                message: String::new(),
                run_output: None,
                published_result: None,
                details: Default::default(),
                retryable: None,
            };
            link.outgoing
                .send(Frame::Message {
                    seq,
                    body: Message::ExecutionUpdate(update),
                })
                .await?;
        }
    }
    Ok(())
}

/// The process's CPU time (user + system) so far.
fn cpu_time(pid: u32) -> Result<Duration, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    // Linux reports in clock ticks of 1/100 s on every platform this runs on.
    Ok(Duration::from_millis(ticks * 10))
}

/// Lets this process (and the orchestrator it starts) hold one socket per node.
/// As root, past the hard limit too (up to the kernel's `nr_open`): 50 000 nodes need
/// 100 000 sockets between the two processes.
fn raise_file_limit() -> Result<(), BoxError> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|n| n.trim().parse::<u64>().ok());
    if let Some(ceiling) = ceiling {
        let raised = Rlimit {
            current: Some(ceiling),
            maximum: Some(ceiling),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Ok(());
        }
    }
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let nodes = arg(1, 1000);
    let jobs = arg(2, 1000);
    let idle_secs = arg(3, 20) as u64;
    let scrape_ms = arg(4, 0) as u64;
    raise_file_limit()?;
    let binary = common::release_binary()?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut orchestrator = common::spawn_orchestrator(&binary, port, dir.path())?;
    let pid = orchestrator.0.id();
    let client = ApiClient::new(&format!("http://127.0.0.1:{port}"))?;
    let ready = Instant::now();
    while client.alive().await.is_err() {
        if ready.elapsed() > Duration::from_secs(30) {
            let _ = orchestrator.0.kill();
            return Err("the orchestrator did not answer within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("ws://127.0.0.1:{port}{}", bacalhau_protocol::CONNECT_PATH);
    let arrivals: Arrivals = Arc::default();
    let connecting = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(256));
    let mut handshakes = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let (url, arrivals, semaphore) =
            (url.clone(), Arc::clone(&arrivals), Arc::clone(&semaphore));
        handshakes.push(tokio::spawn(async move {
            let name = format!("sim-{i:05}");
            // At most 256 handshakes at a time; a joined node holds no permit.
            let joined = {
                let _permit = semaphore.acquire().await.map_err(|e| e.to_string())?;
                join(url, &name).await.map_err(|e| e.to_string())?
            };
            let (link, interval) = joined;
            tokio::spawn(async move {
                if let Err(e) = serve(link, interval, arrivals).await {
                    eprintln!("{name}: {e}");
                }
            });
            Ok::<_, String>(())
        }));
    }
    for handshake in handshakes {
        handshake.await.map_err(|e| e.to_string())??;
    }
    // Every node is known once the orchestrator lists them all.
    loop {
        let listed = client
            .list_nodes()
            .await
            .map(|r| r.nodes.len())
            .unwrap_or(0);
        if listed >= nodes {
            break;
        }
        if connecting.elapsed() > Duration::from_secs(600) {
            let _ = orchestrator.0.kill();
            return Err(format!("only {listed} of {nodes} nodes joined in 10 min").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let joined_in = connecting.elapsed();

    // Idle: heartbeats only.
    let (cpu0, t0) = (cpu_time(pid)?, Instant::now());
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_cpu = (cpu_time(pid)? - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    let idle_rss = common::rss_mib(pid);

    // Placement while 1 000 jobs arrive at 100 jobs/s.
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;
    let placed_jobs = 1000;
    let submitted: Arc<Mutex<Vec<(JobId, Instant)>>> = Arc::default();
    let mut pacer = tokio::time::interval(Duration::from_millis(10));
    let mut submits = Vec::with_capacity(placed_jobs);
    for _ in 0..placed_jobs {
        pacer.tick().await;
        let (client, job, submitted) = (client.clone(), job.clone(), Arc::clone(&submitted));
        submits.push(tokio::spawn(async move {
            let at = Instant::now();
            let id = client.put_job(&job, false).await?.job_id;
            submitted
                .lock()
                .map_err(|_| "poisoned")?
                .push((JobId::from(id), at));
            Ok::<_, BoxError>(())
        }));
    }
    for submit in submits {
        submit.await??;
    }
    let waiting = Instant::now();
    while arrivals.lock().map_err(|_| "poisoned")?.len() < placed_jobs
        && waiting.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<Duration> = {
        let arrivals = arrivals.lock().map_err(|_| "poisoned")?;
        let submitted = submitted.lock().map_err(|_| "poisoned")?;
        submitted
            .iter()
            .filter_map(|(id, at)| {
                arrivals
                    .get(id)
                    .map(|got| got.saturating_duration_since(*at))
            })
            .collect()
    };
    latencies.sort();
    if latencies.len() < placed_jobs {
        let _ = orchestrator.0.kill();
        return Err(format!("only {} of {placed_jobs} jobs were placed", latencies.len()).into());
    }

    // Throughput: JOBS jobs from 32 clients, each then waiting for its own to complete.
    let concurrency = 32;
    let (stop_scraping, mut scraping_stopped) = tokio::sync::watch::channel(false);
    let scraper = (scrape_ms > 0).then(|| {
        let url = format!("http://127.0.0.1:{port}/metrics");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut took = Vec::new();
            let mut ticks = tokio::time::interval(Duration::from_millis(scrape_ms));
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = scraping_stopped.changed() => return took,
                }
                let started = Instant::now();
                if let Ok(response) = http.get(&url).send().await
                    && response.bytes().await.is_ok()
                {
                    took.push(started.elapsed());
                }
            }
        })
    });
    let started = Instant::now();
    let mut clients = Vec::new();
    for worker in 0..concurrency {
        let (client, job) = (client.clone(), job.clone());
        let share = jobs / concurrency + usize::from(worker < jobs % concurrency);
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(share);
            for _ in 0..share {
                ids.push(client.put_job(&job, false).await?.job_id);
            }
            for id in ids {
                loop {
                    let state = client.get_job(&id, "").await?.job.state.state_type;
                    match state {
                        JobStateType::Completed => break,
                        JobStateType::Failed | JobStateType::Stopped => {
                            return Err(format!("job {id} ended {state}").into());
                        }
                        _ => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
            }
            Ok::<_, BoxError>(())
        }));
    }
    for c in clients {
        c.await??;
    }
    let jobs_per_s = jobs as f64 / started.elapsed().as_secs_f64();
    let _ = stop_scraping.send(true);
    if let Some(scraper) = scraper {
        let mut took = scraper.await?;
        took.sort();
        if !took.is_empty() {
            eprintln!(
                "scrapes={} scrape_p50_ms={:.2} scrape_p99_ms={:.2}",
                took.len(),
                percentile(&took, 0.5).as_secs_f64() * 1e3,
                percentile(&took, 0.99).as_secs_f64() * 1e3
            );
        }
    }
    let busy_rss = common::rss_mib(pid);
    let _ = orchestrator.0.kill();
    let _ = orchestrator.0.wait();
    println!(
        "| {nodes} connected nodes: orchestrator CPU at idle (heartbeats on) | {idle_cpu:.1} % of a core | target < 10 % | |"
    );
    println!(
        "| {nodes} connected nodes: orchestrator RSS idle / after {} jobs | {idle_rss:.0} / {busy_rss:.0} MiB | target < 1024 MiB | |",
        placed_jobs + jobs
    );
    println!(
        "| {nodes} connected nodes: placement (submit → RunExecution at the node) p50 / p99, {placed_jobs} jobs at 100/s | {:.1} / {:.1} ms | target p99 < 50 ms | |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    eprintln!("throughput_jobs_per_s={jobs_per_s:.0}");
    eprintln!(
        "throughput_label=noop jobs/s submitted → Completed ({nodes} simulated nodes, orchestrator process with its durable store, {jobs} jobs, {concurrency} clients)"
    );
    eprintln!("{nodes} nodes joined in {:.1} s", joined_in.as_secs_f64());
    Ok(())
}
