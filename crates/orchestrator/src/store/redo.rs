//! What a single orchestrator's store writes to its redo log (`bacalhau_durable::redo`): a
//! group's touched rows with their values after the group, the same [`Change`]s a cluster
//! member applies, so a record already in the last checkpoint applies again harmlessly.

use super::replication::{Change, Journal, Row, apply, changes};
use bacalhau_durable::DurableError;
use bacalhau_durable::redo::Redo;
use redb::WriteTransaction;
use std::sync::{Arc, Mutex};

/// The first byte of a record in the current layout: the changes, in postcard.
const POSTCARD_RECORD: u8 = 2;
/// The first byte of a record written by the first layout, a JSON object
/// (`{"format":1,"changes":[...]}`), still read so a log left by that version applies.
const JSON_RECORD: u8 = b'{';

/// A record of the first layout.
#[derive(serde::Deserialize)]
struct JsonRecord {
    format: u32,
    changes: Vec<Change>,
}

/// The orchestrator's [`Redo`]: reads the rows its writers noted in the [`Journal`].
pub(super) struct ChangeLog {
    journal: Arc<Mutex<Journal>>,
}

impl ChangeLog {
    pub(super) fn new(journal: Arc<Mutex<Journal>>) -> Self {
        Self { journal }
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn db_error(e: impl std::fmt::Display) -> DurableError {
    DurableError::Db(e.to_string())
}

/// Reads a record of either layout.
fn decode(record: &[u8]) -> Result<Vec<Change>, DurableError> {
    match record.split_first() {
        Some((&POSTCARD_RECORD, changes)) => postcard::from_bytes(changes).map_err(db_error),
        Some((&JSON_RECORD, _)) => {
            let record: JsonRecord = serde_json::from_slice(record).map_err(db_error)?;
            if record.format != 1 {
                return Err(DurableError::Db(format!(
                    "a record of format {} (this version reads 1 and 2): start the version that wrote it once to apply it",
                    record.format
                )));
            }
            Ok(record.changes)
        }
        Some((other, _)) => Err(DurableError::Db(format!(
            "a record of an unknown layout ({other}; this version reads 1 and 2): start the version that wrote it once to apply it"
        ))),
        None => Err(DurableError::Db("an empty record".into())),
    }
}

/// Whether `change` drops an outbox message, which only a trim does: a trim is not logged.
/// Lost in a crash, it costs nothing: the node has applied the message (it acknowledged it),
/// so at the next handshake the connection resumes after what the node applied and trims
/// again. A group of trims alone is then committed without a sync (about one per job).
fn is_trim(change: &Change) -> bool {
    matches!(change.row, Row::Outbox(..)) && change.value.is_none()
}

impl Redo for ChangeLog {
    fn forget(&mut self) {
        self.journal().take();
    }

    fn record(&mut self, txn: &WriteTransaction) -> Result<Option<Vec<u8>>, DurableError> {
        let rows = self.journal().take();
        if rows.is_empty() {
            return Ok(None);
        }
        let mut changes = changes(txn, rows).map_err(db_error)?;
        changes.retain(|change| !is_trim(change));
        if changes.is_empty() {
            return Ok(None);
        }
        let record = postcard::to_extend(&changes, vec![POSTCARD_RECORD]).map_err(db_error)?;
        Ok(Some(record))
    }

    fn replay(&self, txn: &WriteTransaction, record: &[u8]) -> Result<(), DurableError> {
        apply(txn, &decode(record)?).map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::replication::Value;

    fn sample() -> Vec<Change> {
        vec![
            Change {
                row: Row::Job(7),
                value: Some(Value::Json(
                    r#"{"ID":"j-1","Name":"a \"quoted\" name"}"#.into(),
                )),
            },
            Change {
                row: Row::Outbox("n-1".into(), 3),
                value: None,
            },
            Change {
                row: Row::Meta("next".into()),
                value: Some(Value::Number(42)),
            },
        ]
    }

    #[test]
    fn a_record_reads_back_as_the_changes_it_holds() {
        let record = postcard::to_extend(&sample(), vec![POSTCARD_RECORD]).unwrap();
        assert_eq!(decode(&record).unwrap(), sample());
    }

    #[test]
    fn a_record_of_the_first_layout_still_reads() {
        let json = serde_json::to_vec(&serde_json::json!({
            "format": 1,
            "changes": sample(),
        }))
        .unwrap();
        assert_eq!(decode(&json).unwrap(), sample());
    }

    #[test]
    fn a_record_of_an_unknown_layout_is_refused_with_a_reason() {
        let e = decode(&[9, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("unknown layout"), "{e}");
        let json = br#"{"format":3,"changes":[]}"#;
        let e = decode(json).unwrap_err().to_string();
        assert!(e.contains("format 3"), "{e}");
        assert!(decode(&[]).is_err());
    }
}
