//! Deterministic fault injection over the reliable channel's rules: a sender and a receiver
//! (each with a "durable" part that survives a crash and a part in memory that does not) talk
//! over a link that drops, duplicates, holds back and cuts frames, while both sides crash and
//! reconnect at random steps. Whatever the schedule, every message put in the sender's outbox is
//! applied by the receiver exactly once and in order, and once the faults stop everything gets
//! through. Thousands of schedules run in a second or two.

mod common;

use bacalhau_channel::reliable::{Delivery, Sending, delivery};
use common::{Fault, Step, step};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

/// A frame on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Message { seq: u64, body: u32 },
    Ack { seq: u64 },
}

/// The sending side: its outbox is durable, what it sent on this connection is not.
#[derive(Debug, Default)]
struct Sender {
    outbox: BTreeMap<u64, u32>,
    last_seq: u64,
    /// `None` while disconnected (or after a crash, until the next handshake).
    sending: Option<Sending>,
}

/// The receiving side: what it applied, and the number, are durable (one transaction).
#[derive(Debug, Default)]
struct Receiver {
    applied: u64,
    log: Vec<u32>,
    connected: bool,
}

/// The two sides and the link between them.
#[derive(Debug, Default)]
struct World {
    sender: Sender,
    receiver: Receiver,
    to_receiver: VecDeque<Frame>,
    to_sender: VecDeque<Frame>,
    produced: Vec<u32>,
}

impl World {
    fn cut(&mut self) {
        self.to_receiver.clear();
        self.to_sender.clear();
        self.sender.sending = None;
        self.receiver.connected = false;
    }

    fn run(&mut self, step: &Step) {
        match *step {
            Step::Produce => {
                let body = self.produced.len() as u32;
                self.sender.last_seq += 1;
                self.sender.outbox.insert(self.sender.last_seq, body);
                self.produced.push(body);
            }
            Step::Send(n) => {
                let Some(sending) = self.sender.sending.as_mut() else {
                    return;
                };
                let batch: Vec<(u64, u32)> = self
                    .sender
                    .outbox
                    .range(sending.after() + 1..)
                    .take(usize::from(n))
                    .map(|(seq, body)| (*seq, *body))
                    .collect();
                for (seq, body) in batch {
                    self.to_receiver.push_back(Frame::Message { seq, body });
                    sending.sent(seq);
                }
            }
            Step::Deliver(fault) => {
                if !self.receiver.connected {
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
                    Fault::Duplicate => self.to_receiver.push_front(frame),
                    Fault::None => {}
                }
                let Frame::Message { seq, body } = frame else {
                    return;
                };
                match delivery(self.receiver.applied, seq) {
                    Delivery::Apply => {
                        // Applied and numbered in one transaction.
                        self.receiver.log.push(body);
                        self.receiver.applied = seq;
                        self.to_sender.push_back(Frame::Ack { seq });
                    }
                    Delivery::Replay => self.to_sender.push_back(Frame::Ack {
                        seq: self.receiver.applied,
                    }),
                    Delivery::Gap { .. } => self.cut(),
                }
            }
            Step::DeliverAck(lost) => {
                let Some(Frame::Ack { seq }) = self.to_sender.pop_front() else {
                    return;
                };
                if !lost && self.sender.sending.is_some() {
                    self.sender.outbox.retain(|s, _| *s > seq);
                }
            }
            Step::Cut => self.cut(),
            // Only the outboxes, numbers and applied log were on disk: what is lost is the
            // connection and what was in flight (a kill mid-apply committed nothing).
            Step::KillSender | Step::KillReceiver | Step::KillReceiverMidApply => self.cut(),
            Step::Handshake => {
                self.cut();
                let applied = self.receiver.applied;
                self.sender.outbox.retain(|s, _| *s > applied);
                self.sender.sending = Some(Sending::resume(applied));
                self.receiver.connected = true;
            }
        }
    }

    /// Connects and delivers everything without faults.
    fn heal(&mut self) {
        self.run(&Step::Handshake);
        for _ in 0..10_000 {
            if self.sender.outbox.is_empty() {
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

    /// What was applied is what was produced, in order, each once, so far.
    fn check_prefix(&self) -> Result<(), TestCaseError> {
        prop_assert!(
            self.receiver.log.len() <= self.produced.len(),
            "applied {} of {} produced",
            self.receiver.log.len(),
            self.produced.len()
        );
        prop_assert_eq!(
            &self.receiver.log[..],
            &self.produced[..self.receiver.log.len()]
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn every_message_is_applied_exactly_once_in_order(
        steps in proptest::collection::vec(step(), 1..200)
    ) {
        let mut world = World::default();
        for step in &steps {
            world.run(step);
            world.check_prefix()?;
        }
        world.heal();
        world.check_prefix()?;
        prop_assert_eq!(world.receiver.log.len(), world.produced.len(), "all delivered once healed");
        prop_assert!(world.sender.outbox.is_empty(), "the outbox drains once everything is acknowledged");
    }
}

/// Without the gap rule (applying whatever comes after `applied`), a lost frame loses a
/// message: the schedule the property test exists to catch.
#[test]
fn applying_past_a_gap_would_lose_a_message() {
    let mut world = World::default();
    world.run(&Step::Handshake);
    world.run(&Step::Produce);
    world.run(&Step::Produce);
    world.run(&Step::Send(2));
    world.run(&Step::Deliver(Fault::Drop));
    // Message 2 arrives with 1 lost: the rule refuses it.
    assert_eq!(
        delivery(world.receiver.applied, 2),
        Delivery::Gap { expected: 1 }
    );
    world.run(&Step::Deliver(Fault::None));
    assert!(world.receiver.log.is_empty());
    assert!(!world.receiver.connected, "the gap dropped the connection");
    world.heal();
    assert_eq!(world.receiver.log, vec![0, 1]);
}
