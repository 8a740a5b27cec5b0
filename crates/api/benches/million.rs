//! A million jobs in the store: how fast the listings, a job's details and the web UI's Jobs
//! page answer, how long the orchestrator takes to start on it, what a job costs in bytes and
//! what the process holds in memory.
//!
//! The store is written directly (the orchestrator's own `Store` and `Writer`, transactions of
//! 5 000 jobs): each job as a run leaves it, with its version, one execution on one of 100
//! nodes and four history events. 95 % Completed, 3 % Failed, 1 % Running, 1 % Queued; 90 %
//! in `default`, the rest over ten namespaces; labels `team` (one of ten) and `batch` (one per
//! thousand jobs). Then the release binary is started on it as an orchestrator and queried
//! over HTTP (after dropping the page cache, when run as root, so the start reads the store
//! from disk); every figure is printed beside the floor of one HTTP round trip to the same
//! server (`/api/v1/agent/alive`). The store holds no pending evaluation, so the start's
//! requeue has nothing to do.
//!
//! Needs `cargo build --release -p bacalhau` first (`BACALHAU_BENCH_BINARY` runs another
//! binary). `cargo bench -p bacalhau-api --bench million [-- JOBS]` (default 1 000 000).

mod common;

use bacalhau_models::history::Topic;
use bacalhau_models::{
    Execution, ExecutionDesiredStateType, ExecutionId, ExecutionStateType, Job, JobHistory,
    JobHistoryType, JobId, JobStateType, NodeId, State, parse_job_spec, time,
};
use bacalhau_orchestrator::STORE_FILE;
use bacalhau_orchestrator::store::{Store, StoreError};
use common::{BoxError, arg, ms, percentile, rss_mib};
use std::time::{Duration, Instant};

const BATCH: usize = 5_000;
/// When the first job was created: 2026-01-01, one job every 10 ms after it.
const START: i64 = 1_767_225_600_000_000_000;

fn state_of(i: usize) -> JobStateType {
    match i % 100 {
        0..=94 => JobStateType::Completed,
        95..=97 => JobStateType::Failed,
        98 => JobStateType::Running,
        _ => JobStateType::Queued,
    }
}

fn namespace_of(i: usize) -> String {
    // A stride that is prime to the state cycle, so each namespace holds every state.
    match i % 97 {
        0..=86 => "default".to_string(),
        n => format!("lab-{}", n - 87),
    }
}

fn event(job: &Job, execution: Option<&ExecutionId>, topic: Topic, message: &str) -> JobHistory {
    let stamp = time::rfc3339(job.modify_time);
    JobHistory {
        seq_num: 0,
        r#type: if execution.is_some() {
            JobHistoryType::ExecutionLevel
        } else {
            JobHistoryType::JobLevel
        },
        job_id: job.id.clone(),
        job_version: 1,
        execution_id: execution.cloned(),
        event: bacalhau_models::history::Event {
            message: message.into(),
            topic,
            timestamp: stamp.clone(),
            details: Default::default(),
        },
        time: stamp,
        actor: "bench".into(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Job `i` as a run leaves it, its execution and its history.
fn record(template: &Job, i: usize) -> (Job, Execution, Vec<JobHistory>) {
    let mut job = template.clone();
    job.id = JobId::generate();
    job.name = job.id.to_string();
    job.namespace = namespace_of(i);
    job.labels
        .insert("team".into(), format!("team-{}", (i / 7) % 10));
    job.labels.insert("batch".into(), format!("b-{}", i / 1000));
    job.create_time = START + i as i64 * 10_000_000;
    job.modify_time = job.create_time + 5_000_000;
    job.state = State::new(state_of(i));
    let mut execution = Execution {
        id: ExecutionId::generate(),
        namespace: job.namespace.clone(),
        node_id: NodeId::from(format!("node-{:03}", i % 100).as_str()),
        job_id: job.id.clone(),
        job_version: 1,
        create_time: job.create_time + 1_000_000,
        modify_time: job.modify_time,
        revision: 4,
        ..Default::default()
    };
    execution.name = execution.id.to_string();
    let (desired, compute) = match job.state.state_type {
        JobStateType::Completed => (
            ExecutionDesiredStateType::Stopped,
            ExecutionStateType::Completed,
        ),
        JobStateType::Failed => (
            ExecutionDesiredStateType::Stopped,
            ExecutionStateType::Failed,
        ),
        JobStateType::Running => (
            ExecutionDesiredStateType::Running,
            ExecutionStateType::Running,
        ),
        _ => (ExecutionDesiredStateType::Pending, ExecutionStateType::New),
    };
    execution.desired_state = State::new(desired);
    execution.compute_state = State::new(compute);
    let history = vec![
        event(&job, None, Topic::Submission, "Job submitted"),
        event(
            &job,
            Some(&execution.id),
            Topic::Scheduling,
            "Placed on node",
        ),
        event(&job, Some(&execution.id), Topic::Execution, "Running"),
        event(
            &job,
            None,
            Topic::StateUpdate,
            job.state.state_type.as_str(),
        ),
    ];
    (job, execution, history)
}

/// Writes `n` jobs into the store at `path`; returns the rate.
async fn fill(path: &std::path::Path, n: usize) -> Result<f64, BoxError> {
    let template = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;
    let store = Store::open(path)?;
    let started = Instant::now();
    let mut written = 0;
    while written < n {
        let count = BATCH.min(n - written);
        let records: Vec<_> = (written..written + count)
            .map(|i| record(&template, i))
            .collect();
        store
            .write(move |w| {
                for (job, execution, history) in &records {
                    w.put_job(job)?;
                    w.put_job_version(job)?;
                    w.put_execution(execution)?;
                    for event in history {
                        w.add_history(event.clone())?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        written += count;
        if written % 100_000 == 0 {
            eprintln!(
                "  {written} jobs written ({:.0} jobs/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// `rounds` timed GETs of each path in turn; p50 and p99 per path, and the items of the last.
async fn timed(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    rounds: usize,
) -> Result<(Duration, Duration, usize), BoxError> {
    let mut samples = Vec::with_capacity(rounds);
    let mut items = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let response = http.get(format!("{base}{path}")).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        samples.push(started.elapsed());
        if !status.is_success() {
            return Err(format!("GET {path}: {status}").into());
        }
        items = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("Items").and_then(|i| i.as_array()).map(Vec::len))
            .unwrap_or(0);
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99), items))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n = arg(1, 1_000_000);
    if n < 100_000 {
        // Below that, the narrowest rows (a namespace's Running jobs of two teams) match none.
        return Err("the store needs at least 100000 jobs for every row to match some".into());
    }
    let binary = common::release_binary()?;
    let dir = tempfile::tempdir()?;
    let store_dir = dir.path().join("orchestrator");
    std::fs::create_dir_all(&store_dir)?;
    let store_path = store_dir.join(STORE_FILE);
    eprintln!("writing {n} jobs into {}", store_path.display());
    let fill_rate = fill(&store_path, n).await?;
    let bytes = std::fs::metadata(&store_path)?.len();

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // A restart finds the store on disk, not in the page cache (where writing left it): drop
    // the cache when allowed (root).
    let cold = std::process::Command::new("sync").status().is_ok()
        && std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let spawned = Instant::now();
    let mut orchestrator = common::spawn_orchestrator(&binary, port, dir.path(), &[])?;
    let pid = orchestrator.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    while http
        .get(format!("{base}/api/v1/agent/alive"))
        .send()
        .await
        .is_err()
    {
        if spawned.elapsed() > Duration::from_secs(120) {
            let _ = orchestrator.0.kill();
            return Err("the orchestrator did not answer within 2 min".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start_time = spawned.elapsed();
    let rss_at_start = rss_mib(pid);
    let first_list = {
        let started = Instant::now();
        http.get(format!("{base}/api/v1/orchestrator/jobs"))
            .send()
            .await?
            .bytes()
            .await?;
        started.elapsed()
    };

    let rounds = 200;
    let (floor_p50, floor_p99, _) = timed(&http, &base, "/api/v1/agent/alive", rounds).await?;
    let jobs = "/api/v1/orchestrator/jobs";
    let lists = [
        ("first page (100), no filter", jobs.to_string()),
        ("newest first", format!("{jobs}?reverse=true")),
        ("state Running (1 %)", format!("{jobs}?state=Running")),
        (
            "state Failed (3 %)",
            format!("{jobs}?state=Failed&reverse=true"),
        ),
        (
            "label team=team-3 (10 %)",
            format!("{jobs}?labels=team%3Dteam-3"),
        ),
        (
            "label batch=b-N (0.1 %)",
            format!("{jobs}?labels=batch%3Db-{}", n * 421 / 1_000_000),
        ),
        ("namespace lab-7 (1 %)", format!("{jobs}?namespace=lab-7")),
        (
            "every namespace, Queued, team=team-1",
            format!("{jobs}?namespace=*&state=Queued&labels=team%3Dteam-1"),
        ),
        (
            "lab-2, Running, team in (team-4,team-5)",
            format!("{jobs}?namespace=lab-2&state=Running&labels=team%20in%20(team-4,team-5)"),
        ),
    ];
    let mut rows = Vec::new();
    for (name, path) in &lists {
        let (p50, p99, items) = timed(&http, &base, path, rounds).await?;
        if items == 0 {
            return Err(format!("{name}: no jobs listed").into());
        }
        rows.push((format!("job list, {name}: {items} jobs"), p50, p99));
    }

    // `job describe`'s three calls, for jobs spread over the store.
    let mut ids = Vec::new();
    for page in [
        format!("{jobs}?limit=100"),
        format!("{jobs}?limit=100&reverse=true"),
        format!("{jobs}?limit=100&labels=batch%3Db-{}", n / 2000),
    ] {
        let body: serde_json::Value = http
            .get(format!("{base}{page}"))
            .send()
            .await?
            .json()
            .await?;
        for item in body["Items"].as_array().into_iter().flatten() {
            if let Some(id) = item["ID"].as_str() {
                ids.push(id.to_string());
            }
        }
    }
    let mut describe = Vec::new();
    for round in 0..rounds {
        let id = &ids[round % ids.len()];
        let started = Instant::now();
        for path in [
            format!("{jobs}/{id}"),
            format!("{jobs}/{id}/executions"),
            format!("{jobs}/{id}/history"),
        ] {
            let response = http.get(format!("{base}{path}")).send().await?;
            if !response.status().is_success() {
                return Err(format!("GET {path}: {}", response.status()).into());
            }
            response.bytes().await?;
        }
        describe.push(started.elapsed());
    }
    describe.sort();
    rows.push((
        "job describe (job, executions, history)".to_string(),
        percentile(&describe, 0.5),
        percentile(&describe, 0.99),
    ));
    for (name, path) in [
        ("web UI Jobs page", "/ui/jobs"),
        ("web UI Jobs page, state Running", "/ui/jobs?state=Running"),
        (
            "web UI Jobs page, team=team-7 in lab-1",
            "/ui/jobs?labels=team%3Dteam-7&namespace=lab-1",
        ),
    ] {
        let (p50, p99, _) = timed(&http, &base, path, rounds).await?;
        rows.push((name.to_string(), p50, p99));
    }
    let rss_after = rss_mib(pid);
    let _ = orchestrator.0.kill();
    let _ = orchestrator.0.wait();

    // Rows of bench/run.sh's table: metric, ours, peer or floor, ratio (here: the target).
    let floor = format!(
        "one HTTP round trip (GET alive): {:.2} / {:.2} ms",
        ms(floor_p50),
        ms(floor_p99)
    );
    for (name, p50, p99) in rows {
        let target = if name.starts_with("job describe") {
            "target p99 < 5 ms"
        } else {
            "target p99 < 20 ms"
        };
        println!(
            "| {n} jobs in the store: {name}, p50 / p99 | {:.2} / {:.2} ms | {floor} | {target} |",
            ms(p50),
            ms(p99),
        );
    }
    let cache = if cold {
        "page cache dropped first"
    } else {
        "store in the page cache"
    };
    println!(
        "| {n} jobs in the store: orchestrator start (spawn → API answers; {cache}), then its first job list | {:.2} s, {:.1} ms | | target < 5 s |",
        start_time.as_secs_f64(),
        ms(first_list)
    );
    println!(
        "| {n} jobs in the store: store file (job, version, one execution, four events each) | {:.0} MiB, {:.0} bytes per job | | |",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / n as f64
    );
    println!(
        "| {n} jobs in the store: orchestrator RSS at start / after the queries | {rss_at_start:.0} / {rss_after:.0} MiB | | |"
    );
    println!(
        "| {n} jobs written straight into the store, transactions of {BATCH} | {fill_rate:.0} jobs/s | | |"
    );
    Ok(())
}
