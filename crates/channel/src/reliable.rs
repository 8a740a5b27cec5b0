//! The rules of one direction of the reliable channel, without I/O. Each side keeps a durable
//! outbox of numbered messages and a durable "applied up to" number for what it receives; the
//! drivers (`compute::session`, `orchestrator::nodes::connection`) store, send and apply, and
//! ask these rules what to do:
//! - the receiver applies message `applied + 1` only ([`delivery`]): one at or below `applied`
//!   is a replay (acknowledged again, not applied again), one beyond `applied + 1` means a
//!   message went missing, and the connection is dropped so that the next handshake resumes
//!   from `applied`;
//! - the sender resumes each connection after what the peer says it applied ([`Sending`]),
//!   sends in order, and trims its outbox up to each acknowledgement.
//!
//! `tests/faults.rs` runs both sides through thousands of random schedules of dropped,
//! duplicated and cut deliveries and crashes, and checks that every message put in an outbox is
//! applied exactly once, in order.

/// What a receiver does with message `seq` when it has applied up to `applied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The next message: apply it and record `seq` in the same transaction.
    Apply,
    /// Applied before (a replay after a reconnect, or a duplicate): acknowledge, change nothing.
    Replay,
    /// A message is missing before this one: apply nothing, drop the connection, and let the
    /// handshake resume from `applied`.
    Gap {
        /// The message that should have come.
        expected: u64,
    },
}

/// The rule for one received message.
pub fn delivery(applied: u64, seq: u64) -> Delivery {
    if seq <= applied {
        Delivery::Replay
    } else if seq == applied + 1 {
        Delivery::Apply
    } else {
        Delivery::Gap {
            expected: applied + 1,
        }
    }
}

/// The sending side of one connection: what has been sent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sending {
    sent_up_to: u64,
}

impl Sending {
    /// A new connection whose peer said (in the handshake) it applied up to `peer_applied`:
    /// the outbox is trimmed up to there and everything after is sent (again).
    pub fn resume(peer_applied: u64) -> Self {
        Self {
            sent_up_to: peer_applied,
        }
    }

    /// Messages after this number are still to be sent on this connection.
    pub fn after(&self) -> u64 {
        self.sent_up_to
    }

    /// Message `seq` went out on this connection.
    pub fn sent(&mut self, seq: u64) {
        self.sent_up_to = self.sent_up_to.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_message_applies_earlier_ones_replay_later_ones_are_a_gap() {
        assert_eq!(delivery(0, 1), Delivery::Apply);
        assert_eq!(delivery(4, 5), Delivery::Apply);
        assert_eq!(delivery(4, 4), Delivery::Replay);
        assert_eq!(delivery(4, 1), Delivery::Replay);
        assert_eq!(delivery(4, 7), Delivery::Gap { expected: 5 });
    }

    #[test]
    fn sending_resumes_after_what_the_peer_applied() {
        let mut sending = Sending::resume(3);
        assert_eq!(sending.after(), 3);
        sending.sent(4);
        sending.sent(2);
        assert_eq!(sending.after(), 4);
    }
}
