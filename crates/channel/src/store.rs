//! The channel's durable half, laid out the same on both ends: an outbox of numbered messages
//! per peer and two sequence numbers per peer (`out`, the last number given to a message for
//! it; `in`, the last of its messages applied here), in two redb tables that live in the side's
//! own database, so a message is queued in the same transaction as the state change that
//! caused it, and applied in the same transaction as the number that records it.
//!
//! [`apply`] is the one way to record a received message as applied: it runs the handler only
//! for the next message ([`crate::reliable::delivery`]), so no handler can forget the replay
//! check. The orchestrator keys these tables by node ID; a compute node by [`ORCHESTRATOR`].

use crate::reliable::{Delivery, delivery};
use bacalhau_protocol::Message;
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction,
};

/// (peer, sequence) → a message (JSON) waiting for the peer's acknowledgement. Public for a
/// replicated store, which copies rows of every table it holds.
pub const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
/// (direction, peer) → sequence: [`OUT`] the last given to a message for the peer, [`IN`] the
/// last of the peer's messages applied here.
pub const SEQUENCES: TableDefinition<(&str, &str), u64> = TableDefinition::new("sequences");
/// The direction of the number last given to a message for the peer.
pub const OUT: &str = "out";
/// The direction of the number of the peer's last message applied here.
pub const IN: &str = "in";

/// The peer a compute node's tables are kept for: its orchestrator (one channel).
pub const ORCHESTRATOR: &str = "orchestrator";

/// What can go wrong in the channel's tables.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("channel store I/O: {0}")]
    Db(String),
    /// A queued message could not be decoded.
    #[error("corrupt message {seq} for {peer} in the outbox: {reason}")]
    Corrupt {
        /// Whom it was for.
        peer: String,
        /// Its number.
        seq: u64,
        /// What the decoder said.
        reason: String,
    },
    /// A message could not be encoded.
    #[error("cannot encode a message for {peer}: {reason}")]
    Encode {
        /// Whom it was for.
        peer: String,
        /// What the encoder said.
        reason: String,
    },
}

macro_rules! db_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )+};
}
db_errors!(redb::StorageError, redb::TableError);

/// What [`apply`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// Applied; the handler's result.
    Done(T),
    /// Applied before (a replay or a duplicate): nothing changed.
    Replay,
    /// An earlier message is missing: nothing applied; the connection should be dropped so the
    /// next handshake resumes from the last applied one.
    Missing {
        /// The message that should have come.
        expected: u64,
    },
}

impl<T> Applied<T> {
    /// The message that should have come first, when one is missing.
    pub fn missing(&self) -> Option<u64> {
        match self {
            Applied::Missing { expected } => Some(*expected),
            _ => None,
        }
    }

    /// The handler's result, if it ran.
    pub fn done(self) -> Option<T> {
        match self {
            Applied::Done(value) => Some(value),
            _ => None,
        }
    }
}

/// Creates the channel's tables, so readers never meet a missing one.
pub fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(OUTBOX)?;
    txn.open_table(SEQUENCES)?;
    Ok(())
}

/// A side's write-transaction wrapper, through which [`apply`] reaches the tables and then
/// hands the same wrapper to the handler.
pub trait ChannelTxn {
    /// The redb transaction underneath.
    fn channel_txn(&self) -> &WriteTransaction;
}

impl ChannelTxn for WriteTransaction {
    fn channel_txn(&self) -> &WriteTransaction {
        self
    }
}

/// A transaction the channel's tables can be read in: a snapshot or a write in progress.
pub trait Readable {
    /// The outbox as this transaction sees it.
    type Outbox<'a>: ReadableTable<(&'static str, u64), &'static [u8]>
    where
        Self: 'a;
    /// The sequence numbers as this transaction sees them.
    type Sequences<'a>: ReadableTable<(&'static str, &'static str), u64>
    where
        Self: 'a;
    /// Opens the outbox.
    fn outbox(&self) -> Result<Self::Outbox<'_>, redb::TableError>;
    /// Opens the sequence numbers.
    fn sequences(&self) -> Result<Self::Sequences<'_>, redb::TableError>;
}

impl Readable for ReadTransaction {
    type Outbox<'a> = ReadOnlyTable<(&'static str, u64), &'static [u8]>;
    type Sequences<'a> = ReadOnlyTable<(&'static str, &'static str), u64>;
    fn outbox(&self) -> Result<Self::Outbox<'_>, redb::TableError> {
        self.open_table(OUTBOX)
    }
    fn sequences(&self) -> Result<Self::Sequences<'_>, redb::TableError> {
        self.open_table(SEQUENCES)
    }
}

impl Readable for WriteTransaction {
    type Outbox<'a> = Table<'a, (&'static str, u64), &'static [u8]>;
    type Sequences<'a> = Table<'a, (&'static str, &'static str), u64>;
    fn outbox(&self) -> Result<Self::Outbox<'_>, redb::TableError> {
        self.open_table(OUTBOX)
    }
    fn sequences(&self) -> Result<Self::Sequences<'_>, redb::TableError> {
        self.open_table(SEQUENCES)
    }
}

fn sequence(txn: &impl Readable, direction: &str, peer: &str) -> Result<u64, StoreError> {
    let found = txn.sequences()?.get((direction, peer))?.map(|v| v.value());
    Ok(found.unwrap_or(0))
}

/// The last of `peer`'s messages applied here (0: none yet); said at each handshake, so the
/// peer resumes after it.
pub fn applied(txn: &impl Readable, peer: &str) -> Result<u64, StoreError> {
    sequence(txn, IN, peer)
}

/// The last number given to a message for `peer` (0: none yet).
pub fn last_queued(txn: &impl Readable, peer: &str) -> Result<u64, StoreError> {
    sequence(txn, OUT, peer)
}

/// Messages for `peer` numbered above `after`, oldest first, at most `limit`.
pub fn outbox_after(
    txn: &impl Readable,
    peer: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, Message)>, StoreError> {
    let table = txn.outbox()?;
    let mut messages = Vec::new();
    for entry in table
        .range((peer, after.saturating_add(1))..=(peer, u64::MAX))?
        .take(limit)
    {
        let (key, value) = entry?;
        let seq = key.value().1;
        let message = serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
            peer: peer.to_string(),
            seq,
            reason: e.to_string(),
        })?;
        messages.push((seq, message));
    }
    Ok(messages)
}

/// How many messages wait for `peer`'s acknowledgement.
pub fn outbox_len(txn: &impl Readable, peer: &str) -> Result<u64, StoreError> {
    let table = txn.outbox()?;
    let mut count = 0;
    for entry in table.range((peer, 0u64)..=(peer, u64::MAX))? {
        entry?;
        count += 1;
    }
    Ok(count)
}

/// Queues `message` for `peer` with the peer's next number, which it returns.
pub fn enqueue(txn: &WriteTransaction, peer: &str, message: &Message) -> Result<u64, StoreError> {
    let bytes = serde_json::to_vec(message).map_err(|e| StoreError::Encode {
        peer: peer.to_string(),
        reason: e.to_string(),
    })?;
    let seq = last_queued(txn, peer)? + 1;
    txn.sequences()?.insert((OUT, peer), seq)?;
    txn.outbox()?.insert((peer, seq), bytes.as_slice())?;
    Ok(seq)
}

/// Drops `peer`'s messages up to `up_to`, which the peer has applied (its acknowledgement, or
/// the number it gave at the handshake); returns the numbers of those it dropped.
pub fn acknowledged(
    txn: &WriteTransaction,
    peer: &str,
    up_to: u64,
) -> Result<Vec<u64>, StoreError> {
    let mut table = txn.outbox()?;
    let done: Vec<u64> = table
        .range((peer, 0u64)..=(peer, up_to))?
        .map(|entry| entry.map(|(key, _)| key.value().1))
        .collect::<Result<_, _>>()?;
    for seq in &done {
        table.remove((peer, *seq))?;
    }
    Ok(done)
}

/// Takes over a channel with `peer` kept in an older layout: the numbers (`queued`, the last
/// given to a message for the peer; `applied`, the last of its messages applied here) and the
/// messages still waiting, with their numbers unchanged, since the peer resumes by them.
pub fn adopt(
    txn: &WriteTransaction,
    peer: &str,
    queued: u64,
    applied: u64,
    waiting: &[(u64, Message)],
) -> Result<(), StoreError> {
    let mut sequences = txn.sequences()?;
    if queued > 0 {
        sequences.insert((OUT, peer), queued)?;
    }
    if applied > 0 {
        sequences.insert((IN, peer), applied)?;
    }
    let mut outbox = txn.outbox()?;
    for (seq, message) in waiting {
        let bytes = serde_json::to_vec(message).map_err(|e| StoreError::Encode {
            peer: peer.to_string(),
            reason: e.to_string(),
        })?;
        outbox.insert((peer, *seq), bytes.as_slice())?;
    }
    Ok(())
}

/// Applies `peer`'s message number `seq` with `handle`, in the caller's transaction together
/// with the number that records it, following the channel's rules: a replay (at or below what
/// was applied) and a message after a gap are not handed to `handle`. A handler that fails
/// records nothing, so the message is applied when it comes again.
pub fn apply<C, T, E>(
    cx: &mut C,
    peer: &str,
    seq: u64,
    handle: impl FnOnce(&mut C) -> Result<T, E>,
) -> Result<Applied<T>, E>
where
    C: ChannelTxn + ?Sized,
    E: From<StoreError>,
{
    match delivery(applied(cx.channel_txn(), peer)?, seq) {
        Delivery::Replay => Ok(Applied::Replay),
        Delivery::Gap { expected } => Ok(Applied::Missing { expected }),
        Delivery::Apply => {
            let done = handle(cx)?;
            cx.channel_txn()
                .sequences()
                .map_err(StoreError::from)?
                .insert((IN, peer), seq)
                .map_err(StoreError::from)?;
            Ok(Applied::Done(done))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::ExecutionId;
    use bacalhau_protocol::Message;
    use redb::backends::InMemoryBackend;
    use redb::{Database, ReadableDatabase};

    fn database() -> Database {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .unwrap();
        let txn = db.begin_write().unwrap();
        create_tables(&txn).unwrap();
        txn.commit().unwrap();
        db
    }

    fn message(n: u64) -> Message {
        Message::CancelExecution {
            execution_id: ExecutionId::from(format!("e-{n}").as_str()),
            reason: String::new(),
        }
    }

    #[test]
    fn peers_number_their_messages_apart_and_trim_on_acknowledgement() {
        let db = database();
        let txn = db.begin_write().unwrap();
        for n in 1..=3 {
            assert_eq!(enqueue(&txn, "a", &message(n)).unwrap(), n);
        }
        assert_eq!(enqueue(&txn, "b", &message(9)).unwrap(), 1);
        acknowledged(&txn, "a", 2).unwrap();
        txn.commit().unwrap();

        let read = db.begin_read().unwrap();
        let left = outbox_after(&read, "a", 0, 10).unwrap();
        assert_eq!(left, vec![(3, message(3))]);
        assert_eq!(outbox_len(&read, "b").unwrap(), 1);
        assert_eq!(last_queued(&read, "a").unwrap(), 3);
    }

    #[test]
    fn apply_runs_the_handler_for_the_next_message_only() {
        let db = database();
        let mut txn = db.begin_write().unwrap();
        let mut ran = Vec::new();
        let expected = [
            (1, Applied::Done(1)),
            (1, Applied::Replay),
            (2, Applied::Done(2)),
            (4, Applied::Missing { expected: 3 }),
            (3, Applied::Done(3)),
        ];
        for (seq, outcome) in expected {
            let got = apply::<_, _, StoreError>(&mut txn, "a", seq, |_| {
                ran.push(seq);
                Ok(seq)
            })
            .unwrap();
            assert_eq!(got, outcome, "message {seq}");
        }
        assert_eq!(ran, vec![1, 2, 3]);
        assert_eq!(applied(&txn, "a").unwrap(), 3);
        assert_eq!(applied(&txn, "b").unwrap(), 0);
    }

    #[test]
    fn a_failing_handler_records_nothing() {
        let db = database();
        let mut txn = db.begin_write().unwrap();
        let failed = apply::<_, (), StoreError>(&mut txn, "a", 1, |_| {
            Err(StoreError::Db("handler failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(applied(&txn, "a").unwrap(), 0);
    }
}
