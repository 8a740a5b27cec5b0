//! The node's side of the channel: handshake, replay of the outbox, heartbeats, applying the
//! orchestrator's messages and acknowledging them; reconnects with backoff when it drops.

use crate::node::{ComputeNode, Connector, Link};
use bacalhau_protocol::{Frame, Hello};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const SEND_BATCH: usize = 256;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps a session with the orchestrator open until `stop` turns true.
pub async fn run_sessions(
    node: &Arc<ComputeNode>,
    connector: Connector,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if *stop.borrow() {
            return;
        }
        let outcome = tokio::select! {
            result = connector() => match result {
                Ok(link) => session(node, link, &mut stop).await,
                Err(e) => Err(format!("cannot connect: {e}")),
            },
            _ = stop.changed() => return,
        };
        match outcome {
            Ok(()) => return,
            Err(reason) => {
                tracing::warn!(node = %node.node_info().node_id, %reason, retry_in = ?backoff, "orchestrator connection lost");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life; `Ok` when asked to stop, `Err` with the reason it ended otherwise.
async fn session(
    node: &Arc<ComputeNode>,
    link: Link,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let Link {
        outgoing,
        mut incoming,
    } = link;
    let store_error = |e: crate::store::StoreError| format!("store failure: {e}");
    let hello = Hello {
        node_info: node.node_info(),
        token: node.token().to_string(),
        last_applied: node.store().applied_in().map_err(store_error)?,
    };
    outgoing
        .send(Frame::Hello(Box::new(hello)))
        .await
        .map_err(|_| "connection closed during the handshake".to_string())?;
    let welcome = match tokio::time::timeout(Duration::from_secs(10), incoming.recv()).await {
        Ok(Some(Frame::Welcome(welcome))) => welcome,
        Ok(Some(other)) => return Err(format!("unexpected handshake answer {other:?}")),
        Ok(None) => return Err("connection closed during the handshake".into()),
        Err(_) => return Err("no handshake answer within 10s".into()),
    };
    if !welcome.accepted {
        tracing::error!(reason = %welcome.reason, "the orchestrator refused this node");
        return Err(format!("refused by the orchestrator: {}", welcome.reason));
    }
    tracing::info!(reason = %welcome.reason, "connected to the orchestrator");
    // What the orchestrator applied is done; everything after it is sent again.
    let applied = welcome.last_applied;
    node.store()
        .write(move |t| t.trim(applied))
        .await
        .map_err(store_error)?;
    let mut sent_up_to = applied;
    let mut heartbeat =
        tokio::time::interval(Duration::from_millis(welcome.heartbeat_interval_ms.max(50)));
    loop {
        let notified = node.outbox_wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pending = node
            .store()
            .outbox_after(sent_up_to, SEND_BATCH)
            .map_err(store_error)?;
        let full_batch = pending.len() == SEND_BATCH;
        for (seq, body) in pending {
            outgoing
                .send(Frame::Message { seq, body })
                .await
                .map_err(|_| "connection closed".to_string())?;
            sent_up_to = seq;
        }
        if full_batch {
            continue;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = heartbeat.tick() => {
                outgoing
                    .send(Frame::Heartbeat(node.heartbeat()))
                    .await
                    .map_err(|_| "connection closed".to_string())?;
            }
            frame = incoming.recv() => match frame {
                None => return Err("connection closed by the orchestrator".into()),
                Some(Frame::Message { seq, body }) => {
                    node.handle_message(seq, body).await.map_err(store_error)?;
                    outgoing
                        .send(Frame::Ack { seq })
                        .await
                        .map_err(|_| "connection closed".to_string())?;
                }
                Some(Frame::Ack { seq }) => {
                    node.store().write(move |t| t.trim(seq)).await.map_err(store_error)?;
                }
                Some(other) => tracing::warn!(frame = ?other, "unexpected frame from the orchestrator"),
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}
