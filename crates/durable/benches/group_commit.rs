//! Durable writes per second through group commit: WRITERS concurrent tasks each write small
//! records until TOTAL are durable, beside the floor of one fsync'd redb transaction per write
//! (what group commit saves) measured in the same run.
//!
//!   cargo bench -p bacalhau-durable --bench group_commit -- [TOTAL] [WRITERS]

use bacalhau_durable::{Durable, DurableError};
use redb::{Database, TableDefinition};
use std::time::Instant;

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(20_000);
    let writers = args.get(1).copied().unwrap_or(64);
    let dir = tempfile::tempdir().expect("a temp dir");
    let record = vec![7u8; 512];

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let durable = Durable::open(&dir.path().join("group.redb"), "bench-writer", |txn| {
        txn.open_table(T).map(|_| ())
    })
    .expect("the database");
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let durable = durable.clone();
            let record = record.clone();
            tasks.push(tokio::spawn(async move {
                let mut key = w;
                while key < total {
                    let record = record.clone();
                    durable
                        .write(move |txn| {
                            txn.open_table(T)?.insert(key, record.as_slice())?;
                            Ok::<_, DurableError>(())
                        })
                        .await
                        .expect("a durable write");
                    key += writers;
                }
            }));
        }
        for task in tasks {
            task.await.expect("a writer");
        }
    });
    let grouped = total as f64 / started.elapsed().as_secs_f64();

    // The floor: one fsync'd transaction per write, from one thread.
    let db = Database::create(dir.path().join("single.redb")).expect("the database");
    let single_total = (total / 20).max(100);
    let started = Instant::now();
    for key in 0..single_total {
        let txn = db.begin_write().expect("a transaction");
        txn.open_table(T)
            .expect("the table")
            .insert(key, record.as_slice())
            .expect("an insert");
        txn.commit().expect("a commit");
    }
    let single = single_total as f64 / started.elapsed().as_secs_f64();
    println!(
        "| durable writes/s, {writers} concurrent writers, {total} writes of 512 B (group commit) | {grouped:.0} | one fsync'd redb transaction per write: {single:.0} | {:.1}× |",
        grouped / single
    );
}
