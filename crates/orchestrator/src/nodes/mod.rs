//! The node manager: compute nodes' membership, connections, heartbeats and messages.
//!
//! Live node state (capacity, last heartbeat) is kept in memory and persisted only when
//! membership or connection changes, so heartbeats from many nodes cost no disk writes.
//! Messages to nodes are written to the store's outbox by the planner; `connection.rs`
//! delivers them and applies the nodes' updates (`updates.rs`).

mod connection;
mod updates;

pub use connection::serve_connection;

use crate::broker::EvaluationBroker;
use crate::clock::Clock;
use crate::planner::Applied;
use crate::scheduler::NodeView;
use crate::store::{Store, StoreError};
use bacalhau_models::history::Topic;
use bacalhau_models::node::{
    ComputeNodeInfo, ConnectionState, ConnectionStatus, Membership, NodeAction,
};
use bacalhau_models::{Evaluation, JobHistory, NodeId, NodeState, Timestamp, TriggeredBy, time};
use bacalhau_protocol::{Frame, Heartbeat, Hello, Welcome};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How the node manager treats nodes.
#[derive(Debug, Clone)]
pub struct NodeManagerConfig {
    /// The join token nodes must present; empty for none.
    pub token: String,
    /// New nodes wait as PENDING until approved.
    pub manual_approval: bool,
    /// How often nodes send heartbeats.
    pub heartbeat_interval: Duration,
    /// A node silent this long is DISCONNECTED.
    pub disconnect_timeout: Duration,
    /// A node disconnected this long is lost: its executions are rescheduled.
    pub reschedule_grace: Duration,
}

impl Default for NodeManagerConfig {
    fn default() -> Self {
        Self {
            token: String::new(),
            manual_approval: false,
            heartbeat_interval: Duration::from_secs(5),
            disconnect_timeout: Duration::from_secs(30),
            reschedule_grace: Duration::from_secs(60),
        }
    }
}

struct LiveNode {
    state: Arc<NodeState>,
    last_heartbeat: Timestamp,
    disconnected_at: Option<Timestamp>,
    /// How long after `disconnected_at` the node counts as lost: the configured grace, or
    /// [`restart_grace`] for a node loaded at start or on taking the lead.
    grace: Duration,
    /// Set once the node's loss has been evaluated, so it is evaluated once per loss.
    loss_evaluated: bool,
    /// Wakes the node's connection: new messages, or a membership change.
    wake: Arc<Notify>,
    /// Bumped on every handshake; a connection whose generation is stale closes.
    generation: u64,
    /// The current connection's outgoing frames, for requests that bypass the outbox (logs).
    control: Option<mpsc::Sender<Frame>>,
}

/// One event of a log stream from a node.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    /// A piece of output: `kind` 1 is stdout, 2 is stderr.
    Line {
        /// 1 stdout, 2 stderr.
        kind: u8,
        /// The text.
        text: String,
    },
    /// The stream ended; `error` is empty when it ended normally.
    End {
        /// Why it failed, if it did.
        error: String,
    },
}

type LogStreams = HashMap<u64, (NodeId, mpsc::UnboundedSender<LogEvent>)>;

/// Why a handshake was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Wrong or missing join token.
    #[error("node {0} presented an invalid join token")]
    BadToken(NodeId),
    /// The node was rejected by an operator.
    #[error("node {0} has been rejected")]
    Rejected(NodeId),
    /// Not a compute node.
    #[error("node {0} is not a compute node")]
    NotCompute(NodeId),
    /// This orchestrator does not lead its cluster; the node tries its next address.
    #[error("this orchestrator is not the cluster's leader; connect to the leader")]
    NotLeader(NodeId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tracks nodes and their connections.
pub struct NodeManager {
    store: Store,
    broker: Arc<EvaluationBroker>,
    config: NodeManagerConfig,
    nodes: RwLock<HashMap<NodeId, LiveNode>>,
    log_streams: std::sync::Mutex<LogStreams>,
    /// Pin requests sent, by request ID, until their node answers or goes away.
    pins: std::sync::Mutex<PendingPins>,
    next_stream: std::sync::atomic::AtomicU64,
    /// When each refused node's refusal was last written to the audit log.
    refusals: std::sync::Mutex<HashMap<NodeId, Timestamp>>,
    /// Whether this orchestrator leads (always, without a cluster): only the leader serves
    /// node channels and watches heartbeats.
    leading: std::sync::atomic::AtomicBool,
    /// The orchestrator's figures (connections and replays are counted here).
    metrics: Arc<crate::metrics::Metrics>,
    /// Where ended jobs' durations go (a job a node's report ends is concluded here).
    timeline: Arc<crate::timeline::Timeline>,
    /// Bumped by every change the scheduler must see at once (see [`NodeManager::write`]).
    changes: std::sync::atomic::AtomicU64,
    /// The last views built.
    views_cache: std::sync::Mutex<Option<BuiltViews>>,
    /// The evaluation of active jobs that node joins ask for (see
    /// [`NodeManager::evaluate_after_join`]).
    join_pass: std::sync::Mutex<JoinPass>,
}

/// Whether an evaluation pass for joined nodes runs, and whether a node joined since it began.
#[derive(Default)]
struct JoinPass {
    running: bool,
    again: bool,
}

/// The least time between two evaluation passes for joined nodes: a burst of joins (every
/// node coming back to a restarted orchestrator) costs one pass a second, not one per node.
const JOIN_PASS_SPACING: Duration = Duration::from_secs(1);

/// Views of the nodes as built: when, at which count of changes, and the views.
type BuiltViews = (Timestamp, u64, Arc<Vec<NodeView>>);

/// How long views of the nodes built for one plan serve the next ones while nothing but
/// heartbeat figures changed.
const VIEWS_REUSED_FOR: Duration = Duration::from_millis(5);

/// Pin requests waiting for their node's answer.
type PendingPins = HashMap<u64, (NodeId, tokio::sync::oneshot::Sender<Result<u64, PinError>>)>;

/// Why a node could not pin a CID.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The node is not connected now.
    #[error("node {0} is not connected")]
    NotConnected(NodeId),
    /// The connection closed before the node answered.
    #[error("the connection to node {0} closed before it answered")]
    Lost(NodeId),
    /// The node tried and failed (no peer had the blocks in time, a full disk...).
    #[error("node {node} could not pin it: {message}")]
    Failed {
        /// The node.
        node: NodeId,
        /// What it said.
        message: String,
    },
}

/// A node refused again within this long is not audited again: a misconfigured node retries
/// every few seconds, and the audit log is never pruned.
const REFUSAL_AUDIT_INTERVAL: Duration = Duration::from_secs(3600);

/// How long a node loaded from the store (at start, or when this orchestrator takes the lead)
/// has to dial in before it counts as lost: at least twice the nodes' longest reconnect
/// backoff, since they kept backing off while no orchestrator answered. Nomad gives its nodes
/// a failover TTL after a leader election for the same reason.
fn restart_grace(configured: Duration) -> Duration {
    configured.max(bacalhau_protocol::MAX_RECONNECT_BACKOFF * 2)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl NodeManager {
    /// Loads stored nodes (all disconnected until they dial in again).
    pub fn new(
        store: Store,
        broker: Arc<EvaluationBroker>,
        config: NodeManagerConfig,
        metrics: Arc<crate::metrics::Metrics>,
        timeline: Arc<crate::timeline::Timeline>,
    ) -> Result<Self, StoreError> {
        let nodes = Self::load(&store, broker.clock().now(), &config, &HashMap::new())?;
        Ok(Self {
            store,
            broker,
            config,
            metrics,
            timeline,
            changes: std::sync::atomic::AtomicU64::new(0),
            views_cache: std::sync::Mutex::new(None),
            join_pass: std::sync::Mutex::default(),
            nodes: RwLock::new(nodes),
            log_streams: std::sync::Mutex::new(HashMap::new()),
            pins: std::sync::Mutex::new(HashMap::new()),
            next_stream: std::sync::atomic::AtomicU64::new(1),
            refusals: std::sync::Mutex::new(HashMap::new()),
            leading: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The stored nodes, all disconnected; connection generations continue from `before`'s,
    /// so no connection of before counts as current.
    fn load(
        store: &Store,
        now: Timestamp,
        config: &NodeManagerConfig,
        before: &HashMap<NodeId, LiveNode>,
    ) -> Result<HashMap<NodeId, LiveNode>, StoreError> {
        let mut nodes = HashMap::new();
        for mut state in store.read()?.nodes()? {
            state.connection_state.status = ConnectionStatus::Disconnected;
            state.connection = ConnectionStatus::Disconnected;
            let generation = before
                .get(&state.info.node_id)
                .map_or(0, |n| n.generation + 1);
            nodes.insert(
                state.info.node_id.clone(),
                LiveNode {
                    state: state.into(),
                    last_heartbeat: 0,
                    // A restarted orchestrator gives every node a fresh grace period.
                    disconnected_at: Some(now),
                    grace: restart_grace(config.reschedule_grace),
                    loss_evaluated: false,
                    wake: Arc::new(Notify::new()),
                    generation,
                    control: None,
                },
            );
        }
        Ok(nodes)
    }

    /// Whether this orchestrator leads its cluster (always true without one).
    pub fn is_leading(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes up or gives up the lead of the cluster: reloads every node from the store (the
    /// leader before may have changed them), ends every connection so nodes dial the leader,
    /// and from now on accepts or refuses handshakes accordingly.
    pub fn set_leading(&self, leading: bool) -> Result<(), StoreError> {
        self.leading
            .store(leading, std::sync::atomic::Ordering::SeqCst);
        let old = {
            let mut nodes = self.write();
            let fresh = Self::load(&self.store, self.now(), &self.config, &nodes)?;
            std::mem::replace(&mut *nodes, fresh)
        };
        for node in old.values() {
            node.wake.notify_waiters();
        }
        for id in old.keys() {
            self.end_streams(id);
        }
        Ok(())
    }

    /// The orchestrator's clock (the broker's).
    pub fn clock(&self) -> Clock {
        self.broker.clock()
    }

    fn now(&self) -> Timestamp {
        self.broker.clock().now()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<NodeId, LiveNode>> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The nodes, to change what the scheduler sees of them: the next [`NodeManager::views`]
    /// is built afresh.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<NodeId, LiveNode>> {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        self.write_quietly()
    }

    /// The nodes, for a change the scheduler may see late (a heartbeat's capacity figures,
    /// which are seconds old when they arrive anyway): views already built stay in use for up
    /// to [`VIEWS_REUSED_FOR`].
    fn write_quietly(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<NodeId, LiveNode>> {
        self.nodes.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The nodes as the scheduler sees them at `now`, shared by every plan made within
    /// [`VIEWS_REUSED_FOR`] of each other while no node joined, left, changed membership or
    /// data (building them is O(nodes): per evaluation it was most of a job's cost with
    /// thousands of nodes).
    pub fn views(&self, now: Timestamp) -> Arc<Vec<NodeView>> {
        let changes = self.changes.load(std::sync::atomic::Ordering::Acquire);
        let mut cached = self.views_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built_at, seen, views)) = cached.as_ref()
            && *seen == changes
            && now >= *built_at
            && now - *built_at < nanos(VIEWS_REUSED_FOR)
        {
            return Arc::clone(views);
        }
        let views = Arc::new(self.build_views(now));
        *cached = Some((now, changes, Arc::clone(&views)));
        views
    }

    /// The nodes as the scheduler sees them at `now`, built afresh.
    fn build_views(&self, now: Timestamp) -> Vec<NodeView> {
        self.read()
            .values()
            .map(|n| {
                let mut view = NodeView::new(Arc::clone(&n.state));
                if let Some(since) = n.disconnected_at {
                    let grace = nanos(n.grace);
                    view.lost = now.saturating_sub(since) >= grace;
                    if !view.lost && !view.connected {
                        view.returns_by = Some(since.saturating_add(grace));
                    }
                }
                view
            })
            .collect()
    }

    /// `sample` of up to `limit` connected nodes, read under the lock. A periodic reader
    /// must not keep the nodes' states as the scheduler's views do: while a state is shared,
    /// the node's next heartbeat copies it (with 50 000 nodes, the timeline's views every
    /// 5 s made nearly every heartbeat copy its node's record).
    pub(crate) fn sample_connected<T>(
        &self,
        limit: usize,
        mut sample: impl FnMut(&ComputeNodeInfo) -> T,
    ) -> Vec<(NodeId, T)> {
        self.read()
            .iter()
            .filter(|(_, node)| node.state.connection_state.status == ConnectionStatus::Connected)
            .take(limit)
            .map(|(id, node)| (id.clone(), sample(&node.state.info.compute_node_info)))
            .collect()
    }

    /// Every node's state, by ID.
    pub fn states(&self) -> Vec<NodeState> {
        let mut states: Vec<NodeState> = self
            .read()
            .values()
            .map(|n| NodeState::clone(&n.state))
            .collect();
        states.sort_by(|a, b| a.info.node_id.cmp(&b.info.node_id));
        states
    }

    /// Accepts or refuses a node's handshake; on acceptance returns the answer, the node's
    /// wake-up signal and the connection's generation.
    pub async fn handshake(&self, hello: &Hello) -> Result<(Welcome, Arc<Notify>, u64), Refusal> {
        let id = hello.node_info.node_id.clone();
        if !self.is_leading() {
            return Err(Refusal::NotLeader(id));
        }
        if !same_secret(&hello.token, &self.config.token) {
            tracing::warn!(node = %id, "node refused: invalid join token");
            self.record_refusal(&id, "refused: invalid join token")
                .await;
            return Err(Refusal::BadToken(id));
        }
        if hello.node_info.node_type != bacalhau_models::node::NodeType::Compute {
            return Err(Refusal::NotCompute(id));
        }
        let now = self.now();
        let (state, wake, generation, is_new) = {
            let mut nodes = self.write();
            let existing = nodes.get(&id);
            if existing.is_some_and(|n| n.state.membership == Membership::Rejected) {
                return Err(Refusal::Rejected(id));
            }
            let is_new = existing.is_none();
            let membership_state = existing.map(|n| n.state.membership).unwrap_or_else(|| {
                if self.config.manual_approval {
                    Membership::Pending
                } else {
                    Membership::Approved
                }
            });
            let stamp = time::rfc3339(now);
            let state = NodeState {
                info: hello.node_info.clone(),
                membership: membership_state,
                connection: ConnectionStatus::Connected,
                connection_state: ConnectionState {
                    status: ConnectionStatus::Connected,
                    last_heartbeat: stamp.clone(),
                    connected_since: stamp,
                    ..Default::default()
                },
            };
            let entry = nodes.entry(id.clone()).or_insert_with(|| LiveNode {
                state: Arc::new(state.clone()),
                last_heartbeat: now,
                disconnected_at: None,
                grace: self.config.reschedule_grace,
                loss_evaluated: false,
                wake: Arc::new(Notify::new()),
                generation: 0,
                control: None,
            });
            entry.state = Arc::new(state.clone());
            entry.last_heartbeat = now;
            entry.disconnected_at = None;
            entry.grace = self.config.reschedule_grace;
            entry.loss_evaluated = false;
            entry.generation += 1;
            entry.control = None;
            // A previous connection of the same node must stop sending.
            entry.wake.notify_waiters();
            (state, Arc::clone(&entry.wake), entry.generation, is_new)
        };
        let stored = state.clone();
        let node_id = id.clone();
        let last_applied = self
            .store
            .write(move |w| {
                w.put_node(&stored)?;
                w.applied_from(&node_id)
            })
            .await?;
        tracing::info!(node = %id, new = is_new, "node connected");
        Ok((
            Welcome {
                accepted: true,
                reason: if is_new {
                    "node registered".into()
                } else {
                    "node reconnected".into()
                },
                last_applied,
                heartbeat_interval_ms: u64::try_from(self.config.heartbeat_interval.as_millis())
                    .unwrap_or(u64::MAX),
                not_leader: false,
            },
            wake,
            generation,
        ))
    }

    /// Whether `generation` is still the node's current connection, the node is welcome, and
    /// it has not been marked disconnected (a silent node's connection ends, so the node dials
    /// again and a fresh handshake counts it connected; kept open, it would stay disconnected
    /// while it worked and be given up as lost).
    pub fn is_current(&self, id: &NodeId, generation: u64) -> bool {
        self.read().get(id).is_some_and(|n| {
            n.generation == generation
                && n.state.membership != Membership::Rejected
                && n.disconnected_at.is_none()
        })
    }

    /// Gives the node's current connection a way to send frames outside the outbox.
    pub fn attach(&self, id: &NodeId, generation: u64, outgoing: mpsc::Sender<Frame>) {
        if let Some(node) = self.write().get_mut(id)
            && node.generation == generation
        {
            node.control = Some(outgoing);
        }
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, LogStreams> {
        self.log_streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks `node` for an execution's log; events arrive on the returned receiver until an
    /// `End`. Dropping the receiver cancels the stream on the node.
    pub async fn stream_log(
        &self,
        node: &NodeId,
        execution_id: &bacalhau_models::ExecutionId,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<mpsc::UnboundedReceiver<LogEvent>, String> {
        let control = self
            .read()
            .get(node)
            .filter(|n| n.disconnected_at.is_none())
            .and_then(|n| n.control.clone())
            .ok_or_else(|| format!("node {node} is not connected: its logs cannot be read now"))?;
        let stream_id = self
            .next_stream
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (events, receiver) = mpsc::unbounded_channel();
        self.lock_streams()
            .insert(stream_id, (node.clone(), events));
        let request = Frame::LogRequest(Box::new(bacalhau_protocol::LogRequest {
            stream_id,
            execution_id: execution_id.clone(),
            tail,
            follow,
        }));
        if control.send(request).await.is_err() {
            self.lock_streams().remove(&stream_id);
            return Err(format!("the connection to node {node} closed"));
        }
        Ok(receiver)
    }

    /// Delivers a node's log frame to its reader.
    pub(crate) fn route_log(&self, node: &NodeId, frame: Frame) {
        let (stream_id, event) = match frame {
            Frame::LogData(data) => {
                let bacalhau_protocol::LogData {
                    stream_id,
                    kind,
                    line,
                } = *data;
                (stream_id, LogEvent::Line { kind, text: line })
            }
            Frame::LogEnd(end) => (end.stream_id, LogEvent::End { error: end.error }),
            _ => return,
        };
        let ended = matches!(event, LogEvent::End { .. });
        let mut streams = self.lock_streams();
        let Some((owner, sender)) = streams.get(&stream_id) else {
            return;
        };
        if owner != node {
            return;
        }
        if sender.send(event).is_err() || ended {
            streams.remove(&stream_id);
            if !ended && let Some(control) = self.read().get(node).and_then(|n| n.control.clone()) {
                // The reader went away: the node can stop reading.
                let _ = control.try_send(Frame::LogCancel { stream_id });
            }
        }
    }

    fn lock_pins(&self) -> std::sync::MutexGuard<'_, PendingPins> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks `node` to fetch `cid` (from `peers` and any IPFS node connected to it) and pin it;
    /// returns the bytes it fetched. On success the node is known to hold the CID at once, so
    /// a job submitted next is placed there without waiting for a heartbeat.
    pub async fn pin(
        &self,
        node: &NodeId,
        cid: &str,
        peers: Vec<String>,
        timeout: Duration,
    ) -> Result<u64, PinError> {
        let control = self
            .read()
            .get(node)
            .filter(|n| n.disconnected_at.is_none())
            .and_then(|n| n.control.clone())
            .ok_or_else(|| PinError::NotConnected(node.clone()))?;
        let request_id = self
            .next_stream
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.lock_pins().insert(request_id, (node.clone(), answer));
        let request = Frame::PinRequest(Box::new(bacalhau_protocol::PinRequest {
            request_id,
            cid: cid.to_string(),
            peers,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }));
        if control.send(request).await.is_err() {
            self.lock_pins().remove(&request_id);
            return Err(PinError::Lost(node.clone()));
        }
        // The node gives up at `timeout`; a little longer here lets its answer arrive.
        let outcome =
            tokio::time::timeout(timeout.saturating_add(Duration::from_secs(5)), answered).await;
        self.lock_pins().remove(&request_id);
        let bytes = match outcome {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(PinError::Lost(node.clone())),
            Err(_) => {
                return Err(PinError::Failed {
                    node: node.clone(),
                    message: format!("no answer within {}s", timeout.as_secs() + 5),
                });
            }
        };
        self.holds(node, &[cid.to_string()]);
        Ok(bytes)
    }

    /// Records that `node` now pins `roots` (it pinned or published them), until its next
    /// heartbeat's list replaces the whole set.
    pub(crate) fn holds(&self, node: &NodeId, roots: &[String]) {
        if roots.is_empty() {
            return;
        }
        if let Some(live) = self.write().get_mut(node) {
            let held = &mut Arc::make_mut(&mut live.state)
                .info
                .compute_node_info
                .data_locality
                .ipfs;
            for cid in roots {
                if let Err(at) = held.binary_search(cid) {
                    held.insert(at, cid.clone());
                }
            }
        }
    }

    /// Hands a node's answer to the pin request waiting for it.
    pub(crate) fn route_pin(&self, node: &NodeId, reply: bacalhau_protocol::PinReply) {
        let mut pins = self.lock_pins();
        if pins
            .get(&reply.request_id)
            .is_none_or(|(owner, _)| owner != node)
        {
            return;
        }
        if let Some((_, answer)) = pins.remove(&reply.request_id) {
            let result = if reply.error.is_empty() {
                Ok(reply.bytes_fetched)
            } else {
                Err(PinError::Failed {
                    node: node.clone(),
                    message: reply.error,
                })
            };
            let _ = answer.send(result);
        }
    }

    /// Ends every log stream of a node whose connection dropped.
    fn end_streams(&self, node: &NodeId) {
        // Pin requests in flight are answered by dropping their senders: the node is gone.
        self.lock_pins().retain(|_, (owner, _)| owner != node);
        self.lock_streams().retain(|_, (owner, sender)| {
            if owner == node {
                let _ = sender.send(LogEvent::End {
                    error: format!("the connection to node {node} was lost"),
                });
                false
            } else {
                true
            }
        });
    }

    /// Notes that a connected node was heard from (any frame), for the silence check.
    pub(crate) fn heard_from(&self, id: &NodeId) {
        let now = self.now();
        if let Some(node) = self.write_quietly().get_mut(id)
            && node.disconnected_at.is_none()
        {
            node.last_heartbeat = now;
        }
    }

    /// Records a heartbeat.
    pub fn heartbeat(&self, id: &NodeId, heartbeat: &Heartbeat) {
        let now = self.now();
        // New roots change where jobs reading them go: seen at once; capacity figures may wait.
        let mut nodes = if heartbeat.ipfs_roots.is_some() {
            self.write()
        } else {
            self.write_quietly()
        };
        if let Some(node) = nodes.get_mut(id) {
            // Copies the record only while a scheduler snapshot still holds the old one.
            let state = Arc::make_mut(&mut node.state);
            let info = &mut state.info.compute_node_info;
            info.available_capacity = heartbeat.available.clone();
            info.queue_used_capacity = heartbeat.queued.clone();
            info.running_executions = heartbeat.running;
            info.enqueued_executions = heartbeat.enqueued;
            if let Some(roots) = &heartbeat.ipfs_roots {
                info.data_locality.ipfs = roots.clone();
            }
            node.last_heartbeat = now;
            state.connection_state.last_heartbeat = time::rfc3339(now);
        }
    }

    /// Marks a node's connection closed (if `generation` is still its current connection).
    pub async fn disconnected(&self, id: &NodeId, generation: u64, reason: &str) {
        let now = self.now();
        let state = {
            let mut nodes = self.write();
            let Some(node) = nodes.get_mut(id) else {
                return;
            };
            if node.generation != generation || node.disconnected_at.is_some() {
                return;
            }
            node.disconnected_at = Some(now);
            node.control = None;
            let state = Arc::make_mut(&mut node.state);
            state.connection = ConnectionStatus::Disconnected;
            state.connection_state.status = ConnectionStatus::Disconnected;
            state.connection_state.disconnected_since = time::rfc3339(now);
            state.connection_state.last_error = reason.to_string();
            state.clone()
        };
        tracing::info!(node = %id, reason, "node disconnected");
        self.end_streams(id);
        if let Err(e) = self.store.write(move |w| w.put_node(&state)).await {
            tracing::error!(node = %id, error = %e, "cannot record disconnection");
        }
    }

    /// Approves, rejects or deletes a node.
    pub async fn update_membership(
        &self,
        id: &NodeId,
        action: NodeAction,
        actor: &str,
    ) -> Result<(), crate::OrchestratorError> {
        use crate::OrchestratorError;
        let conflict = |message: String| OrchestratorError::Conflict {
            message,
            hint: None,
        };
        let (state, wake) = {
            let mut nodes = self.write();
            let Some(node) = nodes.get_mut(id) else {
                return Err(OrchestratorError::NotFound {
                    kind: "node",
                    id: id.to_string(),
                });
            };
            match action {
                NodeAction::Approve if node.state.membership == Membership::Approved => {
                    return Err(conflict(format!("node {id} is already approved")));
                }
                NodeAction::Approve => {
                    Arc::make_mut(&mut node.state).membership = Membership::Approved
                }
                NodeAction::Reject if node.state.membership == Membership::Rejected => {
                    return Err(conflict(format!("node {id} is already rejected")));
                }
                NodeAction::Reject => {
                    Arc::make_mut(&mut node.state).membership = Membership::Rejected
                }
                NodeAction::Delete => {}
            }
            let wake = Arc::clone(&node.wake);
            let state = NodeState::clone(&node.state);
            if action == NodeAction::Delete {
                nodes.remove(id);
            }
            (state, wake)
        };
        let node_id = id.clone();
        let delete = action == NodeAction::Delete;
        let event = JobHistory::node_event(
            id.as_str(),
            Topic::NodeMembership,
            format!("node {id}: {action}"),
            actor,
            time::rfc3339(self.now()),
        );
        self.store
            .write(move |w| {
                if delete {
                    w.delete_node(&node_id)?;
                } else {
                    w.put_node(&state)?;
                }
                w.add_history(event).map(|_| ())
            })
            .await?;
        // A rejected or deleted node's connection closes; an approved node may take work.
        wake.notify_waiters();
        if action == NodeAction::Approve {
            self.evaluate_active_jobs(TriggeredBy::NodeJoin).await?;
        } else {
            self.evaluate_active_jobs(TriggeredBy::NodeLeave).await?;
        }
        Ok(())
    }

    /// Writes a refused join to the audit log (once an hour per node). A refusal is answered
    /// whether or not this succeeds: a store that cannot write must not let the node in either.
    async fn record_refusal(&self, id: &NodeId, message: &str) {
        {
            let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.now();
            let recent =
                |last: &Timestamp| now.saturating_sub(*last) < nanos(REFUSAL_AUDIT_INTERVAL);
            if refusals.get(id).is_some_and(recent) {
                return;
            }
            // Bounded: forget old entries rather than grow with every made-up node ID.
            if refusals.len() >= 10_000 {
                refusals.retain(|_, last| recent(last));
            }
            refusals.insert(id.clone(), now);
        }
        let event = JobHistory::node_event(
            id.as_str(),
            Topic::NodeMembership,
            format!("node {id} {message}"),
            format!("node:{id}"),
            time::rfc3339(self.now()),
        );
        if let Err(e) = self.store.write(move |w| w.add_history(event)).await {
            tracing::warn!(node = %id, error = %e, "cannot record a refused join in the audit log");
        }
    }

    /// What concluding a plan touches (see `worker::plan_in`).
    pub(crate) fn scheduling(&self) -> crate::worker::Context<'_> {
        crate::worker::Context {
            broker: &self.broker,
            nodes: self,
            metrics: &self.metrics,
            timeline: &self.timeline,
        }
    }

    /// Wakes the connections of nodes that have new messages after a plan.
    pub fn plan_applied(&self, applied: &Applied) {
        let nodes = self.read();
        let targets: BTreeSet<&NodeId> = applied
            .created
            .iter()
            .chain(&applied.stopped)
            .map(|e| &e.node_id)
            .collect();
        for id in targets {
            if let Some(node) = nodes.get(id) {
                node.wake.notify_waiters();
            }
        }
    }

    /// Creates an evaluation for every job not in a terminal state: what a node join,
    /// leave or freed capacity may change.
    pub async fn evaluate_active_jobs(&self, trigger: TriggeredBy) -> Result<(), StoreError> {
        let now = self.now();
        let evaluations = self
            .store
            .write(move |w| {
                let mut evaluations = Vec::new();
                for id in w.active_job_ids()? {
                    let Some(job) = w.job(&id)? else { continue };
                    let evaluation = Evaluation::for_job(&job, trigger, now);
                    w.put_evaluation(&evaluation)?;
                    evaluations.push(evaluation);
                }
                Ok::<_, StoreError>(evaluations)
            })
            .await?;
        for evaluation in evaluations {
            self.broker.enqueue(evaluation);
        }
        Ok(())
    }

    /// Has the active jobs evaluated for a node that joined (one may be waiting for a node, or
    /// run on every node), on a task of its own. Joins during a pass share the next one, which
    /// starts [`JOIN_PASS_SPACING`] after the last: each pass writes an evaluation per active
    /// job, and 50 000 nodes rejoining a restarted orchestrator, each with a pass of its own,
    /// would write 50 000 times as many.
    pub fn evaluate_after_join(self: &Arc<Self>) {
        {
            let mut pass = self.join_pass.lock().unwrap_or_else(|e| e.into_inner());
            if pass.running {
                pass.again = true;
                return;
            }
            pass.running = true;
        }
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = manager.evaluate_active_jobs(TriggeredBy::NodeJoin).await {
                    tracing::error!(error = %e, "cannot evaluate jobs for joined nodes");
                }
                tokio::time::sleep(JOIN_PASS_SPACING).await;
                let mut pass = manager.join_pass.lock().unwrap_or_else(|e| e.into_inner());
                if !pass.again {
                    pass.running = false;
                    return;
                }
                pass.again = false;
            }
        });
    }

    /// The `heartbeat-checker` loop: marks silent nodes disconnected and, after the grace
    /// period, has their jobs rescheduled. Runs until `stop` fires.
    pub async fn run_heartbeat_checker(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let period = (self.config.disconnect_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.changed() => return,
            }
            if !self.is_leading() {
                continue;
            }
            let now = self.now();
            let silent: Vec<(NodeId, u64)> = self
                .read()
                .iter()
                .filter(|(_, n)| {
                    n.disconnected_at.is_none()
                        && now.saturating_sub(n.last_heartbeat)
                            > nanos(self.config.disconnect_timeout)
                })
                .map(|(id, n)| (id.clone(), n.generation))
                .collect();
            for (id, generation) in silent {
                self.disconnected(&id, generation, "heartbeat timeout")
                    .await;
                if let Some(node) = self.read().get(&id) {
                    node.wake.notify_waiters();
                }
            }
            let lost: Vec<NodeId> = {
                let mut nodes = self.write();
                nodes
                    .iter_mut()
                    .filter(|(_, n)| {
                        !n.loss_evaluated
                            && n.disconnected_at
                                .is_some_and(|since| now.saturating_sub(since) >= nanos(n.grace))
                    })
                    .map(|(id, n)| {
                        n.loss_evaluated = true;
                        id.clone()
                    })
                    .collect()
            };
            if !lost.is_empty() {
                tracing::warn!(nodes = ?lost, "nodes lost: rescheduling their executions");
                if let Err(e) = self.evaluate_active_jobs(TriggeredBy::NodeLeave).await {
                    tracing::error!(error = %e, "cannot evaluate jobs of lost nodes");
                }
            }
        }
    }

    /// The store, for the connection loop.
    fn store(&self) -> &Store {
        &self.store
    }

    /// The broker, for the connection loop.
    fn broker(&self) -> &Arc<EvaluationBroker> {
        &self.broker
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::Resources;
    use bacalhau_models::node::{Membership, NodeType};

    const LOADED: Timestamp = 1_700_000_000_000_000_000;
    const SECOND: i64 = 1_000_000_000;

    /// A node manager started at `LOADED` (on a paused clock) over a store that holds one
    /// approved compute node, `n1`.
    async fn with_stored_node(dir: &std::path::Path, config: NodeManagerConfig) -> NodeManager {
        let store = Store::open(&dir.join("state.redb")).unwrap();
        let mut stored = NodeState::default();
        stored.info.node_id = NodeId::from("n1");
        stored.info.node_type = NodeType::Compute;
        stored.membership = Membership::Approved;
        store.write(move |w| w.put_node(&stored)).await.unwrap();
        let broker = Arc::new(EvaluationBroker::with_clock(Clock::following_tokio(LOADED)));
        NodeManager::new(store, broker, config, Arc::default(), Arc::default()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_loaded_at_start_has_twice_the_reconnect_backoff_to_dial_in() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeManagerConfig {
            reschedule_grace: Duration::from_secs(2),
            ..NodeManagerConfig::default()
        };
        let nodes = with_stored_node(dir.path(), config).await;

        // Past the configured 2 s, the node may still be backing off (up to 5 s a try).
        let waiting = &nodes.views(LOADED + 3 * SECOND)[0];
        assert!(!waiting.connected && !waiting.lost);
        assert_eq!(waiting.returns_by, Some(LOADED + 10 * SECOND));
        assert!(nodes.views(LOADED + 10 * SECOND)[0].lost);
    }

    /// A burst of joins (every node coming back to a restarted orchestrator) evaluates the
    /// active jobs twice, not once per node: at the first join, then once for the rest.
    #[tokio::test(start_paused = true)]
    async fn joins_in_a_burst_share_their_evaluations() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = Arc::new(with_stored_node(dir.path(), NodeManagerConfig::default()).await);
        let job = bacalhau_models::Job {
            id: bacalhau_models::JobId::from("j-waiting"),
            namespace: "default".into(),
            r#type: "batch".into(),
            version: 1,
            ..Default::default()
        };
        nodes.store().write(move |w| w.put_job(&job)).await.unwrap();

        for _ in 0..50 {
            nodes.evaluate_after_join();
            tokio::task::yield_now().await;
        }
        // Until the passes are over; the store writes on a thread of its own, on the real
        // clock, while the paused one skips each pass's spacing.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while nodes.join_pass.lock().unwrap().running {
            assert!(
                std::time::Instant::now() < deadline,
                "the passes never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let written = nodes
            .store()
            .read()
            .and_then(|r| r.pending_evaluations())
            .unwrap();
        assert_eq!(written.len(), 2, "{written:?}");
        assert!(
            written
                .iter()
                .all(|e| e.triggered_by == TriggeredBy::NodeJoin)
        );
        assert!(!nodes.join_pass.lock().unwrap().running);
    }

    /// Plans made close together share one view of the nodes while only heartbeat figures
    /// change; any other change (here a node's new data) is seen by the next plan at once.
    #[tokio::test(start_paused = true)]
    async fn views_are_shared_until_a_change_the_scheduler_must_see() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = with_stored_node(dir.path(), NodeManagerConfig::default()).await;
        let id = NodeId::from("n1");
        let first = nodes.views(LOADED);
        let beat = Heartbeat {
            available: Resources {
                cpu: 3.0,
                ..Default::default()
            },
            queued: Resources::default(),
            running: 0,
            enqueued: 0,
            ipfs_roots: None,
        };
        nodes.heartbeat(&id, &beat);
        assert!(
            Arc::ptr_eq(&first, &nodes.views(LOADED + 1_000_000)),
            "a heartbeat's figures may wait"
        );
        let later = nodes.views(LOADED + 10 * 1_000_000);
        assert!(!Arc::ptr_eq(&first, &later), "rebuilt once they are old");
        assert_eq!(
            later[0].state.info.compute_node_info.available_capacity.cpu,
            3.0
        );
        nodes.holds(&id, &["bafy-root".to_string()]);
        let held = nodes.views(LOADED + 10 * 1_000_000);
        assert!(
            !Arc::ptr_eq(&later, &held),
            "a node's new data is seen at once"
        );
        assert_eq!(
            held[0].state.info.compute_node_info.data_locality.ipfs,
            vec!["bafy-root".to_string()]
        );
    }
}
