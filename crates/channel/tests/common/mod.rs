//! The fault schedules both fault-injection tests draw from: steps of two sides and the link
//! between them, with the faults each step may carry.

use proptest::prelude::*;

/// What happens to the next frame on its way.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Delivered.
    None,
    /// Lost.
    Drop,
    /// Delivered twice.
    Duplicate,
    /// Moved behind the frames after it, as if held up in a buffer.
    HoldBack,
}

/// One step of a schedule.
#[derive(Debug, Clone)]
pub enum Step {
    /// A message is written to the sender's outbox (the promise starts here).
    Produce,
    /// The sender sends up to this many messages after what it sent on this connection.
    Send(u8),
    /// The next frame towards the receiver arrives, or meets a fault.
    Deliver(Fault),
    /// The next acknowledgement arrives (`false`) or is lost (`true`).
    DeliverAck(bool),
    /// The connection breaks: frames in flight are gone.
    Cut,
    /// The sender is killed (kill -9): its memory and its connection are gone.
    KillSender,
    /// The receiver is killed.
    KillReceiver,
    /// The receiver is killed while applying the next frame, before its commit.
    KillReceiverMidApply,
    /// Both sides (re)connect: the receiver says what it applied, the sender resumes.
    Handshake,
}

/// A random step, weighted towards progress so schedules also get somewhere.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Produce),
        4 => (1u8..6).prop_map(Step::Send),
        6 => prop_oneof![
            6 => Just(Fault::None),
            1 => Just(Fault::Drop),
            1 => Just(Fault::Duplicate),
            1 => Just(Fault::HoldBack),
        ]
        .prop_map(Step::Deliver),
        3 => any::<bool>().prop_map(Step::DeliverAck),
        1 => Just(Step::Cut),
        1 => Just(Step::KillSender),
        1 => Just(Step::KillReceiver),
        1 => Just(Step::KillReceiverMidApply),
        2 => Just(Step::Handshake),
    ]
}
