//! The node channel's transport seam. A compute node talks to its orchestrator through a
//! [`Link`]: frames out, frames in, whatever carries them (a WebSocket in `bacalhau-api`, or
//! channels within one process from [`in_process`]). A [`Connector`] opens a fresh link for
//! each session. [`reliable`] holds the delivery rules both ends follow (sequence numbers,
//! acknowledgements, replay, gaps), and [`store`] the durable tables they keep them in (an
//! outbox and sequence numbers per peer, laid out the same in both ends' databases, and
//! [`store::apply`], the one way to record a received message as applied).

pub mod reliable;
pub mod store;

use bacalhau_protocol::Frame;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Frames buffered per direction before the sender waits.
pub const BUFFER: usize = 1024;

/// Both directions of one connection, seen from the compute node.
pub struct Link {
    /// Frames to the orchestrator.
    pub outgoing: mpsc::Sender<Frame>,
    /// Frames from the orchestrator.
    pub incoming: mpsc::Receiver<Frame>,
}

/// Why a link could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The orchestrator could not be reached or refused the connection's upgrade.
    #[error("{url}: {reason}")]
    Dial {
        /// Where the node dialled.
        url: String,
        /// What the transport said.
        reason: String,
    },
}

/// Opens a new connection to an orchestrator.
pub type Connector = Arc<dyn Fn() -> BoxFuture<'static, Result<Link, ConnectError>> + Send + Sync>;

/// The orchestrator's side of one connection, given the frames from the node and a sender
/// to it; runs until it is done or the node's frames end. Every transport hands its
/// connections to one of these.
pub trait Serve:
    Fn(mpsc::Receiver<Frame>, mpsc::Sender<Frame>) -> BoxFuture<'static, ()> + Send + Sync + 'static
{
}

impl<F> Serve for F where
    F: Fn(mpsc::Receiver<Frame>, mpsc::Sender<Frame>) -> BoxFuture<'static, ()>
        + Send
        + Sync
        + 'static
{
}

/// A connector to an orchestrator in the same process: each call makes a pair of frame
/// channels and hands the orchestrator's ends to `serve` (which runs until either side closes).
pub fn in_process<S: Serve>(serve: S) -> Connector {
    let serve = Arc::new(serve);
    Arc::new(move || {
        let serve = Arc::clone(&serve);
        Box::pin(async move {
            let (to_orchestrator, from_node) = mpsc::channel(BUFFER);
            let (to_node, from_orchestrator) = mpsc::channel(BUFFER);
            tokio::spawn(serve(from_node, to_node));
            Ok(Link {
                outgoing: to_orchestrator,
                incoming: from_orchestrator,
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_process_link_carries_frames_both_ways() {
        // An "orchestrator" that answers every frame with an ack of 7.
        let connector = in_process(|mut from_node, to_node| {
            Box::pin(async move {
                while from_node.recv().await.is_some() {
                    if to_node.send(Frame::Ack { seq: 7 }).await.is_err() {
                        break;
                    }
                }
            })
        });
        for _ in 0..2 {
            // Each call is a fresh connection.
            let mut link = connector().await.unwrap();
            link.outgoing.send(Frame::Ack { seq: 1 }).await.unwrap();
            assert_eq!(link.incoming.recv().await, Some(Frame::Ack { seq: 7 }));
        }
    }
}
