//! The node's side of the channel: handshake, replay of the outbox, heartbeats, applying the
//! orchestrator's messages and acknowledging them; reconnects with backoff when it drops.

use crate::node::{ComputeNode, Connector, Link};
use bacalhau_channel::reliable::Sending;
use bacalhau_protocol::LogRequest;
use bacalhau_protocol::{Frame, Hello};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const SEND_BATCH: usize = 256;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = bacalhau_protocol::MAX_RECONNECT_BACKOFF;

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
        let mut welcomed = false;
        let mut redirected = false;
        let outcome = tokio::select! {
            result = connector() => match result {
                Ok(link) => session(node, link, &mut stop, &mut welcomed, &mut redirected).await,
                Err(e) => Err(format!("cannot connect: {e}")),
            },
            _ = stop.changed() => return,
        };
        // A session that got through its handshake starts the next one's backoff afresh: a
        // node that was connected reconnects within the orchestrator's grace period after a
        // restart, however many restarts came before.
        // An orchestrator that does not lead its cluster sends the node on to its next
        // address: no reason to wait longer each time.
        if welcomed || redirected {
            backoff = MIN_BACKOFF;
        }
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
    welcomed: &mut bool,
    redirected: &mut bool,
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
    if !welcome.accepted && welcome.not_leader {
        *redirected = true;
        return Err(format!("{}; trying the next orchestrator", welcome.reason));
    }
    if !welcome.accepted {
        tracing::error!(reason = %welcome.reason, "the orchestrator refused this node");
        return Err(format!("refused by the orchestrator: {}", welcome.reason));
    }
    tracing::info!(reason = %welcome.reason, "connected to the orchestrator");
    *welcomed = true;
    // What the orchestrator applied is done; everything after it is sent again.
    let applied = welcome.last_applied;
    node.store()
        .write(move |t| t.trim(applied))
        .await
        .map_err(store_error)?;
    let mut sending = Sending::resume(applied);
    let mut heartbeat =
        tokio::time::interval(Duration::from_millis(welcome.heartbeat_interval_ms.max(50)));
    // Log streams of this connection; they end with it.
    let mut streams = Streams::default();
    let acked = trim_acknowledged(node);
    loop {
        let notified = node.outbox_wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pending = node
            .store()
            .outbox_after(sending.after(), SEND_BATCH)
            .map_err(store_error)?;
        let full_batch = pending.len() == SEND_BATCH;
        for (seq, body) in pending {
            outgoing
                .send(Frame::Message {
                    seq,
                    body: Box::new(body),
                })
                .await
                .map_err(|_| "connection closed".to_string())?;
            sending.sent(seq);
        }
        if full_batch {
            // A long outbox (a burst of reports) must not keep the orchestrator's frames
            // waiting until all of it has gone out: both sides sending and neither reading
            // would stall the connection until the heartbeat timeout.
            while let Ok(frame) = incoming.try_recv() {
                handle_frame(node, frame, &outgoing, &mut streams, &acked).await?;
            }
            continue;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = heartbeat.tick() => {
                outgoing
                    .send(Frame::Heartbeat(Box::new(node.heartbeat())))
                    .await
                    .map_err(|_| "connection closed".to_string())?;
            }
            frame = incoming.recv() => match frame {
                None => return Err("connection closed by the orchestrator".into()),
                Some(frame) => handle_frame(node, frame, &outgoing, &mut streams, &acked).await?,
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Handles one frame from the orchestrator; `Err` with the reason when the session must end.
async fn handle_frame(
    node: &Arc<ComputeNode>,
    frame: Frame,
    outgoing: &mpsc::Sender<Frame>,
    streams: &mut Streams,
    acked: &watch::Sender<u64>,
) -> Result<(), String> {
    let store_error = |e: crate::store::StoreError| format!("store failure: {e}");
    match frame {
        Frame::Message { seq, body } => {
            if let Some(expected) = node.handle_message(seq, *body).await.map_err(store_error)? {
                return Err(format!(
                    "message {expected} from the orchestrator is missing (got {seq}): reconnecting to resume"
                ));
            }
            outgoing
                .send(Frame::Ack { seq })
                .await
                .map_err(|_| "connection closed".to_string())?;
        }
        Frame::Ack { seq } => {
            acked.send_if_modified(|at| {
                let newer = seq > *at;
                *at = (*at).max(seq);
                newer
            });
        }
        Frame::LogRequest(request) => {
            streams.0.retain(|_, task| !task.is_finished());
            let id = request.stream_id;
            streams.0.insert(
                id,
                tokio::spawn(stream_log(Arc::clone(node), *request, outgoing.clone())),
            );
        }
        Frame::PinRequest(request) => {
            // Answered on its own task: a large fetch must not hold up the channel.
            let (node, outgoing) = (Arc::clone(node), outgoing.clone());
            tokio::spawn(async move {
                let reply = node.pin(*request).await;
                let _ = outgoing.send(Frame::PinReply(Box::new(reply))).await;
            });
        }
        Frame::LogCancel { stream_id } => {
            if let Some(task) = streams.0.remove(&stream_id) {
                task.abort();
            }
        }
        other => tracing::warn!(frame = ?other, "unexpected frame from the orchestrator"),
    }
    Ok(())
}

/// Starts the session's trimmer: what the orchestrator acknowledged (the number sent on the
/// answer) leaves the outbox on a task of its own, so an acknowledgement never holds up the
/// frames behind it for a commit; acknowledgements that come meanwhile are trimmed at once.
/// A trim lost to a crash is harmless: the orchestrator finds the resent messages applied.
/// The task ends with the session (the sender dropped).
fn trim_acknowledged(node: &Arc<ComputeNode>) -> watch::Sender<u64> {
    let (acked, mut latest) = watch::channel(0u64);
    let node = Arc::clone(node);
    tokio::spawn(async move {
        while latest.changed().await.is_ok() {
            let seq = *latest.borrow_and_update();
            if let Err(e) = node.store().write(move |t| t.trim(seq)).await {
                tracing::warn!(error = %e, "cannot trim the acknowledged outbox");
            }
        }
    });
    acked
}

/// A session's log streams; dropping it (the session ended, however) aborts them all.
#[derive(Default)]
struct Streams(HashMap<u64, tokio::task::JoinHandle<()>>);

impl Drop for Streams {
    fn drop(&mut self) {
        for (_, task) in self.0.drain() {
            task.abort();
        }
    }
}

/// How long a followed log waits for an execution this node has not heard of yet.
const UNKNOWN_EXECUTION_WAIT: Duration = Duration::from_secs(10);

/// Sends an execution's log to the orchestrator, then a `LogEnd`.
async fn stream_log(node: Arc<ComputeNode>, request: LogRequest, outgoing: mpsc::Sender<Frame>) {
    let id = request.execution_id.to_string();
    let stream_id = request.stream_id;
    // Unbounded: the reader's callback cannot wait, and a line must never be dropped.
    let (lines, mut from_reader) = mpsc::unbounded_channel();
    let dir = node.execution_dir(&id);
    let finished_node = Arc::clone(&node);
    let asked = std::time::Instant::now();
    let finished_id = id.clone();
    let reader = tokio::spawn(crate::logs::read(
        dir,
        request.tail,
        request.follow,
        move || {
            // A log request does not wait in the outbox behind the execution it names, so it
            // can arrive first: an execution not heard of yet is followed for a while.
            finished_node
                .execution_finished(&finished_id)
                .unwrap_or_else(|| asked.elapsed() > UNKNOWN_EXECUTION_WAIT)
        },
        move |line| lines.send(line).is_ok(),
    ));
    while let Some(line) = from_reader.recv().await {
        let frame = Frame::LogData(Box::new(bacalhau_protocol::LogData {
            stream_id,
            kind: line.stream as u8,
            line: line.text,
        }));
        if outgoing.send(frame).await.is_err() {
            reader.abort();
            return;
        }
    }
    let error = match reader.await {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => format!("cannot read the log of {id}: {e}"),
        Err(e) => format!("log reader failed: {e}"),
    };
    let _ = outgoing
        .send(Frame::LogEnd(Box::new(bacalhau_protocol::LogEnd {
            stream_id,
            error,
        })))
        .await;
}
