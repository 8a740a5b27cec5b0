//! Retention: what a job costs the store and what dropping ended jobs gives back. An
//! orchestrator and one in-process noop node; N jobs run to Completed, then one retention pass
//! drops them all (their history stays) and N more run in the freed space; then a standalone
//! orchestrator's store, closed cleanly, is compacted holding N ended jobs and again after
//! dropping them.
//!
//! `cargo bench -p bacalhau-api --bench retention [-- JOBS]`

mod common;

use bacalhau_models::{JobStateType, parse_job_spec};
use common::{BoxError, arg};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Submits `n` copies of `job` straight to the orchestrator, 64 submitters at a time.
async fn submit_all(
    orchestrator: &Arc<bacalhau_orchestrator::Orchestrator>,
    job: &bacalhau_models::Job,
    n: usize,
) -> Result<(), BoxError> {
    let mut tasks = Vec::new();
    for worker in 0..64 {
        let orchestrator = Arc::clone(orchestrator);
        let job = job.clone();
        let share = n / 64 + usize::from(worker < n % 64);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                orchestrator.submit(job.clone(), false, "bench").await?;
            }
            Ok::<_, bacalhau_orchestrator::OrchestratorError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Runs `n` noop jobs to Completed through the orchestrator, in rounds of 1 000 (64
/// submitters at a time), each round waited for: a steady load, not one burst of `n`.
async fn run_jobs(
    orchestrator: &Arc<bacalhau_orchestrator::Orchestrator>,
    n: usize,
    completed_before: u64,
) -> Result<(), BoxError> {
    const ROUND: usize = 1_000;
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;
    let mut done = 0;
    while done < n {
        let round = ROUND.min(n - done);
        submit_all(orchestrator, &job, round).await?;
        done += round;
        let want = completed_before + done as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let figures = orchestrator.figures()?;
            if figures.jobs_in(JobStateType::Completed) >= want {
                break;
            }
            let failed = figures.jobs_in(JobStateType::Failed);
            if failed > 0 || Instant::now() > deadline {
                return Err(
                    format!("{failed} jobs failed, or a round did not complete in 2 min").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// A standalone orchestrator's store with `n` ended jobs: its size closed, compacted, and
/// compacted again after a retention pass dropped every job.
async fn compaction(n: usize) -> Result<(u64, u64, u64), BoxError> {
    use bacalhau_orchestrator::store::Store;
    use bacalhau_orchestrator::{Orchestrator, OrchestratorConfig, STORE_FILE};
    let dir = tempfile::tempdir()?;
    let config = || OrchestratorConfig {
        data_dir: dir.path().to_path_buf(),
        job_defaults: Default::default(),
        workers: 64,
        nodes: Default::default(),
        cluster: None,
    };
    let path = dir.path().join(STORE_FILE);
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;
    let orchestrator = Arc::new(Orchestrator::start(config()).await?);
    submit_all(&orchestrator, &job, n).await?;
    while orchestrator.figures()?.jobs_in(JobStateType::Failed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Arc::into_inner(orchestrator)
        .ok_or("the orchestrator is still shared")?
        .shutdown()
        .await;
    let closed = std::fs::metadata(&path)?.len();
    let (_, compacted_full) = Store::compact(&path)?.ok_or("no store")?;
    let orchestrator = Orchestrator::start(config()).await?;
    let dropped = orchestrator.drop_ended_jobs(Duration::ZERO).await?;
    if dropped != n {
        return Err(format!("dropped {dropped} of {n}").into());
    }
    orchestrator.shutdown().await;
    let (_, compacted_dropped) = Store::compact(&path)?.ok_or("no store")?;
    Ok((compacted_full, compacted_dropped, closed))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n = arg(1, 20_000);
    let cluster = common::start(vec![("node-0".into(), bacalhau_executors::builtin())]).await?;
    let orchestrator = cluster.orchestrator.clone();
    let empty = orchestrator.store_size()?;

    run_jobs(&orchestrator, n, 0).await?;
    let full = orchestrator.store_size()?;
    let audit_before = orchestrator.audit_log(0, usize::MAX)?.len();

    let started = Instant::now();
    let dropped = orchestrator.drop_ended_jobs(Duration::ZERO).await?;
    let pass = started.elapsed();
    let after_drop = orchestrator.store_size()?;
    let audit_after = orchestrator.audit_log(0, usize::MAX)?.len();
    if dropped != n || audit_after != audit_before + n {
        return Err(format!(
            "dropped {dropped} of {n}; audit log {audit_before} -> {audit_after} events"
        )
        .into());
    }

    run_jobs(&orchestrator, n, 0).await?;
    let refilled = orchestrator.store_size()?;

    // Compaction needs the file to itself: a store of its own, closed cleanly between steps
    // (as `Orchestrator.CompactOnStart` finds it at start). Without nodes each job fails at
    // once, with its history.
    let (compacted_full, compacted_dropped, closed_full) = compaction(n).await?;

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| store growth per noop job run to Completed ({n} jobs; job, version, execution, history, indexes) | {:.0} B | | |",
        (full - empty) as f64 / n as f64
    );
    println!(
        "| one retention pass dropping {dropped} ended jobs (their {} audit events stay, one more each) | {:.0} ms | {:.0} jobs/s | |",
        audit_before,
        pass.as_secs_f64() * 1e3,
        dropped as f64 / pass.as_secs_f64()
    );
    println!(
        "| store file: {n} jobs / after dropping them / after {n} more in the freed space | {:.1} / {:.1} / {:.1} MiB | | {:+.1} % for the second {n} |",
        mib(full),
        mib(after_drop),
        mib(refilled),
        (refilled as f64 / after_drop as f64 - 1.0) * 100.0
    );
    println!(
        "| compacted ({n} jobs failed at once, closed cleanly): holding them / after dropping them (history kept) | {:.1} MiB / {:.1} MiB | {:.1} MiB uncompacted | {:+.1} % |",
        mib(compacted_full),
        mib(compacted_dropped),
        mib(closed_full),
        (compacted_dropped as f64 / compacted_full as f64 - 1.0) * 100.0
    );
    Ok(())
}
