//! The orchestrator endpoint's tests: submit, stop, rerun, queries, on a real store.

use super::*;
use bacalhau_models::{Execution, Job, JobStateType, parse_job_spec};
use std::time::{Duration, Instant};

async fn start(dir: &std::path::Path) -> Orchestrator {
    Orchestrator::start(OrchestratorConfig {
        data_dir: dir.to_path_buf(),
        job_defaults: JobDefaults::default(),
        workers: 2,
        nodes: Default::default(),
        cluster: None,
    })
    .await
    .unwrap()
}

/// An orchestrator whose clock follows tokio's (paused) timer, with one worker.
async fn start_on_tokio_time(dir: &std::path::Path) -> Orchestrator {
    let clock = crate::clock::Clock::following_tokio(1_700_000_000_000_000_000);
    Orchestrator::start_with_clock(
        OrchestratorConfig {
            data_dir: dir.to_path_buf(),
            job_defaults: JobDefaults::default(),
            workers: 1,
            nodes: Default::default(),
            cluster: None,
        },
        clock,
    )
    .await
    .unwrap()
}

fn spec(name: &str, queue_timeout: i64) -> Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nTasks:\n - Name: main\n   Engine: {{Type: docker, Params: {{Image: busybox}}}}\n   Timeouts: {{QueueTimeout: {queue_timeout}}}\n"
    ))
    .unwrap()
}

async fn wait_for_state(o: &Orchestrator, id: &str, want: JobStateType) -> Job {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = o.job(id, "").unwrap();
        if job.state.state_type == want {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} stuck in {:?}, wanted {want:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_job_without_nodes_fails_with_not_enough_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    let submitted = o.submit(spec("a", 0), false, "tester").await.unwrap();
    let job = wait_for_state(&o, submitted.job_id.as_str(), JobStateType::Failed).await;
    assert!(job.state.message.starts_with("not enough nodes to run job"));
    let (history, _) = o
        .history(job.id.as_str(), "", &HistoryQuery::default())
        .unwrap();
    assert_eq!(history[0].event.message, "Job submitted");
    assert!(
        history
            .iter()
            .any(|e| e.event.message.starts_with("Failed"))
    );
}

#[tokio::test]
async fn a_job_with_queue_timeout_is_queued_and_can_be_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    let submitted = o.submit(spec("q", 600), false, "tester").await.unwrap();
    let id = submitted.job_id.to_string();
    let job = wait_for_state(&o, &id, JobStateType::Queued).await;
    assert!(job.state.message.starts_with("Job queued."));
    let short = &id[..10];
    assert!(
        o.stop(short, "", "enough", "tester")
            .await
            .unwrap()
            .is_some()
    );
    let job = wait_for_state(&o, &id, JobStateType::Stopped).await;
    assert_eq!(job.state.message, "enough");
    assert!(
        o.stop(&id, "", "again", "tester").await.unwrap().is_none(),
        "stopping a stopped job is a no-op"
    );
}

#[tokio::test]
async fn resubmitting_a_name_makes_a_new_version_unless_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    let first = o.submit(spec("same", 600), false, "tester").await.unwrap();
    let unchanged = o.submit(spec("same", 600), false, "tester").await;
    assert!(matches!(unchanged, Err(OrchestratorError::Conflict { .. })));
    let second = o.submit(spec("same", 900), false, "tester").await.unwrap();
    assert_eq!(first.job_id, second.job_id);
    let versions = o.job_versions("same", "").unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(o.job("same", "").unwrap().version, 2);
}

#[tokio::test]
async fn invalid_specs_are_rejected_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    let mut job = spec("bad", 0);
    job.tasks[0].engine.r#type = "flibble".into();
    let err = o.submit(job, false, "tester").await.unwrap_err();
    assert!(
        err.to_string().contains("unknown engine \"flibble\""),
        "{err}"
    );
    assert_eq!(o.job_count().unwrap(), 0);
}

#[tokio::test]
async fn jobs_and_pending_work_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let o = start(dir.path()).await;
        let submitted = o.submit(spec("keep", 600), false, "tester").await.unwrap();
        wait_for_state(&o, submitted.job_id.as_str(), JobStateType::Queued).await;
        o.shutdown().await;
        submitted.job_id
    };
    let o = start(dir.path()).await;
    let job = o.job(id.as_str(), "").unwrap();
    assert_eq!(job.state.state_type, JobStateType::Queued);
    let (history, _) = o
        .history(id.as_str(), "", &HistoryQuery::default())
        .unwrap();
    assert!(history.len() >= 2);
}

#[tokio::test]
async fn listing_pages_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    for i in 0..5 {
        o.submit(spec(&format!("job-{i}"), 600), false, "tester")
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut query = JobQuery {
        limit: 2,
        ..Default::default()
    };
    loop {
        let (page, token) = o.list_jobs(&query).unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|j| j.name));
        match token {
            Some(t) => query.next_token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, vec!["job-0", "job-1", "job-2", "job-3", "job-4"]);
}

#[tokio::test]
async fn executions_and_history_are_filtered_by_job_version() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    let first = o
        .submit(spec("versioned", 600), false, "tester")
        .await
        .unwrap();
    o.submit(spec("versioned", 900), false, "tester")
        .await
        .unwrap();
    let job_id = first.job_id.clone();
    o.store()
        .write(move |w| {
            for version in [1, 2] {
                w.put_execution(&Execution {
                    id: bacalhau_models::ExecutionId::generate(),
                    job_id: job_id.clone(),
                    job_version: version,
                    namespace: bacalhau_models::DEFAULT_NAMESPACE.into(),
                    create_time: version as i64,
                    ..Default::default()
                })?;
            }
            Ok::<_, OrchestratorError>(())
        })
        .await
        .unwrap();
    let versions_of = |versions| {
        o.executions("versioned", "", versions)
            .unwrap()
            .iter()
            .map(|e| e.job_version)
            .collect::<Vec<_>>()
    };
    assert_eq!(versions_of(JobVersions::All), vec![1, 2]);
    assert_eq!(versions_of(JobVersions::Latest), vec![2]);
    assert_eq!(versions_of(JobVersions::Only(1)), vec![1]);
    assert!(versions_of(JobVersions::Only(7)).is_empty());

    let history_versions = |versions| {
        let query = HistoryQuery {
            versions,
            ..Default::default()
        };
        let (events, _) = o.history("versioned", "", &query).unwrap();
        let mut seen: Vec<u64> = events.iter().map(|e| e.job_version).collect();
        seen.dedup();
        seen
    };
    assert_eq!(history_versions(JobVersions::All), vec![1, 2]);
    assert_eq!(history_versions(JobVersions::Latest), vec![2]);
    assert_eq!(history_versions(JobVersions::Only(1)), vec![1]);
}

/// The queue deadline on the orchestrator's injected clock: months of waiting pass on a
/// paused runtime without the test waiting for them. A paused runtime moves its time on while
/// the test waits for the store's writer thread (by hours when a commit is slow), so the
/// deadline is far and the checks are counted from the job's creation.
#[tokio::test(start_paused = true)]
async fn a_queued_job_fails_at_its_queue_deadline() {
    const DAY: u64 = 86_400;
    let timeout = 30 * DAY;
    let dir = tempfile::tempdir().unwrap();
    let o = start_on_tokio_time(dir.path()).await;
    let submitted = o
        .submit(spec("late", timeout as i64), false, "tester")
        .await
        .unwrap();
    let id = submitted.job_id.as_str();
    let queued = wait_for_state(&o, id, JobStateType::Queued).await;
    let since_created =
        || Duration::from_nanos(u64::try_from(o.clock().now() - queued.create_time).unwrap());
    tokio::time::sleep(Duration::from_secs(timeout - 10 * DAY) - since_created()).await;
    assert_eq!(
        o.job(id, "").unwrap().state.state_type,
        JobStateType::Queued
    );
    tokio::time::sleep(Duration::from_secs(timeout + 1).saturating_sub(since_created())).await;
    let failed = wait_for_state(&o, id, JobStateType::Failed).await;
    assert!(
        failed.modify_time >= queued.create_time + (timeout * 1_000_000_000) as i64,
        "failed before its deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn ended_jobs_past_their_retention_are_dropped_and_their_history_stays() {
    let dir = tempfile::tempdir().unwrap();
    let o = start_on_tokio_time(dir.path()).await;
    // No nodes: a job that may not queue fails at once, and ends.
    let old = o.submit(spec("old", 0), false, "tester").await.unwrap();
    let old = old.job_id.as_str();
    wait_for_state(&o, old, JobStateType::Failed).await;
    // Days apart: a paused runtime moves its time on (by hours here) while the test waits for
    // the store's writer thread, and "recent" must stay recent.
    const DAY: u64 = 86_400;
    let retention = Duration::from_secs(10 * DAY);
    tokio::time::sleep(Duration::from_secs(30 * DAY)).await;
    let waiting = o
        .submit(spec("waiting", 365 * DAY as i64), false, "tester")
        .await
        .unwrap();
    wait_for_state(&o, waiting.job_id.as_str(), JobStateType::Queued).await;
    let recent = o.submit(spec("recent", 0), false, "tester").await.unwrap();
    wait_for_state(&o, recent.job_id.as_str(), JobStateType::Failed).await;

    assert_eq!(o.drop_ended_jobs(retention).await.unwrap(), 1);
    assert!(matches!(
        o.job(old, ""),
        Err(OrchestratorError::NotFound { .. })
    ));
    assert!(o.job("old", "").is_err(), "its name no longer resolves");
    assert!(
        o.job(waiting.job_id.as_str(), "").is_ok(),
        "an active job stays"
    );
    assert!(
        o.job(recent.job_id.as_str(), "").is_ok(),
        "a recent end stays"
    );
    assert_eq!(o.figures().unwrap().jobs_in(JobStateType::Failed), 1);
    // Nothing is left to drop.
    assert_eq!(o.drop_ended_jobs(retention).await.unwrap(), 0);

    // The audit log still holds every event of the dropped job, and the drop itself, and its
    // chain verifies.
    let log = o.audit_log(0, 10_000).unwrap();
    let of_old: Vec<&str> = log
        .iter()
        .filter(|e| e.job_id.as_str() == old)
        .map(|e| e.event.message.as_str())
        .collect();
    assert_eq!(of_old.first(), Some(&"Job submitted"), "{of_old:?}");
    assert!(
        of_old
            .last()
            .is_some_and(|m| m.starts_with("Job record dropped")),
        "{of_old:?}"
    );
    let mut verifier = bacalhau_models::history::ChainVerifier::default();
    for event in &log {
        verifier.check(event).unwrap();
    }
}

/// Every page of `query`, two jobs at a time.
fn all_pages(o: &Orchestrator, mut query: JobQuery) -> Vec<String> {
    query.limit = 2;
    let mut seen = Vec::new();
    loop {
        let (page, token) = o.list_jobs(&query).unwrap();
        seen.extend(page.into_iter().map(|j| j.name));
        match token {
            Some(t) => query.next_token = Some(t),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn filtered_listings_through_the_indexes_page_as_a_full_scan_would() {
    use bacalhau_models::selector::{LabelSelectorRequirement, Operator};
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path()).await;
    let mut submitted = Vec::new();
    for i in 0..12 {
        // Even jobs may queue (no node: Queued), odd ones fail at once.
        let mut job = spec(&format!("job-{i:02}"), if i % 2 == 0 { 600 } else { 0 });
        job.namespace = ["default", "lab", "default"][i % 3].into();
        job.labels
            .insert("team".into(), ["ml", "web", "ops"][(i / 2) % 3].into());
        if i % 4 != 1 {
            job.labels.insert("tier".into(), "gold".into());
        }
        let id = o.submit(job, false, "tester").await.unwrap().job_id;
        let want = if i % 2 == 0 {
            JobStateType::Queued
        } else {
            JobStateType::Failed
        };
        submitted.push(wait_for_state(&o, id.as_str(), want).await);
    }
    let label = |operator, values: &[&str]| LabelSelectorRequirement {
        key: "team".into(),
        operator,
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let queries = [
        JobQuery::default(),
        JobQuery {
            namespace: "*".into(),
            ..Default::default()
        },
        JobQuery {
            namespace: "lab".into(),
            ..Default::default()
        },
        JobQuery {
            namespace: "*".into(),
            states: vec![JobStateType::Queued],
            reverse: true,
            ..Default::default()
        },
        JobQuery {
            states: vec![JobStateType::Failed, JobStateType::Queued],
            ..Default::default()
        },
        JobQuery {
            namespace: "*".into(),
            labels: vec![label(Operator::In, &["ml", "ops"])],
            reverse: true,
            ..Default::default()
        },
        JobQuery {
            labels: vec![
                label(Operator::Equals, &["web"]),
                label(Operator::Exists, &[]),
            ],
            states: vec![JobStateType::Failed],
            ..Default::default()
        },
        JobQuery {
            namespace: "*".into(),
            labels: vec![label(Operator::NotEquals, &["ml"])],
            ..Default::default()
        },
        JobQuery {
            namespace: "*".into(),
            labels: vec![label(Operator::In, &["web", "ops"])],
            states: vec![JobStateType::Queued],
            reverse: true,
            ..Default::default()
        },
        JobQuery {
            namespace: "lab".into(),
            labels: vec![
                label(Operator::In, &["ml", "web", "ops"]),
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: Operator::Equals,
                    values: vec!["gold".into()],
                },
            ],
            ..Default::default()
        },
    ];
    for query in queries {
        let mut expected: Vec<&Job> = submitted
            .iter()
            .filter(|j| {
                (query.namespace == "*"
                    || j.namespace
                        == if query.namespace.is_empty() {
                            "default"
                        } else {
                            query.namespace.as_str()
                        })
                    && (query.states.is_empty() || query.states.contains(&j.state.state_type))
                    && query.labels.iter().all(|r| r.matches(&j.labels))
            })
            .collect();
        expected.sort_by_key(|j| (j.create_time, j.id.clone()));
        if query.reverse {
            expected.reverse();
        }
        let expected: Vec<String> = expected.iter().map(|j| j.name.clone()).collect();
        assert!(!expected.is_empty(), "{query:?} matches some job");
        assert_eq!(all_pages(&o, query.clone()), expected, "{query:?}");
    }
}

/// `wait_job` answers at once for an ended job or one with an event past `after`, holds on a
/// job with nothing new until its deadline, and hears of a stop while it waits.
#[tokio::test]
async fn waiting_for_a_job_answers_at_its_end_or_its_next_event() {
    let dir = tempfile::tempdir().unwrap();
    let o = Arc::new(start(dir.path()).await);
    let id = o
        .submit(spec("w", 600), false, "tester")
        .await
        .unwrap()
        .job_id
        .to_string();
    wait_for_state(&o, &id, JobStateType::Queued).await;
    let (history, _) = o.history(&id, "", &HistoryQuery::default()).unwrap();
    let last = history.iter().map(|e| e.seq_num).max().unwrap();

    let early = o
        .wait_job(&id, "", Some(last - 1), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        early.state.state_type,
        JobStateType::Queued,
        "an event past 'after' answers at once"
    );
    let held = o
        .wait_job(&id, "", Some(last), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        held.state.state_type,
        JobStateType::Queued,
        "nothing new: answered at the deadline"
    );

    let waiting = tokio::spawn({
        let (o, id) = (Arc::clone(&o), id.clone());
        async move { o.wait_job(&id, "", None, Duration::from_secs(50)).await }
    });
    o.stop(&id, "", "enough", "tester").await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the stop ends the wait well before its 50 s")
        .unwrap()
        .unwrap();
    assert_eq!(stopped.state.state_type, JobStateType::Stopped);
    assert!(matches!(
        o.wait_job("j-none", "", None, Duration::from_secs(1)).await,
        Err(OrchestratorError::NotFound { .. })
    ));
}
