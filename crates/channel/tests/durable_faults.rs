//! The channel's real tables (`bacalhau_channel::store`) under random fault schedules: a sender
//! and a receiver, each with its own redb database, talk over a link that drops, duplicates,
//! holds back and cuts frames, while either side is killed at random steps — sometimes in the
//! middle of applying a message, before its commit. A kill takes an image of the database's
//! bytes at that instant (what a `kill -9` leaves on disk: redb's commits are whole or absent),
//! drops every handle and reopens the image, so recovery is redb's own. Whatever the schedule,
//! every message committed to the sender's outbox is applied exactly once, in order, and once
//! the faults stop everything gets through and the outbox drains.

mod common;

use bacalhau_channel::reliable::Sending;
use bacalhau_channel::store::{self as channel, Applied};
use bacalhau_models::ExecutionId;
use bacalhau_protocol::Message;
use common::{Fault, Step, step};
use proptest::prelude::*;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend,
    TableDefinition,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Each side's name for the other in its tables.
const SENDER: &str = "sender";
const RECEIVER: &str = "receiver";
/// What the receiver's handler does: appends the message's body, in the apply transaction.
const LOG: TableDefinition<u64, u64> = TableDefinition::new("applied_log");

/// A disk in memory that outlives the database using it, so a killed side can be reopened.
#[derive(Debug, Clone, Default)]
struct Disk(Arc<Mutex<Vec<u8>>>);

impl Disk {
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A test double: a poisoned lock means a test already failed.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What is on this disk right now, as a new disk: the state a kill -9 leaves.
    fn image(&self) -> Disk {
        Disk(Arc::new(Mutex::new(self.bytes().clone())))
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.bytes().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let bytes = self.bytes();
        let start = offset as usize;
        let end = start + out.len();
        if end > bytes.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end",
            ));
        }
        out.copy_from_slice(&bytes[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.bytes().resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut bytes = self.bytes();
        let start = offset as usize;
        let end = start + data.len();
        if end > bytes.len() {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(data);
        Ok(())
    }
}

/// One side's database on its disk.
struct Side {
    disk: Disk,
    db: Database,
}

impl Side {
    fn open(disk: Disk) -> Side {
        let db = Database::builder()
            .create_with_backend(disk.clone())
            .expect("the database opens");
        let txn = db.begin_write().expect("a write");
        channel::create_tables(&txn).expect("the channel's tables");
        txn.open_table(LOG).expect("the log");
        txn.commit().expect("commit");
        Side { disk, db }
    }

    /// kill -9: whatever is on disk now is all that is left.
    fn kill(self) -> Side {
        let image = self.disk.image();
        drop(self.db);
        Side::open(image)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Message { seq: u64, body: Box<Message> },
    Ack { seq: u64 },
}

/// A message whose body says which one it is.
fn numbered(n: u64) -> Message {
    Message::CancelExecution {
        execution_id: ExecutionId::from(format!("m-{n}").as_str()),
        reason: n.to_string(),
    }
}

fn number_of(message: &Message) -> u64 {
    match message {
        Message::CancelExecution { reason, .. } => reason.parse().expect("a numbered message"),
        other => panic!("unexpected message {other:?}"),
    }
}

struct World {
    sender: Option<Side>,
    receiver: Option<Side>,
    /// What the sender sent on this connection; gone with the connection or the process.
    sending: Option<Sending>,
    receiver_connected: bool,
    to_receiver: VecDeque<Frame>,
    to_sender: VecDeque<Frame>,
    produced: u64,
}

impl World {
    fn new() -> World {
        World {
            sender: Some(Side::open(Disk::default())),
            receiver: Some(Side::open(Disk::default())),
            sending: None,
            receiver_connected: false,
            to_receiver: VecDeque::new(),
            to_sender: VecDeque::new(),
            produced: 0,
        }
    }

    fn sender(&self) -> &Database {
        &self.sender.as_ref().expect("the sender is up").db
    }

    fn receiver(&self) -> &Database {
        &self.receiver.as_ref().expect("the receiver is up").db
    }

    fn cut(&mut self) {
        self.to_receiver.clear();
        self.to_sender.clear();
        self.sending = None;
        self.receiver_connected = false;
    }

    /// Applies one frame on the receiver; `commit: false` is a kill before the commit.
    fn receive(&mut self, seq: u64, body: Box<Message>, commit: bool) {
        let mut txn = self.receiver().begin_write().expect("a write");
        let applied = channel::apply::<_, _, channel::StoreError>(&mut txn, SENDER, seq, |txn| {
            let mut log = txn.open_table(LOG)?;
            let next = log.len()?;
            log.insert(next, number_of(&body))?;
            Ok(())
        })
        .expect("apply");
        if !commit {
            drop(txn);
            return;
        }
        txn.commit().expect("commit");
        match applied {
            Applied::Done(()) => self.to_sender.push_back(Frame::Ack { seq }),
            Applied::Replay => {
                let read = self.receiver().begin_read().expect("a read");
                let seq = channel::applied(&read, SENDER).expect("applied");
                self.to_sender.push_back(Frame::Ack { seq });
            }
            Applied::Missing { .. } => self.cut(),
        }
    }

    fn run(&mut self, step: &Step) {
        match *step {
            Step::Produce => {
                let txn = self.sender().begin_write().expect("a write");
                channel::enqueue(&txn, RECEIVER, &numbered(self.produced)).expect("enqueue");
                txn.commit().expect("commit");
                self.produced += 1;
            }
            Step::Send(n) => {
                let Some(after) = self.sending.map(|s| s.after()) else {
                    return;
                };
                let read = self.sender().begin_read().expect("a read");
                let batch =
                    channel::outbox_after(&read, RECEIVER, after, usize::from(n)).expect("outbox");
                for (seq, body) in batch {
                    self.to_receiver.push_back(Frame::Message {
                        seq,
                        body: Box::new(body),
                    });
                    if let Some(sending) = self.sending.as_mut() {
                        sending.sent(seq);
                    }
                }
            }
            Step::Deliver(fault) => {
                if !self.receiver_connected {
                    return;
                }
                let Some(frame) = self.to_receiver.pop_front() else {
                    return;
                };
                match fault {
                    Fault::Drop => return,
                    Fault::HoldBack => {
                        self.to_receiver.push_back(frame);
                        return;
                    }
                    Fault::Duplicate => self.to_receiver.push_front(frame.clone()),
                    Fault::None => {}
                }
                if let Frame::Message { seq, body } = frame {
                    self.receive(seq, body, true);
                }
            }
            Step::DeliverAck(lost) => {
                let Some(Frame::Ack { seq }) = self.to_sender.pop_front() else {
                    return;
                };
                if !lost && self.sending.is_some() {
                    let txn = self.sender().begin_write().expect("a write");
                    channel::acknowledged(&txn, RECEIVER, seq).expect("trim");
                    txn.commit().expect("commit");
                }
            }
            Step::Cut => self.cut(),
            Step::KillSender => {
                self.cut();
                self.sender = self.sender.take().map(Side::kill);
            }
            Step::KillReceiver => {
                self.cut();
                self.receiver = self.receiver.take().map(Side::kill);
            }
            Step::KillReceiverMidApply => {
                if let Some(Frame::Message { seq, body }) = self.to_receiver.pop_front() {
                    self.receive(seq, body, false);
                }
                self.cut();
                self.receiver = self.receiver.take().map(Side::kill);
            }
            Step::Handshake => {
                self.cut();
                let read = self.receiver().begin_read().expect("a read");
                let applied = channel::applied(&read, SENDER).expect("applied");
                let txn = self.sender().begin_write().expect("a write");
                channel::acknowledged(&txn, RECEIVER, applied).expect("trim");
                txn.commit().expect("commit");
                self.sending = Some(Sending::resume(applied));
                self.receiver_connected = true;
            }
        }
    }

    fn heal(&mut self) {
        self.run(&Step::Handshake);
        for _ in 0..10_000 {
            if self.waiting() == 0 {
                return;
            }
            self.run(&Step::Send(16));
            while !self.to_receiver.is_empty() {
                self.run(&Step::Deliver(Fault::None));
            }
            while !self.to_sender.is_empty() {
                self.run(&Step::DeliverAck(false));
            }
        }
    }

    fn waiting(&self) -> u64 {
        let read = self.sender().begin_read().expect("a read");
        channel::outbox_len(&read, RECEIVER).expect("outbox")
    }

    /// The bodies the receiver applied, in order.
    fn applied_log(&self) -> Vec<u64> {
        let read = self.receiver().begin_read().expect("a read");
        let log = read.open_table(LOG).expect("the log");
        log.iter()
            .expect("iterate")
            .map(|entry| entry.expect("an entry").1.value())
            .collect()
    }

    fn check_prefix(&self) -> Result<(), TestCaseError> {
        let log = self.applied_log();
        let expected: Vec<u64> = (0..log.len() as u64).collect();
        prop_assert_eq!(&log, &expected, "applied once each, in order");
        prop_assert!(log.len() as u64 <= self.produced);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn over_real_tables_every_message_is_applied_exactly_once_in_order(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        let mut world = World::new();
        for step in &steps {
            world.run(step);
            world.check_prefix()?;
        }
        world.heal();
        world.check_prefix()?;
        prop_assert_eq!(world.applied_log().len() as u64, world.produced, "all delivered once healed");
        prop_assert_eq!(world.waiting(), 0, "the outbox drains once everything is acknowledged");
    }
}

/// A kill between the handler's writes and the commit leaves neither: the message is applied
/// when it comes again, once.
#[test]
fn a_kill_before_the_commit_applies_the_message_later_once() {
    let mut world = World::new();
    world.run(&Step::Handshake);
    world.run(&Step::Produce);
    world.run(&Step::Send(1));
    world.run(&Step::KillReceiverMidApply);
    assert!(world.applied_log().is_empty());
    world.heal();
    assert_eq!(world.applied_log(), vec![0]);
}
