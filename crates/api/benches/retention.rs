//! Retention: what a job costs the store and what dropping ended jobs gives back. An
//! orchestrator and one in-process noop node; N jobs run to Completed, then one retention pass
//! drops them all (their history stays), N more run in the freed space, and a copy of the
//! store taken while idle is compacted.
//!
//! `cargo bench -p bacalhau-api --bench retention [-- JOBS]`

mod common;

use bacalhau_models::{JobStateType, parse_job_spec};
use common::{BoxError, arg};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `n` noop jobs to Completed through the orchestrator, 64 submitters at a time.
async fn run_jobs(
    orchestrator: &Arc<bacalhau_orchestrator::Orchestrator>,
    n: usize,
    completed_before: u64,
) -> Result<(), BoxError> {
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;
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
    let want = completed_before + n as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while orchestrator.figures()?.jobs_in(JobStateType::Completed) < want {
        if Instant::now() > deadline {
            return Err("jobs did not complete within 10 min".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
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

    // A copy taken while nothing writes is a consistent store (every commit is fsync'd).
    let copy = cluster.data_dir().join("copy.redb");
    std::fs::copy(
        cluster
            .data_dir()
            .join("orchestrator")
            .join(bacalhau_orchestrator::STORE_FILE),
        &copy,
    )?;
    let dropped_again = orchestrator.drop_ended_jobs(Duration::ZERO).await?;
    let copy_dropped = cluster.data_dir().join("copy-dropped.redb");
    std::fs::copy(
        cluster
            .data_dir()
            .join("orchestrator")
            .join(bacalhau_orchestrator::STORE_FILE),
        &copy_dropped,
    )?;
    let (_, compacted_full) =
        bacalhau_orchestrator::store::Store::compact(&copy)?.ok_or("the copy is missing")?;
    let (_, compacted_dropped) = bacalhau_orchestrator::store::Store::compact(&copy_dropped)?
        .ok_or("the copy is missing")?;

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
        "| store file after the drop / after {n} more jobs in the freed space | {:.1} MiB / {:.1} MiB | {:.1} MiB before the drop | {:+.1} % growth for the second {n} |",
        mib(after_drop),
        mib(refilled),
        mib(full),
        (refilled as f64 / full as f64 - 1.0) * 100.0
    );
    println!(
        "| compaction of the store holding {n} jobs vs after dropping them ({dropped_again} dropped; history kept) | {:.1} MiB | {:.1} MiB | {:+.1} % |",
        mib(compacted_dropped),
        mib(compacted_full),
        (compacted_dropped as f64 / compacted_full as f64 - 1.0) * 100.0
    );
    Ok(())
}
