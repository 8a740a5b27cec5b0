//! The store's tests: writes, reads, the outbox and the audit chain on a real redb file.

use super::*;
use bacalhau_models::{JobHistoryType, JobStateType, State, history::Event};

fn job(id: &str, name: &str, create_time: i64) -> Job {
    Job {
        id: JobId::from(id),
        name: name.into(),
        namespace: "default".into(),
        r#type: "batch".into(),
        version: 1,
        create_time,
        ..Default::default()
    }
}

fn event(job_id: &str, message: &str) -> JobHistory {
    JobHistory {
        seq_num: 0,
        r#type: JobHistoryType::JobLevel,
        job_id: JobId::from(job_id),
        job_version: 1,
        execution_id: None,
        event: Event {
            message: message.into(),
            ..Default::default()
        },
        time: String::new(),
        actor: String::new(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

#[tokio::test]
async fn writes_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|w| {
                w.put_job(&job("j-1", "first", 10))?;
                w.add_history(event("j-1", "Job submitted"))?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let reader = store.read().unwrap();
    assert_eq!(
        reader.job(&JobId::from("j-1")).unwrap().unwrap().name,
        "first"
    );
    let history = reader.history_of(&JobId::from("j-1")).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].seq_num, 1);
}

#[tokio::test]
async fn concurrent_writes_all_commit_with_distinct_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |w| {
                    let id = format!("j-{i:03}");
                    w.put_job(&job(&id, &id, i))?;
                    w.add_history(event(&id, "Job submitted"))
                })
                .await
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap());
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 50);
    assert_eq!(store.read().unwrap().job_count().unwrap(), 50);
}

#[tokio::test]
async fn a_failed_closure_reports_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let result: Result<(), StoreError> = store
        .write(|_| {
            Err(StoreError::Corrupt {
                table: "jobs",
                reason: "test".into(),
            })
        })
        .await;
    assert!(matches!(result, Err(StoreError::Corrupt { .. })));
}

#[tokio::test]
async fn lists_by_creation_time_with_cursor_and_prefix_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    store
        .write(|w| {
            for (i, id) in ["j-aa1", "j-ab2", "j-bb3"].iter().enumerate() {
                w.put_job(&job(id, id, i as i64))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let reader = store.read().unwrap();
    let first_two = reader.job_ids_by_create_time(false, None, 2).unwrap();
    assert_eq!(first_two.len(), 2);
    let (t, id) = &first_two[1];
    let rest = reader
        .job_ids_by_create_time(false, Some((*t, id.as_str())), 10)
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.as_str(), "j-bb3");
    let newest = reader.job_ids_by_create_time(true, None, 1).unwrap();
    assert_eq!(newest[0].1.as_str(), "j-bb3");
    assert_eq!(reader.job_ids_with_prefix("j-a", 10).unwrap().len(), 2);
    // Jobs named by their own ID are found by it, in their namespace only.
    assert_eq!(
        reader.job_id_by_name("default", "j-ab2").unwrap(),
        Some(JobId::from("j-ab2"))
    );
    assert_eq!(reader.job_id_by_name("elsewhere", "j-ab2").unwrap(), None);
    drop(reader);
    store
        .write(|w| w.put_job(&job("j-cc4", "j-aa1", 4)))
        .await
        .unwrap();
    let reader = store.read().unwrap();
    assert_eq!(
        reader.job_id_by_name("default", "j-aa1").unwrap(),
        Some(JobId::from("j-cc4")),
        "a name row wins over a job whose ID is that name"
    );
}

/// A group of one that applies every change to the store's own database and to a mirror,
/// as a Raft group's members would.
struct Mirror {
    own: std::sync::OnceLock<Arc<redb::Database>>,
    mirror: redb::Database,
}

impl Replicate for Mirror {
    fn ready(&self) -> Result<(), replication::ReplicationError> {
        Ok(())
    }

    fn replicate(
        &self,
        changes: Vec<replication::Change>,
    ) -> Result<(), replication::ReplicationError> {
        let failed = |e: String| replication::ReplicationError::Failed(e);
        let own = self.own.get().ok_or_else(|| failed("not started".into()))?;
        for db in [own.as_ref(), &self.mirror] {
            let txn = db.begin_write().map_err(|e| failed(e.to_string()))?;
            replication::apply(&txn, &changes).map_err(|e| failed(e.to_string()))?;
            txn.commit().map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    }
}

fn cid() -> bacalhau_models::content::Identity {
    bacalhau_models::content::Identity::cid("bafyresult/sub")
}

fn key(fill: char) -> bacalhau_models::content::ContentKey {
    bacalhau_models::content::ContentKey::parse(&fill.to_string().repeat(64)).unwrap()
}

fn cache_entry() -> crate::lineage::CacheEntry {
    crate::lineage::CacheEntry {
        job_id: JobId::from("j-1"),
        execution_id: bacalhau_models::ExecutionId::from("e-1"),
        node_id: NodeId::from("n-1"),
        published_result: None,
        run_output: None,
        run_nanos: 5,
        create_time: 10,
    }
}

/// The same writes, every kind the store makes, on `store`.
async fn every_kind_of_write(store: &Store, evaluation: Evaluation) {
    let evaluation_id = evaluation.id.clone();
    let node = NodeId::from("n-1");
    let message = bacalhau_protocol::Message::CancelExecution {
        execution_id: bacalhau_models::ExecutionId::from("e-1"),
        reason: "stop".into(),
    };
    store
        .write(move |w| {
            w.put_job(&job("j-1", "first", 10))?;
            w.put_job_version(&job("j-1", "first", 10))?;
            w.add_history(event("j-1", "Job submitted"))?;
            w.put_execution(&Execution {
                id: bacalhau_models::ExecutionId::from("e-1"),
                job_id: JobId::from("j-1"),
                ..Default::default()
            })?;
            w.put_evaluation(&evaluation)?;
            w.put_node(&NodeState {
                info: bacalhau_models::NodeInfo {
                    node_id: node.clone(),
                    ..Default::default()
                },
                ..Default::default()
            })?;
            w.enqueue_message(&node, &message)?;
            w.enqueue_message(&node, &message)?;
            let link = crate::lineage::Link {
                role: crate::lineage::Role::Produced,
                job_id: JobId::from("j-1"),
                execution_id: bacalhau_models::ExecutionId::from("e-1"),
            };
            w.put_link(&cid(), &link)?;
            for key in [key('a'), key('b')] {
                w.put_cache_entry(&key, &cache_entry())?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    // A failing write between them leaves nothing, replicated or not.
    let refused: Result<(), StoreError> = store
        .write(|_| Err(StoreError::Db("refused before writing".into())))
        .await;
    assert!(refused.is_err());
    store
        .write(move |w| {
            let node = NodeId::from("n-1");
            w.trim_outbox(&node, 1)?;
            w.apply_message(&node, 1, |w| {
                let mut done = job("j-1", "first", 10);
                done.state.state_type = bacalhau_models::JobStateType::Completed;
                w.put_job(&done)?;
                w.add_history(event("j-1", "Job completed"))
            })?;
            w.delete_evaluation(&evaluation_id)?;
            w.delete_node(&NodeId::from("n-2"))?;
            w.delete_cache_entry(&key('b'))?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

/// What a single orchestrator's redo log holds is every write: a store whose file is lost and
/// rebuilt from nothing but the log (as after a crash that left only the log's records)
/// holds exactly what the original does.
#[tokio::test]
async fn a_store_rebuilt_from_its_redo_log_holds_what_the_original_does() {
    let dir = tempfile::tempdir().unwrap();
    let evaluation = Evaluation::for_job(
        &job("j-1", "first", 10),
        bacalhau_models::TriggeredBy::JobRegister,
        10,
    );
    let original_path = dir.path().join("original.redb");
    let original = Store::open(&original_path).unwrap();
    every_kind_of_write(&original, evaluation).await;
    let rebuilt_path = dir.path().join("rebuilt.redb");
    // Copied while the original is open: its records are there, no checkpoint yet.
    std::fs::copy(log_path(&original_path), log_path(&rebuilt_path)).unwrap();
    let rebuilt = Store::open(&rebuilt_path).unwrap();
    // A trim is not logged (a node re-acknowledges at its next handshake): the rebuilt store
    // has the trimmed message back until it is trimmed again.
    let node = NodeId::from("n-1");
    assert_eq!(rebuilt.read().unwrap().outbox_len(&node).unwrap(), 2);
    rebuilt
        .write(move |w| w.trim_outbox(&node, 1))
        .await
        .unwrap();
    let dump = |db: &redb::Database| {
        use redb::ReadableDatabase as _;
        replication::dump(&db.begin_read().unwrap()).unwrap()
    };
    let expected = dump(&original.database());
    assert!(expected.len() > 15, "{expected:?}");
    assert_eq!(dump(&rebuilt.database()), expected);
    // Applied once, the log is emptied; the original's goes at its clean close.
    let logged = |path| bacalhau_durable::log::Log::records(&log_path(path)).unwrap();
    assert!(logged(&rebuilt_path).is_empty());
    drop(original);
    assert!(logged(&original_path).is_empty());
    let reopened = Store::open(&original_path).unwrap();
    assert_eq!(dump(&reopened.database()), expected);
}

/// A second opening of a store that is in use fails at redb's file lock, before it reads its
/// redo log: the live log is never read or cut by another process.
#[tokio::test]
async fn a_store_in_use_cannot_be_opened_again_and_its_log_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path).unwrap();
    store
        .write(|w| w.put_job(&job("j-1", "first", 10)))
        .await
        .unwrap();
    let log_len = || std::fs::metadata(log_path(&path)).unwrap().len();
    let before = log_len();
    assert!(before > 0);
    assert!(Store::open(&path).is_err());
    assert_eq!(log_len(), before);
    store
        .write(|w| w.put_job(&job("j-2", "second", 11)))
        .await
        .unwrap();
    drop(store);
    let reopened = Store::open(&path).unwrap();
    let reader = reopened.read().unwrap();
    for id in ["j-1", "j-2"] {
        assert!(reader.job(&JobId::from(id)).unwrap().is_some(), "{id}");
    }
}

#[tokio::test]
async fn a_replicated_store_holds_what_a_local_one_does_and_so_does_its_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let evaluation = Evaluation::for_job(
        &job("j-1", "first", 10),
        bacalhau_models::TriggeredBy::JobRegister,
        10,
    );
    let local = Store::open(&dir.path().join("local.redb")).unwrap();
    every_kind_of_write(&local, evaluation.clone()).await;

    let mirror = Arc::new(Mirror {
        own: std::sync::OnceLock::new(),
        mirror: redb::Database::create(dir.path().join("mirror.redb")).unwrap(),
    });
    {
        let txn = mirror.mirror.begin_write().unwrap();
        create_tables(&txn).unwrap();
        txn.commit().unwrap();
    }
    let replicated = Store::open_replicated(
        &dir.path().join("replicated.redb"),
        Arc::clone(&mirror) as Arc<dyn Replicate>,
    )
    .unwrap();
    let _ = mirror.own.set(replicated.database());
    every_kind_of_write(&replicated, evaluation).await;

    let dump = |db: &redb::Database| {
        use redb::ReadableDatabase as _;
        replication::dump(&db.begin_read().unwrap()).unwrap()
    };
    let expected = dump(&local.database());
    assert!(expected.len() > 15, "{expected:?}");
    assert_eq!(dump(&replicated.database()), expected);
    assert_eq!(dump(&mirror.mirror), expected);
    // Reads see the applied writes: the staging transaction kept nothing of its own.
    let reader = replicated.read().unwrap();
    assert_eq!(
        reader
            .job(&JobId::from("j-1"))
            .unwrap()
            .unwrap()
            .state
            .state_type,
        bacalhau_models::JobStateType::Completed
    );
    assert_eq!(reader.applied_from(&NodeId::from("n-1")).unwrap(), 1);
    // Lineage links (by a CID's root) and the cache read back the same.
    let links = reader
        .links(&bacalhau_models::content::Identity::cid("bafyresult"))
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].role, crate::lineage::Role::Produced);
    assert_eq!(reader.cache_entry(&key('a')).unwrap(), Some(cache_entry()));
    assert_eq!(reader.cache_entry(&key('b')).unwrap(), None);
}

/// Ended-job counts as `put_job` keeps them and as an older store is counted at open.
#[tokio::test]
async fn ended_job_counts_follow_every_state_change_and_survive_reopening() {
    use bacalhau_models::{JobStateType, State};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let with_state = |id: &str, r#type: &str, state: JobStateType| {
        let mut j = job(id, id, 1);
        j.r#type = r#type.into();
        j.state = State::new(state);
        j
    };
    let put = |store: &Store, j: Job| {
        let store = store.clone();
        async move {
            store
                .write(move |w| w.put_job(&j))
                .await
                .map_err(|e: StoreError| e)
                .unwrap()
        }
    };
    let counts = |store: &Store| {
        let mut counts = store.read().unwrap().ended_job_counts().unwrap();
        counts.retain(|(_, _, n)| *n > 0);
        counts.sort();
        counts
    };
    let store = Store::open(&path).unwrap();
    put(&store, with_state("j-1", "batch", JobStateType::Pending)).await;
    put(&store, with_state("j-2", "batch", JobStateType::Running)).await;
    put(&store, with_state("j-3", "ops", JobStateType::Pending)).await;
    assert_eq!(counts(&store), vec![]);
    put(&store, with_state("j-1", "batch", JobStateType::Completed)).await;
    put(&store, with_state("j-2", "batch", JobStateType::Completed)).await;
    put(&store, with_state("j-3", "ops", JobStateType::Failed)).await;
    assert_eq!(
        counts(&store),
        vec![
            ("batch".to_string(), JobStateType::Completed, 2),
            ("ops".to_string(), JobStateType::Failed, 1),
        ]
    );
    // An ended job stopped again, and one rerun: each leaves its old count.
    put(&store, with_state("j-3", "ops", JobStateType::Stopped)).await;
    put(&store, with_state("j-2", "batch", JobStateType::Pending)).await;
    assert_eq!(
        counts(&store),
        vec![
            ("batch".to_string(), JobStateType::Completed, 1),
            ("ops".to_string(), JobStateType::Stopped, 1),
        ]
    );
    let active = store.read().unwrap().active_job_kinds().unwrap();
    assert_eq!(active, vec![("batch".to_string(), JobStateType::Pending)]);
    drop(store);
    // A store written before the counts existed is counted once at open.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            let keys: Vec<String> = meta
                .iter()
                .unwrap()
                .map(|row| row.unwrap().0.value().to_string())
                .filter(|k| k.starts_with(JOBS_ENDED_PREFIX) || k == JOBS_ENDED_COUNTED)
                .collect();
            for key in keys {
                meta.remove(key.as_str()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        counts(&store),
        vec![
            ("batch".to_string(), JobStateType::Completed, 1),
            ("ops".to_string(), JobStateType::Stopped, 1),
        ]
    );
}

#[tokio::test]
async fn deleting_an_ended_job_keeps_its_history_and_compaction_returns_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path).unwrap();
    let payload = "x".repeat(4096);
    for i in 0..300 {
        let payload = payload.clone();
        store
            .write(move |w| {
                let id = format!("j-{i}");
                let mut ended = job(&id, &id, i);
                ended.state.state_type = bacalhau_models::JobStateType::Completed;
                ended.meta.insert("payload".into(), payload.clone());
                w.put_job(&ended)?;
                w.put_job_version(&ended)?;
                w.add_history(event(&id, "Job submitted"))?;
                w.put_execution(&Execution {
                    id: bacalhau_models::ExecutionId::from(format!("e-{i}").as_str()),
                    job_id: JobId::from(id.as_str()),
                    ..Default::default()
                })?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }
    let active = job("j-active", "active", 1000);
    store
        .write(move |w| {
            w.put_job(&active)?;
            // An active job is not deleted, and nothing is written for it.
            assert!(!w.delete_job(&JobId::from("j-active"))?);
            assert!(!w.delete_job(&JobId::from("j-missing"))?);
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    store
        .write(|w| {
            for i in 0..300 {
                assert!(w.delete_job(&JobId::from(format!("j-{i}").as_str()))?);
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let reader = store.read().unwrap();
    assert!(reader.job(&JobId::from("j-7")).unwrap().is_none());
    assert!(reader.job_versions(&JobId::from("j-7")).unwrap().is_empty());
    assert!(
        reader
            .executions_of(&JobId::from("j-7"))
            .unwrap()
            .is_empty()
    );
    assert!(
        reader
            .job_id_by_name(bacalhau_models::DEFAULT_NAMESPACE, "j-7")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        reader
            .job_ids_by_create_time(false, None, 1000)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        reader
            .ended_job_counts()
            .unwrap()
            .iter()
            .map(|(_, _, n)| n)
            .sum::<u64>(),
        0
    );
    // The history stays: the audit log is whole.
    assert_eq!(reader.audit_log(0, 1000).unwrap().len(), 300);
    drop(reader);
    drop(store);
    let (before, after) = Store::compact(&path).unwrap().unwrap();
    assert!(after < before, "{before} -> {after}");
}

/// The IDs `index` lists, oldest first.
fn listed(store: &Store, index: &JobIndex) -> Vec<String> {
    store
        .read()
        .unwrap()
        .job_ids_in(index, false, None, 100)
        .unwrap()
        .into_iter()
        .map(|(_, id)| id.to_string())
        .collect()
}

#[tokio::test]
async fn job_indexes_follow_state_and_label_changes_and_deletion_and_are_built_for_old_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path).unwrap();
    let labelled = |id: &str, t: i64, team: &str, state: JobStateType| {
        let mut j = job(id, id, t);
        j.labels.insert("team".into(), team.into());
        j.state = State::new(state);
        j
    };
    store
        .write(move |w| {
            w.put_job(&labelled("j-1", 1, "ml", JobStateType::Running))?;
            w.put_job(&labelled("j-2", 2, "web", JobStateType::Running))?;
            let mut other = labelled("j-3", 3, "ml", JobStateType::Pending);
            other.namespace = "lab".into();
            w.put_job(&other)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let running = JobIndex::State(JobStateType::Running);
    let ml = JobIndex::Label("team".into(), "ml".into());
    assert_eq!(listed(&store, &running), ["j-1", "j-2"]);
    assert_eq!(listed(&store, &ml), ["j-1", "j-3"]);
    assert_eq!(
        listed(
            &store,
            &JobIndex::NamespaceState("lab".into(), JobStateType::Pending)
        ),
        ["j-3"]
    );
    // Newest first, and after a cursor.
    let reader = store.read().unwrap();
    let newest: Vec<_> = reader
        .job_ids_in(&ml, true, None, 1)
        .unwrap()
        .into_iter()
        .map(|(_, id)| id.to_string())
        .collect();
    assert_eq!(newest, ["j-3"]);
    let after: Vec<_> = reader
        .job_ids_in(&ml, true, Some((3, "j-3")), 10)
        .unwrap()
        .into_iter()
        .map(|(_, id)| id.to_string())
        .collect();
    assert_eq!(after, ["j-1"]);
    drop(reader);

    // j-1 completes and moves to another team; j-2 ends and is dropped.
    store
        .write(move |w| {
            w.put_job(&labelled("j-1", 1, "web", JobStateType::Completed))?;
            w.put_job(&labelled("j-2", 2, "web", JobStateType::Failed))?;
            w.delete_job(&JobId::from("j-2"))?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    assert!(listed(&store, &running).is_empty());
    assert_eq!(listed(&store, &ml), ["j-3"]);
    let web = JobIndex::Label("team".into(), "web".into());
    assert_eq!(listed(&store, &web), ["j-1"]);
    assert!(listed(&store, &JobIndex::State(JobStateType::Failed)).is_empty());
    drop(store);

    // A store written before the indexes existed is indexed once at open.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(JOB_INDEX)
            .unwrap()
            .retain(|_, _| false)
            .unwrap();
        txn.open_table(JOB_INDEXED)
            .unwrap()
            .retain(|_, _| false)
            .unwrap();
        txn.open_table(META).unwrap().remove(JOBS_INDEXED).unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(listed(&store, &web), ["j-1"]);
    assert_eq!(
        listed(&store, &JobIndex::State(JobStateType::Completed)),
        ["j-1"]
    );
    assert_eq!(listed(&store, &ml), ["j-3"]);
}

/// A watch of a job is woken by a committed write that added one of its events, and only by
/// that: a write that failed, or one about another job, leaves it asleep.
#[tokio::test]
async fn a_job_s_watchers_are_woken_by_its_committed_events_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let mut watch = store.watch_job(&JobId::from("j-1"));
    store
        .write(|w| w.add_history(event("j-2", "another job")))
        .await
        .unwrap();
    let failed = store
        .write(|w| {
            w.add_history(event("j-1", "never kept"))?;
            Err::<(), _>(StoreError::Db("the caller gave up".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(!watch.has_changed(), "no event of j-1 was committed yet");
    store
        .write(|w| w.add_history(event("j-1", "Job submitted")))
        .await
        .unwrap();
    assert!(watch.has_changed());
    tokio::time::timeout(std::time::Duration::from_secs(5), watch.changed())
        .await
        .expect("the committed event wakes the watch");
    assert_eq!(
        store
            .read()
            .unwrap()
            .last_event_of(&JobId::from("j-1"))
            .unwrap(),
        3,
        "the third event of the store is j-1's latest"
    );
}

/// A store of the layout before job numbers (per-job rows keyed by the job's ID) is moved to
/// job numbers at open: jobs numbered in creation order, then a job only the audit log still
/// names; every record reads back as before, the old tables are gone, and the next job takes
/// the next number.
#[tokio::test]
async fn a_store_keyed_by_job_id_is_renumbered_at_open() {
    use redb::TableHandle;
    const OLD_JOBS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("jobs");
    const OLD_VERSIONS: redb::TableDefinition<(&str, u64), &[u8]> =
        redb::TableDefinition::new("job_versions");
    const OLD_EXECUTIONS: redb::TableDefinition<&str, &[u8]> =
        redb::TableDefinition::new("executions");
    const OLD_JOB_EXECUTIONS: redb::TableDefinition<&str, &str> =
        redb::TableDefinition::new("job_executions");
    const OLD_HISTORY: redb::TableDefinition<(&str, u64), &[u8]> =
        redb::TableDefinition::new("history");
    const OLD_ORDER: redb::TableDefinition<u64, &str> =
        redb::TableDefinition::new("history_by_seq");
    const OLD_ACTIVE: redb::TableDefinition<&str, ()> = redb::TableDefinition::new("active_jobs");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut running = job("j-b", "second", 20);
    running.state = State::new(JobStateType::Running);
    let mut done = job("j-a", "first", 10);
    done.state = State::new(JobStateType::Completed);
    let execution = Execution {
        id: ExecutionId::from("e-1"),
        job_id: JobId::from("j-b"),
        ..Default::default()
    };
    let mut node_event = event("", "node approved");
    node_event.r#type = JobHistoryType::NodeLevel;
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            fn json(value: &impl serde::Serialize) -> Vec<u8> {
                serde_json::to_vec(value).unwrap()
            }
            let mut jobs = txn.open_table(OLD_JOBS).unwrap();
            let mut versions = txn.open_table(OLD_VERSIONS).unwrap();
            let mut by_create = txn.open_table(JOBS_BY_CREATE).unwrap();
            for job in [&running, &done] {
                jobs.insert(job.id.as_str(), json(job).as_slice()).unwrap();
                versions
                    .insert((job.id.as_str(), 1), json(job).as_slice())
                    .unwrap();
                by_create
                    .insert((job.create_time, job.id.as_str()), ())
                    .unwrap();
            }
            txn.open_table(OLD_ACTIVE)
                .unwrap()
                .insert("j-b", ())
                .unwrap();
            txn.open_table(OLD_EXECUTIONS)
                .unwrap()
                .insert("e-1", json(&execution).as_slice())
                .unwrap();
            txn.open_table(OLD_JOB_EXECUTIONS)
                .unwrap()
                .insert("j-b/e-1", "e-1")
                .unwrap();
            let mut history = txn.open_table(OLD_HISTORY).unwrap();
            let mut order = txn.open_table(OLD_ORDER).unwrap();
            for (seq, owner) in [(1, "j-gone"), (2, "j-a"), (3, ""), (4, "j-b")] {
                if owner.is_empty() {
                    txn.open_table(NODE_HISTORY)
                        .unwrap()
                        .insert(seq, json(&node_event).as_slice())
                        .unwrap();
                } else {
                    let mut event = event(owner, "Job submitted");
                    event.seq_num = seq;
                    history
                        .insert((owner, seq), json(&event).as_slice())
                        .unwrap();
                }
                order.insert(seq, owner).unwrap();
            }
            txn.open_table(META)
                .unwrap()
                .insert(HISTORY_SEQ, 4)
                .unwrap();
        }
        txn.commit().unwrap();
    }

    let store = Store::open(&path).unwrap();
    {
        let reader = store.read().unwrap();
        let names: Vec<String> = (reader.txn.list_tables().unwrap())
            .map(|t| t.name().to_string())
            .collect();
        for old in [
            "jobs",
            "job_versions",
            "executions",
            "job_executions",
            "history",
        ] {
            assert!(!names.iter().any(|n| n == old), "{old} is still there");
        }
        let id = |s: &str| JobId::from(s);
        assert_eq!(reader.job(&id("j-a")).unwrap().unwrap().name, "first");
        assert_eq!(reader.job(&id("j-b")).unwrap().unwrap().name, "second");
        assert_eq!(reader.job_versions(&id("j-b")).unwrap().len(), 1);
        assert_eq!(
            reader.job_version(&id("j-a"), 1).unwrap().unwrap().name,
            "first"
        );
        assert_eq!(
            reader.executions_of(&id("j-b")).unwrap(),
            std::slice::from_ref(&execution)
        );
        assert_eq!(
            reader
                .execution(&id("j-b"), &ExecutionId::from("e-1"))
                .unwrap(),
            Some(execution.clone())
        );
        assert_eq!(reader.active_job_ids().unwrap(), [id("j-b")]);
        assert_eq!(reader.history_of(&id("j-gone")).unwrap().len(), 1);
        assert_eq!(reader.last_event_of(&id("j-b")).unwrap(), 4);
        let log: Vec<(u64, String)> = reader
            .audit_log(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq_num, e.job_id.to_string()))
            .collect();
        assert_eq!(
            log,
            [
                (1, "j-gone".to_string()),
                (2, "j-a".into()),
                (0, String::new()),
                (4, "j-b".into())
            ]
        );
        assert_eq!(
            reader.job_ids_with_prefix("j-", 10).unwrap(),
            [id("j-a"), id("j-b")]
        );
        // Numbers follow creation (j-a before j-b), then the log (j-gone).
        assert_eq!(reader.number_of("j-a").unwrap(), Some(1));
        assert_eq!(reader.number_of("j-b").unwrap(), Some(2));
        assert_eq!(reader.number_of("j-gone").unwrap(), Some(3));
    }
    assert_eq!(
        listed(&store, &JobIndex::State(JobStateType::Running)),
        ["j-b"]
    );
    store
        .write(|w| w.put_job(&job("j-c", "third", 30)))
        .await
        .unwrap();
    assert_eq!(store.read().unwrap().number_of("j-c").unwrap(), Some(4));
    drop(store);
    // Opening again changes nothing.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.read().unwrap().job_count().unwrap(), 3);
}
