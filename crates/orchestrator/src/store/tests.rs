//! The store's tests: writes, reads, the outbox and the audit chain on a real redb file.

use super::*;
use bacalhau_models::{JobHistoryType, history::Event};

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
    assert_eq!(
        reader.job_id_by_name("default", "j-ab2").unwrap(),
        Some(JobId::from("j-ab2"))
    );
}
