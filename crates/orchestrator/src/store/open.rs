//! The tables of a group of writes, each opened once for the whole group.
//!
//! Why: opening a redb table looks its name up in the database's table tree and decodes its
//! definition, and closing it writes its root back; a job's submission reaches some fifteen
//! tables thirty-odd times, and a group holds tens of writes. Opened once per group (the
//! writer thread's `Group` scope, dropped before the commit) that was ~16 % of the writer
//! thread's time under load. A [`Reader`](super::Reader) opens its tables per query, as before.

use super::StoreError;
use super::tables::*;
use bacalhau_durable::Group;
use redb::{ReadOnlyTable, Table, WriteTransaction};
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;

/// The group kind of the store's writer: its closures share an [`Open`].
pub(super) struct OpenTables;

impl Group for OpenTables {
    type Scope<'t> = Open<'t>;

    fn scope(txn: &WriteTransaction) -> Open<'_> {
        Open::new(txn)
    }
}

/// Takes the slot of a table, opening it on first use.
fn slot<'s, 't, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &'t WriteTransaction,
    cell: &'s RefCell<Option<Table<'t, K, V>>>,
    definition: redb::TableDefinition<K, V>,
) -> Result<RefMut<'s, Table<'t, K, V>>, StoreError> {
    use redb::TableHandle;
    let mut slot = cell.try_borrow_mut().map_err(|_| {
        // A bug: one write holds the same table twice. Refused rather than a panic.
        StoreError::Db(format!(
            "table {} is already in use in this write",
            definition.name()
        ))
    })?;
    if slot.is_none() {
        *slot = Some(txn.open_table(definition)?);
    }
    RefMut::filter_map(slot, Option::as_mut)
        .map_err(|_| StoreError::Db(format!("table {} did not open", definition.name())))
}

macro_rules! open_tables {
    ($($table:ident: $definition:ident => $key:ty, $value:ty;)+) => {
        /// A group's transaction, its tables opened as they are first used (the channel's
        /// outbox tables excepted: `bacalhau_channel` opens those itself), and the job
        /// numbers looked up or given in it.
        pub struct Open<'t> {
            pub(super) txn: &'t WriteTransaction,
            /// A job's number never changes once given, so the group remembers each it meets.
            numbers: RefCell<HashMap<String, u64>>,
            $($table: RefCell<Option<Table<'t, $key, $value>>>,)+
        }

        impl<'t> Open<'t> {
            fn new(txn: &'t WriteTransaction) -> Self {
                Self {
                    txn,
                    numbers: RefCell::default(),
                    $($table: RefCell::new(None),)+
                }
            }

            pub(super) fn remembered(&self, id: &str) -> Option<u64> {
                self.numbers.borrow().get(id).copied()
            }

            pub(super) fn remember(&self, id: &str, number: u64) {
                self.numbers.borrow_mut().insert(id.to_string(), number);
            }

            $(
                pub(super) fn $table(&self) -> Result<RefMut<'_, Table<'t, $key, $value>>, StoreError> {
                    slot(self.txn, &self.$table, $definition)
                }
            )+
        }

        impl<'a, 't> super::Writer<'a, 't> {
            $(
                // The table borrows the group's scope, not the writer, so the writer's own
                // `&mut self` methods stay callable while it is held.
                pub(super) fn $table(&self) -> Result<RefMut<'a, Table<'t, $key, $value>>, StoreError> {
                    self.open.$table()
                }
            )+
        }

        #[allow(dead_code, reason = "a read outside a write does not reach every table")]
        impl super::Reader {
            $(
                pub(super) fn $table(&self) -> Result<ReadOnlyTable<$key, $value>, StoreError> {
                    Ok(self.txn.open_table($definition)?)
                }
            )+
        }
    };
}

open_tables! {
    meta_table: META => &'static str, u64;
    job_numbers_table: JOB_NUMBERS => &'static str, u64;
    jobs_table: JOBS => u64, &'static [u8];
    job_versions_table: JOB_VERSIONS => (u64, u64), &'static [u8];
    job_names_table: JOB_NAMES => &'static str, &'static str;
    jobs_by_create_table: JOBS_BY_CREATE => (i64, &'static str), ();
    executions_table: EXECUTIONS => (u64, &'static str), &'static [u8];
    evaluations_table: EVALUATIONS => &'static str, &'static [u8];
    history_table: HISTORY => (u64, u64), &'static [u8];
    history_by_seq_table: HISTORY_BY_SEQ => u64, u64;
    node_history_table: NODE_HISTORY => u64, &'static [u8];
    chain_head_table: CHAIN_HEAD => &'static str, &'static str;
    nodes_table: NODES => &'static str, &'static [u8];
    active_jobs_table: ACTIVE_JOBS => u64, &'static str;
    cache_table: CACHE => &'static str, &'static [u8];
    links_table: LINKS => (&'static str, &'static str), &'static str;
    job_index_table: JOB_INDEX => (&'static str, i64, &'static str), ();
    job_indexed_table: JOB_INDEXED => u64, &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable};

    #[test]
    fn a_table_is_opened_once_per_group_and_never_held_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("db.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let open = Open::new(&txn);
        open.meta_table().unwrap().insert("k", 7).unwrap();
        {
            let held = open.meta_table().unwrap();
            // A second hold of the same table is refused with an error, not a panic.
            let again = open.meta_table().err().map(|e| e.to_string());
            assert!(
                again
                    .as_deref()
                    .is_some_and(|e| e.contains("already in use")),
                "{again:?}"
            );
            // The first hold still sees the group's write.
            assert_eq!(held.get("k").unwrap().unwrap().value(), 7);
        }
        // Released, it is the same open table again.
        assert_eq!(
            open.meta_table()
                .unwrap()
                .get("k")
                .unwrap()
                .unwrap()
                .value(),
            7
        );
        drop(open);
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let meta = read.open_table(META).unwrap();
        assert_eq!(meta.get("k").unwrap().unwrap().value(), 7);
    }
}
