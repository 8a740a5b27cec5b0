//! Scale: N simulated compute nodes connected to a real orchestrator process (the release
//! `bacalhau serve --orchestrator`) over the real node protocol (WebSocket or QUIC, handshake,
//! heartbeats at the orchestrator's interval, acks, execution updates). Reports the
//! orchestrator's CPU and RSS while the nodes idle, placement latency (submit → the node
//! receives `RunExecution`) while 1 000 noop jobs arrive at a steady 100 jobs/s, and
//! throughput: JOBS noop jobs from 32 clients, each keeping at most 128 of its jobs not yet
//! seen Completed, with the rate in each window of 10 000 completions. The simulated nodes live
//! in this process and complete each execution at once, so the figures are the
//! orchestrator's alone (its store is durable: every acknowledged change is fsync'd).
//!
//! `cargo bench -p bacalhau-api --bench scale [-- NODES JOBS IDLE_SECS [SCRAPE_MS [ws|quic [HEARTBEAT_S]]]]`
//! Needs `cargo build --release -p bacalhau` first (`BACALHAU_BENCH_BINARY` runs another
//! build, e.g. an older commit's, for an A/B). With SCRAPE_MS (0: none), `/metrics` is fetched
//! that often during the throughput run, as a Prometheus would, and the scrapes are reported.
//! With `quic` the nodes connect over QUIC (`Orchestrator.QUIC.Enabled`) instead of one
//! WebSocket each: the orchestrator then holds one UDP socket for all of them, where a
//! WebSocket per node needs a file descriptor per node (past 20 000 nodes where the hard
//! open-file limit is 20 000). With HEARTBEAT_S the nodes heartbeat that often (our default is
//! 5 s, upstream's 15 s) and a node counts as disconnected after four missed heartbeats
//! (upstream's 15 s and 1 min).

mod common;

use bacalhau_api::node_channel::websocket_connector;
use bacalhau_api::node_quic::QuicDialer;
use bacalhau_client::ApiClient;
use bacalhau_compute::{Connector, Link};
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

/// How the simulated nodes reach the orchestrator.
enum Transport {
    /// A WebSocket each (`ws://.../api/v1/compute/connect`).
    WebSocket,
    /// A QUIC connection each, all through one UDP socket of this process.
    Quic(Arc<QuicDialer>),
}

impl Transport {
    fn from_args() -> Result<Self, BoxError> {
        match std::env::args().filter(|a| !a.starts_with("--")).nth(5) {
            None => Ok(Self::WebSocket),
            Some(word) if word == "ws" => Ok(Self::WebSocket),
            Some(word) if word == "quic" => {
                // The orchestrator's certificate is made at its start: nothing to check it by.
                let trust = bacalhau_api::tls::client_config(None, true)?;
                Ok(Self::Quic(QuicDialer::new(&trust)?))
            }
            Some(other) => Err(format!("transport {other:?}: ws or quic").into()),
        }
    }

    /// What the orchestrator is started with.
    fn serve_args(&self) -> Vec<String> {
        match self {
            Self::WebSocket => vec![],
            Self::Quic(_) => vec!["-c".into(), "Orchestrator.QUIC.Enabled=true".into()],
        }
    }

    fn connector(&self, port: u16) -> Connector {
        match self {
            Self::WebSocket => websocket_connector(
                format!("ws://127.0.0.1:{port}{}", bacalhau_protocol::CONNECT_PATH),
                None,
            ),
            Self::Quic(dialer) => dialer.connector(format!("127.0.0.1:{port}")),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::WebSocket => "WebSocket",
            Self::Quic(_) => "QUIC",
        }
    }
}

/// A simulated node's handshake, saying it applied the orchestrator's messages up to
/// `applied`: its link, the heartbeat interval it was given, and what the orchestrator applied
/// of the node's messages.
async fn join(
    connector: &Connector,
    name: &str,
    applied: u64,
) -> Result<(Link, Duration, u64), BoxError> {
    let mut link = connector().await?;
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
            last_applied: applied,
        })))
        .await?;
    match link.incoming.recv().await {
        Some(Frame::Welcome(welcome)) if welcome.accepted => Ok((
            link,
            Duration::from_millis(welcome.heartbeat_interval_ms.max(100)),
            welcome.last_applied,
        )),
        other => Err(format!("{name}: no welcome: {other:?}").into()),
    }
}

/// A simulated node's side of the reliable channel, kept across its connections: what it
/// applied of the orchestrator's messages, and its own messages not yet acknowledged.
#[derive(Default)]
struct Channel {
    applied: u64,
    sent: u64,
    unacknowledged: std::collections::VecDeque<(u64, Message)>,
}

/// A simulated node for the whole run: joins (at most 256 handshakes at a time), serves, and
/// when its connection ends (the orchestrator was killed) dials again with backoff, resuming
/// the channel where the orchestrator left it. `joined` hears of each successful handshake.
async fn run_node(
    connector: Connector,
    name: String,
    arrivals: Arrivals,
    repeats: Arc<std::sync::atomic::AtomicUsize>,
    handshakes: Arc<tokio::sync::Semaphore>,
    joined: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let mut channel = Channel::default();
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = {
            let Ok(_permit) = handshakes.acquire().await else {
                return;
            };
            join(&connector, &name, channel.applied).await
        };
        let (link, interval, theirs) = match attempt {
            Ok(joined) => joined,
            Err(_) => {
                // Spread the retries, as real nodes' jittered backoff does.
                let jitter = Duration::from_millis(u64::from(rand_jitter(&name)) % 100);
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let _ = joined.send(());
        if serve(link, interval, &arrivals, &repeats, &mut channel, theirs)
            .await
            .is_err()
        {
            tokio::time::sleep(backoff).await;
        }
    }
}

/// A small per-node number to spread retries (no clock or randomness needed).
fn rand_jitter(name: &str) -> u8 {
    name.bytes()
        .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b))
}

/// A joined node until its connection ends: heartbeats, its unacknowledged messages sent
/// again (the orchestrator applied up to `theirs`), and every execution accepted and
/// completed at once, following the channel's rules (a replay is acknowledged, a gap ends the
/// connection).
async fn serve(
    mut link: Link,
    interval: Duration,
    arrivals: &Arrivals,
    repeats: &std::sync::atomic::AtomicUsize,
    channel: &mut Channel,
    theirs: u64,
) -> Result<(), BoxError> {
    let outgoing = link.outgoing.clone();
    let heartbeats = tokio::spawn(async move {
        // Nodes start at different moments, so their heartbeats spread over the interval.
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let beat = Frame::Heartbeat(Box::new(Heartbeat {
                available: capacity(),
                queued: Resources::default(),
                running: 0,
                enqueued: 0,
                ipfs_roots: None,
            }));
            if outgoing.send(beat).await.is_err() {
                return;
            }
        }
    });
    let served = async {
        while channel
            .unacknowledged
            .front()
            .is_some_and(|(seq, _)| *seq <= theirs)
        {
            channel.unacknowledged.pop_front();
        }
        for (seq, body) in channel.unacknowledged.clone() {
            let body = Box::new(body);
            link.outgoing.send(Frame::Message { seq, body }).await?;
        }
        while let Some(frame) = link.incoming.recv().await {
            let (seq, body) = match frame {
                Frame::Message { seq, body } => (seq, body),
                Frame::Ack { seq } => {
                    while channel
                        .unacknowledged
                        .front()
                        .is_some_and(|(theirs, _)| *theirs <= seq)
                    {
                        channel.unacknowledged.pop_front();
                    }
                    continue;
                }
                _ => continue,
            };
            if seq > channel.applied + 1 {
                return Err(format!("message {} is missing", channel.applied + 1).into());
            }
            // Applying a message and queueing its reports happen together (before anything
            // is sent that may fail), as the real node's one transaction does.
            let first_new = channel.unacknowledged.len();
            if seq == channel.applied + 1 {
                channel.applied = seq;
                if let Message::RunExecution { execution, .. } = *body {
                    {
                        let mut arrivals = arrivals.lock().map_err(|_| "poisoned")?;
                        if arrivals.contains_key(&execution.job_id) {
                            // A noop execution completes at once: a second one is a second run.
                            repeats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        arrivals
                            .entry(execution.job_id.clone())
                            .or_insert_with(Instant::now);
                    }
                    for state in [
                        ExecutionStateType::BidAccepted,
                        ExecutionStateType::Completed,
                    ] {
                        channel.sent += 1;
                        let update = Message::ExecutionUpdate(ExecutionUpdate {
                            execution_id: execution.id.clone(),
                            job_id: execution.job_id.clone(),
                            state,
                            message: String::new(),
                            run_output: None,
                            published_result: None,
                            details: Default::default(),
                            retryable: None,
                        });
                        channel.unacknowledged.push_back((channel.sent, update));
                    }
                }
            }
            link.outgoing.send(Frame::Ack { seq }).await?;
            let fresh: Vec<_> = channel.unacknowledged.range(first_new..).cloned().collect();
            for (seq, body) in fresh {
                let body = Box::new(body);
                link.outgoing.send(Frame::Message { seq, body }).await?;
            }
        }
        Ok::<_, BoxError>(())
    };
    let result = served.await;
    heartbeats.abort();
    result
}

/// The rate in each window of 10 000 completions (a tenth of the run when smaller), so a rate
/// that falls as the store grows shows: when the sampled count crossed each window's edges,
/// interpolated between samples. Answers the window's size and the rates.
fn window_rates(
    started: Instant,
    before: u64,
    samples: &[(Instant, u64)],
    jobs: usize,
) -> (usize, Vec<f64>) {
    let size = (jobs / 10).clamp(1, 10_000);
    let crossing = |target: u64| -> Option<Instant> {
        let mut previous = (started, before);
        for &(at, done) in samples {
            if done >= target {
                let (from, from_done) = previous;
                let span = done.saturating_sub(from_done).max(1) as f64;
                let part = target.saturating_sub(from_done) as f64 / span;
                return Some(from + (at - from).mul_f64(part.clamp(0.0, 1.0)));
            }
            previous = (at, done);
        }
        None
    };
    let mut rates = Vec::new();
    let mut from = started;
    for edge in (size..=jobs).step_by(size) {
        let Some(to) = crossing(before + edge as u64) else {
            break;
        };
        rates.push(size as f64 / (to - from).as_secs_f64().max(1e-9));
        from = to;
    }
    (size, rates)
}

/// The sum of the `/metrics` samples whose series name contains `series` and whose labels
/// contain `label` (such as `connection="CONNECTED"`).
async fn metric_sum(
    http: &reqwest::Client,
    url: &str,
    series: &str,
    label: &str,
) -> Result<u64, BoxError> {
    let text = http.get(url).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|line| line.contains(series) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// How many jobs the orchestrator counts Completed, from its `/metrics`.
async fn completed_jobs(http: &reqwest::Client, url: &str) -> Result<u64, BoxError> {
    metric_sum(http, url, "_jobs{", "state=\"Completed\"").await
}

/// How many nodes the orchestrator counts connected, from its `/metrics`.
async fn connected_nodes(http: &reqwest::Client, url: &str) -> Result<u64, BoxError> {
    metric_sum(http, url, "_nodes{", "connection=\"CONNECTED\"").await
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
    let transport = Transport::from_args()?;
    let heartbeat_secs = arg(6, 0);
    let mut serve_args = transport.serve_args();
    if heartbeat_secs > 0 {
        serve_args.extend([
            "-c".into(),
            format!("Compute.Heartbeat.Interval={heartbeat_secs}s"),
            "-c".into(),
            format!(
                "Orchestrator.NodeManager.DisconnectTimeout={}s",
                heartbeat_secs * 4
            ),
        ]);
    }
    let serve_args: Vec<&str> = serve_args.iter().map(String::as_str).collect();
    raise_file_limit()?;
    let binary = common::release_binary()?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut orchestrator = common::spawn_orchestrator(&binary, port, dir.path(), &serve_args)?;
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
    let connector = transport.connector(port);
    let arrivals: Arrivals = Arc::default();
    let connecting = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(256));
    let repeats = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (joined, mut handshakes) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..nodes {
        tokio::spawn(run_node(
            Arc::clone(&connector),
            format!("sim-{i:05}"),
            Arc::clone(&arrivals),
            Arc::clone(&repeats),
            Arc::clone(&semaphore),
            joined.clone(),
        ));
    }
    let mut reported = Instant::now();
    for welcomed in 0..nodes {
        handshakes
            .recv()
            .await
            .ok_or("the simulated nodes ended before joining")?;
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{welcomed} of {nodes} nodes welcomed after {:.0} s",
                connecting.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
    }
    // Every node is in once the orchestrator counts them all connected (its `/metrics`: a
    // node listing of 50 000 nodes is ~100 MB of JSON, too heavy to poll).
    let http = reqwest::Client::new();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    loop {
        let connected = connected_nodes(&http, &metrics_url).await.unwrap_or(0);
        if connected >= nodes as u64 {
            break;
        }
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{connected} of {nodes} nodes connected after {:.0} s",
                connecting.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        if connecting.elapsed() > Duration::from_secs(600) {
            let _ = orchestrator.0.kill();
            return Err(format!("only {connected} of {nodes} nodes joined in 10 min").into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let joined_in = connecting.elapsed();
    eprintln!(
        "{nodes} nodes connected in {:.1} s",
        joined_in.as_secs_f64()
    );

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
    // Each client keeps at most WINDOW of its jobs unconfirmed: the rate is sustained
    // submit → Completed, not a burst of submissions measured before they are done.
    const WINDOW: usize = 128;
    // The orchestrator's own count of completed jobs, sampled every 200 ms: each window's
    // rate is when the count crossed its edges, not when clients happened to look.
    let (stop_sampling, mut sampling_stopped) = tokio::sync::watch::channel(false);
    let sampler = {
        let (http, url) = (http.clone(), metrics_url.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut ticks = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = sampling_stopped.changed() => return samples,
                }
                if let Ok(done) = completed_jobs(&http, &url).await {
                    samples.push((Instant::now(), done));
                }
            }
        })
    };
    let completed_before = completed_jobs(&http, &metrics_url).await?;
    let started = Instant::now();
    let mut clients = Vec::new();
    for worker in 0..concurrency {
        let (client, job) = (client.clone(), job.clone());
        let share = jobs / concurrency + usize::from(worker < jobs % concurrency);
        clients.push(tokio::spawn(async move {
            let mut unconfirmed = std::collections::VecDeque::with_capacity(WINDOW);
            for submitted in 0..share {
                unconfirmed.push_back(client.put_job(&job, false).await?.job_id);
                let last = submitted + 1 == share;
                while unconfirmed.len() > WINDOW || (last && !unconfirmed.is_empty()) {
                    let Some(id) = unconfirmed.pop_front() else {
                        break;
                    };
                    common::wait_completed(&client, &id).await?;
                }
            }
            Ok::<_, BoxError>(())
        }));
    }
    for c in clients {
        c.await??;
    }
    let jobs_per_s = jobs as f64 / started.elapsed().as_secs_f64();
    let _ = stop_sampling.send(true);
    let mut samples = sampler.await?;
    samples.push((Instant::now(), completed_jobs(&http, &metrics_url).await?));
    let windows = window_rates(started, completed_before, &samples, jobs);
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

    // The reconnect storm: jobs acknowledged, then the orchestrator killed (SIGKILL) at once
    // and started again on the same store and port; every node dials back and the jobs end.
    let storm_jobs = 1000.min(jobs.max(1));
    let mut storm_ids = Vec::with_capacity(storm_jobs);
    for _ in 0..storm_jobs {
        storm_ids.push(client.put_job(&job, false).await?.job_id);
    }
    let _ = orchestrator.0.kill();
    let _ = orchestrator.0.wait();
    let restarted = Instant::now();
    orchestrator = common::spawn_orchestrator(&binary, port, dir.path(), &serve_args)?;
    let mut reported = Instant::now();
    let back_in = loop {
        let connected = connected_nodes(&http, &metrics_url).await.unwrap_or(0);
        if connected >= nodes as u64 {
            break Some(restarted.elapsed());
        }
        if reported.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "storm: {connected} of {nodes} nodes back after {:.0} s",
                restarted.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        if restarted.elapsed() > Duration::from_secs(300) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut storm_ended = HashMap::<JobStateType, usize>::new();
    for id in &storm_ids {
        let state = loop {
            let job = client.get_job(id, "").await?.job;
            let state = job.state.state_type;
            if state.is_terminal() || restarted.elapsed() > Duration::from_secs(120) {
                if state != JobStateType::Completed {
                    eprintln!("storm: job {id} ended {state}: {}", job.state.message);
                    for e in client.job_executions(id).await?.items {
                        eprintln!(
                            "storm:   execution {} on {}: {:?} {:?} desired {:?}",
                            e.id,
                            e.node_id,
                            e.compute_state.state_type,
                            e.compute_state.message,
                            e.desired_state.state_type
                        );
                    }
                }
                break state;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        *storm_ended.entry(state).or_default() += 1;
    }
    let _ = orchestrator.0.kill();
    let _ = orchestrator.0.wait();
    let over = match heartbeat_secs {
        0 => transport.name().to_string(),
        secs => format!("{}, heartbeat every {secs} s", transport.name()),
    };
    // Up to 10 000 nodes the targets are an earlier issue's; 50 000 nodes have their own (at
    // upstream's 15 s heartbeat): a quarter of a core, 1.5 GiB.
    let (cpu_target, rss_target) = if nodes > 10_000 {
        ("25 %", "1536 MiB")
    } else {
        ("10 %", "1024 MiB")
    };
    println!(
        "| {nodes} connected nodes ({over}): orchestrator CPU at idle (heartbeats on) | {idle_cpu:.1} % of a core | target < {cpu_target} | |"
    );
    println!(
        "| {nodes} connected nodes ({over}): orchestrator RSS idle / after {} jobs | {idle_rss:.0} / {busy_rss:.0} MiB | target < {rss_target} | |",
        placed_jobs + jobs
    );
    println!(
        "| {nodes} connected nodes ({over}): placement (submit → RunExecution at the node) p50 / p99, {placed_jobs} jobs at 100/s | {:.1} / {:.1} ms | target p99 < 50 ms | |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    let (window, rates) = windows;
    let lowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "| {nodes} simulated nodes ({over}): noop jobs/s submitted → Completed in each window of {window} jobs (lowest {lowest:.0}) | {} | target ≥ 2000 sustained | |",
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!("throughput_jobs_per_s={jobs_per_s:.0}");
    eprintln!(
        "throughput_label=noop jobs/s submitted → Completed ({nodes} simulated nodes, orchestrator process with its durable store, {jobs} jobs, {concurrency} clients)"
    );
    println!(
        "| {nodes} nodes ({over}): all joined (handshake, 256 at a time) in | {:.1} s | | |",
        joined_in.as_secs_f64()
    );
    println!(
        "| {nodes} nodes ({over}): reconnect storm, orchestrator killed (SIGKILL) and started again: all {nodes} connected again after | {} | target < 60 s | |",
        back_in.map_or("not within 300 s".to_string(), |d| format!(
            "{:.1} s",
            d.as_secs_f64()
        ))
    );
    let twice = repeats.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "| {nodes} nodes ({over}): {storm_jobs} jobs acknowledged just before the kill: Completed / ended otherwise / run twice | {} / {} / {twice} | target {storm_jobs} / 0 / 0 | |",
        storm_ended
            .get(&JobStateType::Completed)
            .copied()
            .unwrap_or(0),
        storm_ids.len()
            - storm_ended
                .get(&JobStateType::Completed)
                .copied()
                .unwrap_or(0)
    );
    Ok(())
}
