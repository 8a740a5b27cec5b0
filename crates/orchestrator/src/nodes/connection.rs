//! The orchestrator's side of one node channel: handshake, outbox delivery, acknowledgements,
//! heartbeats and the node's execution updates.

use super::{NodeManager, updates};
use bacalhau_channel::reliable::Sending;
use bacalhau_models::JobId;
use bacalhau_protocol::{Frame, Message, Welcome};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Messages sent per outbox read; bounds memory when a node comes back to a long backlog.
const SEND_BATCH: usize = 256;

/// Serves one node connection until it closes; frames arrive on `incoming` and leave on
/// `outgoing` (the API crate bridges them to a WebSocket).
pub async fn serve_connection(
    manager: Arc<NodeManager>,
    mut incoming: mpsc::Receiver<Frame>,
    outgoing: mpsc::Sender<Frame>,
) {
    let hello = match tokio::time::timeout(Duration::from_secs(10), incoming.recv()).await {
        Ok(Some(Frame::Hello(hello))) => hello,
        Ok(Some(other)) => {
            tracing::warn!(frame = ?other, "node channel opened without a handshake");
            return;
        }
        _ => return,
    };
    let id = hello.node_info.node_id.clone();
    // The handshake and the disconnection are boxed: their states (node records on their way
    // to the store) are the largest this task awaits, and unboxed they would take room in
    // every connection's task for as long as the node stays connected (2 840 bytes against
    // the session's 1 024).
    let (welcome, wake, generation) = match Box::pin(manager.handshake(&hello)).await {
        Ok(accepted) => accepted,
        Err(refusal) => {
            let _ = outgoing
                .send(Frame::Welcome(Box::new(Welcome {
                    accepted: false,
                    reason: refusal.to_string(),
                    last_applied: 0,
                    heartbeat_interval_ms: 0,
                    not_leader: matches!(refusal, super::Refusal::NotLeader(_)),
                })))
                .await;
            return;
        }
    };
    if outgoing
        .send(Frame::Welcome(Box::new(welcome)))
        .await
        .is_err()
    {
        Box::pin(manager.disconnected(&id, generation, "connection closed")).await;
        return;
    }
    manager.attach(&id, generation, outgoing.clone());
    manager.evaluate_after_join();
    // The node's description now lives in the manager; this task holds a connection's worth
    // of memory for as long as the node stays connected.
    let node_applied = hello.last_applied;
    drop(hello);
    let reason = run_session(
        &manager,
        &id,
        generation,
        node_applied,
        &wake,
        &mut incoming,
        &outgoing,
    )
    .await;
    Box::pin(manager.disconnected(&id, generation, &reason)).await;
}

async fn run_session(
    manager: &Arc<NodeManager>,
    id: &bacalhau_models::NodeId,
    generation: u64,
    node_applied: u64,
    wake: &tokio::sync::Notify,
    incoming: &mut mpsc::Receiver<Frame>,
    outgoing: &mpsc::Sender<Frame>,
) -> String {
    // The node says what it applied: drop that from the outbox, replay the rest.
    if let Err(e) = trim(manager, id, node_applied).await {
        return format!("store failure: {e}");
    }
    let mut sending = Sending::resume(node_applied);
    let acked = &trim_acknowledged(manager, id);
    // What was queued before this connection and goes out on it counts as replayed.
    let queued_before = match manager.store().read().and_then(|r| r.last_queued(id)) {
        Ok(seq) => seq,
        Err(e) => return format!("store failure: {e}"),
    };
    manager.metrics.node_connections.inc();
    let idle = manager.config.disconnect_timeout;
    // When the node was last heard from. A frame moves this, not the timer: the timer is set
    // again only when it fires before the node has been silent for `idle`, so a heartbeat
    // costs no timer of its own.
    let mut heard = tokio::time::Instant::now();
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        // Register for wake-ups before reading the outbox, so none is missed in between.
        notified.as_mut().enable();
        if !manager.is_current(id, generation) {
            return "replaced, rejected, deleted or silent too long".into();
        }
        let pending = match manager
            .store()
            .read()
            .and_then(|r| r.outbox_after(id, sending.after(), SEND_BATCH))
        {
            Ok(pending) => pending,
            Err(e) => return format!("store failure: {e}"),
        };
        let full_batch = pending.len() == SEND_BATCH;
        for (seq, body) in pending {
            // While the node's side of the link is full, what it sends is read meanwhile: a
            // node acknowledges each message, and a node blocked on a full link stops reading,
            // so sending without reading could stall both ends for good.
            let permit = loop {
                tokio::select! {
                    permit = outgoing.reserve() => match permit {
                        Ok(permit) => break permit,
                        Err(_) => return "connection closed".into(),
                    },
                    frame = incoming.recv() => {
                        if let Err(reason) = received(manager, id, frame, &mut heard, incoming, outgoing, acked).await {
                            return reason;
                        }
                    }
                }
            };
            permit.send(Frame::Message {
                seq,
                body: Box::new(body),
            });
            sending.sent(seq);
            if seq <= queued_before {
                manager.metrics.replays.inc();
            }
        }
        if full_batch {
            // A long outbox (a burst of placements) must not keep what the node sends waiting
            // until all of it has gone out: its heartbeats would go unread and the node would
            // count as silent while it works.
            while let Ok(frame) = incoming.try_recv() {
                if let Err(reason) = received(
                    manager,
                    id,
                    Some(frame),
                    &mut heard,
                    incoming,
                    outgoing,
                    acked,
                )
                .await
                {
                    return reason;
                }
            }
            continue;
        }
        // Until the next wake-up (new messages, or a change to the node's standing), only the
        // node's frames: the outbox and the node's standing are read again when woken, not
        // for each heartbeat.
        loop {
            tokio::select! {
                _ = &mut notified => break,
                frame = incoming.recv() => {
                    if let Err(reason) = received(manager, id, frame, &mut heard, incoming, outgoing, acked).await {
                        return reason;
                    }
                }
                () = &mut silence => {
                    let due = heard + idle;
                    if tokio::time::Instant::now() >= due {
                        return "heartbeat timeout".into();
                    }
                    silence.as_mut().reset(due);
                }
            }
        }
    }
}

/// A frame read from the node (`None`: the node's side closed), noted as heard now and handled.
async fn received(
    manager: &Arc<NodeManager>,
    id: &bacalhau_models::NodeId,
    frame: Option<Frame>,
    heard: &mut tokio::time::Instant,
    incoming: &mut mpsc::Receiver<Frame>,
    outgoing: &mpsc::Sender<Frame>,
    acked: &watch::Sender<u64>,
) -> Result<(), String> {
    let frame = frame.ok_or("connection closed")?;
    *heard = tokio::time::Instant::now();
    handle_frame(manager, id, frame, incoming, outgoing, acked).await
}

async fn handle_frame(
    manager: &Arc<NodeManager>,
    id: &bacalhau_models::NodeId,
    frame: Frame,
    incoming: &mut mpsc::Receiver<Frame>,
    outgoing: &mpsc::Sender<Frame>,
    acked: &watch::Sender<u64>,
) -> Result<(), String> {
    if !matches!(frame, Frame::Heartbeat(_)) {
        // Any frame shows the node alive, not only a heartbeat that may queue behind others.
        manager.heard_from(id);
    }
    match frame {
        Frame::Heartbeat(heartbeat) => manager.heartbeat(id, &heartbeat),
        Frame::Ack { seq } => {
            acked.send_if_modified(|at| {
                let newer = seq > *at;
                *at = (*at).max(seq);
                newer
            });
        }
        Frame::Message { seq, body } => {
            // Boxed: applying reports is the largest state this loop awaits, and an unboxed
            // future would hold room for it in every connection's task while it waits.
            Box::pin(apply_messages(
                manager, id, seq, *body, incoming, outgoing, acked,
            ))
            .await?;
        }
        log @ (Frame::LogData(_) | Frame::LogEnd(_)) => manager.route_log(id, log),
        Frame::PinReply(reply) => manager.route_pin(id, *reply),
        other => tracing::warn!(node = %id, frame = ?other, "unexpected frame from a node"),
    }
    Ok(())
}

/// Applies a message from the node, with every message already waiting behind it, then
/// handles the other frames read meanwhile.
async fn apply_messages(
    manager: &Arc<NodeManager>,
    id: &bacalhau_models::NodeId,
    seq: u64,
    body: Message,
    incoming: &mut mpsc::Receiver<Frame>,
    outgoing: &mpsc::Sender<Frame>,
    acked: &watch::Sender<u64>,
) -> Result<(), String> {
    // Apply every message already waiting in one transaction: one fsync for a burst.
    let mut batch = vec![(seq, body)];
    let mut others = Vec::new();
    while batch.len() < SEND_BATCH {
        match incoming.try_recv() {
            Ok(Frame::Message { seq, body }) => batch.push((seq, *body)),
            Ok(other) => {
                others.push(other);
                break;
            }
            Err(_) => break,
        }
    }
    let messages: Vec<(u64, Option<bacalhau_protocol::ExecutionUpdate>)> = batch
        .into_iter()
        .map(|(seq, body)| match body {
            Message::ExecutionUpdate(update) => (seq, Some(update)),
            other => {
                tracing::warn!(node = %id, message = ?other, "unexpected message from a node");
                (seq, None)
            }
        })
        .collect();
    // Before the jobs can complete: a cache lookup right after one must find its
    // result held (a node that published a result pins it).
    manager.holds(id, &updates::published_roots(&messages));
    // The jobs whose executions ended are planned in the same transaction when no
    // worker holds them (`worker::plan_in`): a job ends one commit sooner.
    let now = manager.clock().now();
    let claimed: HashSet<JobId> = updates::ending_jobs(&messages)
        .into_iter()
        .filter(|job| manager.broker().claim(job))
        .collect();
    let inline = updates::Inline {
        nodes: if claimed.is_empty() {
            Arc::default()
        } else {
            manager.views(now)
        },
        claimed: claimed.clone(),
    };
    let applied = updates::apply(manager.store(), id, messages, inline, now).await;
    let applied = match applied {
        Ok(applied) => applied,
        Err(e) => {
            for job in &claimed {
                manager.broker().ack(job);
            }
            return Err(format!("store failure: {e}"));
        }
    };
    for (job_id, execution_id, message) in &applied.reported {
        tracing::debug!(%job_id, %execution_id, node = %id, "{message}");
    }
    let mut unplanned = claimed;
    let scheduling = manager.scheduling();
    for planned in applied.planned {
        unplanned.remove(planned.job_id());
        scheduling.conclude(planned);
    }
    for job in &unplanned {
        manager.broker().ack(job);
    }
    for evaluation in applied.evaluations {
        manager.broker().enqueue(evaluation);
    }
    outgoing
        .send(Frame::Ack { seq: applied.up_to })
        .await
        .map_err(|_| "connection closed".to_string())?;
    if let Some(expected) = applied.missing {
        return Err(format!(
            "message {expected} from the node is missing: reconnecting to resume from {}",
            applied.up_to
        ));
    }
    for other in others {
        Box::pin(handle_frame(manager, id, other, incoming, outgoing, acked)).await?;
    }
    Ok(())
}

/// Starts the connection's trimmer: what the node acknowledged leaves the outbox on a task of
/// its own, so an acknowledgement never holds up the node's reports behind it for a commit;
/// acknowledgements that come meanwhile are trimmed at once. A trim lost to a crash is
/// harmless: the node finds the resent messages applied. The task ends with the connection.
fn trim_acknowledged(
    manager: &Arc<NodeManager>,
    id: &bacalhau_models::NodeId,
) -> watch::Sender<u64> {
    let (acked, mut latest) = watch::channel(0u64);
    let (manager, id) = (Arc::clone(manager), id.clone());
    tokio::spawn(async move {
        while latest.changed().await.is_ok() {
            let seq = *latest.borrow_and_update();
            if let Err(e) = trim(&manager, &id, seq).await {
                tracing::warn!(node = %id, error = %e, "cannot trim the acknowledged outbox");
            }
        }
    });
    acked
}

async fn trim(
    manager: &NodeManager,
    id: &bacalhau_models::NodeId,
    seq: u64,
) -> Result<(), crate::store::StoreError> {
    if seq == 0 {
        return Ok(());
    }
    let node = id.clone();
    manager
        .store()
        .write(move |w| w.trim_outbox(&node, seq))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each connected node holds its connection's task for as long as it stays connected, so
    /// the task's future must not keep room for the handshake's or the disconnection's larger
    /// states (boxed) beside the session's.
    #[tokio::test]
    async fn a_connection_task_holds_little_more_than_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("state.redb")).unwrap();
        let broker = Arc::new(crate::broker::EvaluationBroker::new());
        let manager = Arc::new(
            NodeManager::new(
                store,
                broker,
                Default::default(),
                Arc::default(),
                Arc::default(),
            )
            .unwrap(),
        );
        let (_to_manager, mut incoming) = mpsc::channel::<Frame>(1);
        let (outgoing, _from_manager) = mpsc::channel::<Frame>(1);
        let id = bacalhau_models::NodeId::from("n1");
        let wake = tokio::sync::Notify::new();
        let session = std::mem::size_of_val(&run_session(
            &manager,
            &id,
            1,
            0,
            &wake,
            &mut incoming,
            &outgoing,
        ));
        let task = std::mem::size_of_val(&serve_connection(manager, incoming, outgoing));
        assert!(
            task <= session + 256,
            "a connection's task takes {task} bytes, its session {session}"
        );
    }
}
