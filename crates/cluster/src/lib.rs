//! Orchestrators as a Raft group (openraft): every write of the orchestrator's store is a log
//! entry of row changes (`orchestrator::store::replication`) that each member applies to its
//! own copy, so stores and audit chains are the same on every member; only the leader
//! schedules and serves compute nodes (`orchestrator::ClusterLink`).
//!
//! Start at [`Pending`] (made before the orchestrator, whose store needs the group) and
//! [`Pending::start`]; `log_store.rs` is the Raft log (its own redb file), `state_machine.rs`
//! the store as the state machine, `network.rs` the members' RPCs over HTTP on the cluster
//! listener.
//! **Invariant:** a member writes its store only through the state machine; a leader's writer
//! stages a group in a transaction it drops, and waits for the group's entry to be applied
//! before staging the next, so each group reads everything written before it.

// openraft's storage traits return its `StorageError` (over 200 bytes) by value; our helpers
// that feed them return the same type rather than boxing and unboxing it at each call.
#![allow(clippy::result_large_err)]

mod log_store;
mod network;
mod state_machine;

use bacalhau_orchestrator::ClusterLink;
use bacalhau_orchestrator::store::Store;
use bacalhau_orchestrator::store::replication::{Change, Replicate, ReplicationError};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Raft, ServerState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

pub use network::routes;

/// A member's ID in the group: derived from its advertised cluster address.
pub type NodeId = u64;

/// What the group knows of a member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its node name.
    pub name: String,
    /// Its cluster listener, `host:port`.
    pub raft: String,
    /// Its API, a URL: where followers send writes and clients may go.
    pub api: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, API {})", self.name, self.raft, self.api)
    }
}

/// A log entry's payload: one group of store writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The rows the group wrote, with their new values.
    pub changes: Vec<Change>,
}

/// What applying an entry answers (nothing: the writer already has its results).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {}

openraft::declare_raft_types!(
    /// The group's types.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = Member,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;

/// How long a write waits for the group to commit it before failing.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong starting or running the group.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file could not be opened.
    #[error("cluster storage: {0}")]
    Storage(String),
    /// The cluster listener could not start.
    #[error("cannot listen on {address} for the orchestrator cluster: {reason}")]
    Listen {
        /// The address.
        address: String,
        /// Why not.
        reason: String,
    },
    /// A peer could not be reached or answered badly.
    #[error("cluster member {address}: {reason}")]
    Peer {
        /// Its address.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// Raft refused or failed.
    #[error("{0}")]
    Raft(String),
    /// The operation needs the leader.
    #[error(transparent)]
    NotLeader(#[from] ReplicationError),
}

/// How this member joins its cluster (`Orchestrator.Cluster.*`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The cluster's name (`Orchestrator.Cluster.Name`); members of another name are refused.
    pub cluster_name: String,
    /// This member's node name.
    pub node_name: String,
    /// Where the cluster listener binds, `host:port`.
    pub listen: String,
    /// The `host:port` others reach it at (the listen address when empty).
    pub advertise: String,
    /// This member's API URL, for followers to forward writes to.
    pub api: String,
    /// The other members' cluster addresses (`host:port`).
    pub peers: Vec<String>,
    /// A shared secret every member sends (the nodes' join token).
    pub token: String,
    /// Where the Raft log and snapshot live.
    pub data_dir: PathBuf,
}

/// The group seen from the store: what its writer thread calls.
struct Group {
    raft: OnceLock<Raft<TypeConfig>>,
    runtime: tokio::runtime::Handle,
    /// The term in which this member last confirmed it leads with everything applied.
    ready_term: std::sync::Mutex<Option<u64>>,
    /// An earlier write timed out: its entry may still commit, so no new group is staged
    /// until every entry in this member's log is applied (or the term changes).
    unsure: AtomicBool,
    /// Whether this member leads with a majority behind it (see `watch_leadership`).
    leading: Arc<AtomicBool>,
}

impl Group {
    fn raft(&self) -> Result<&Raft<TypeConfig>, ReplicationError> {
        self.raft
            .get()
            .ok_or_else(|| ReplicationError::Failed("the cluster is starting".into()))
    }
}

fn leader_api(raft: &Raft<TypeConfig>) -> Option<String> {
    let metrics = raft.metrics().borrow().clone();
    let leader = metrics.current_leader?;
    metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|m| m.api.clone())
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> ReplicationError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ReplicationError::NotLeader {
                leader: forward.leader_node.map(|m| m.api),
            }
        }
        other => ReplicationError::Failed(other.to_string()),
    }
}

impl Replicate for Group {
    fn ready(&self) -> Result<(), ReplicationError> {
        let raft = self.raft()?;
        // Called before every group of writes: read the figures, do not copy the metrics.
        let (leads, term, applied, last_log_index) = {
            let watched = raft.metrics();
            let m = watched.borrow();
            (
                m.current_leader == Some(m.id) && m.state == ServerState::Leader,
                m.current_term,
                m.last_applied.map(|id| id.index),
                m.last_log_index,
            )
        };
        if !leads {
            return Err(ReplicationError::NotLeader {
                leader: leader_api(raft),
            });
        }
        if !self.leading.load(Ordering::SeqCst) {
            return Err(ReplicationError::Failed(
                "this orchestrator cannot reach a majority of its cluster".into(),
            ));
        }
        let mut ready_term = self.ready_term.lock().unwrap_or_else(|e| e.into_inner());
        if self.unsure.load(Ordering::SeqCst) {
            if applied >= last_log_index {
                self.unsure.store(false, Ordering::SeqCst);
            } else if *ready_term == Some(term) {
                return Err(ReplicationError::Failed(
                    "an earlier write is not committed yet; try again".into(),
                ));
            }
        }
        if *ready_term == Some(term) {
            return Ok(());
        }
        // A new term: apply everything committed before it, so the next group reads it.
        self.runtime
            .block_on(async {
                tokio::time::timeout(COMMIT_TIMEOUT, raft.ensure_linearizable()).await
            })
            .map_err(|_| ReplicationError::Failed("no majority answered".into()))?
            .map_err(|e| ReplicationError::Failed(e.to_string()))?;
        *ready_term = Some(term);
        self.unsure.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn replicate(&self, changes: Vec<Change>) -> Result<(), ReplicationError> {
        let raft = self.raft()?;
        // Inside the async block, so the timer is made within the runtime's context.
        match self.runtime.block_on(async {
            tokio::time::timeout(COMMIT_TIMEOUT, raft.client_write(Request { changes })).await
        }) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(write_error(e)),
            Err(_) => {
                self.unsure.store(true, Ordering::SeqCst);
                Err(ReplicationError::Failed(format!(
                    "no majority committed the write within {}s; it may still be applied",
                    COMMIT_TIMEOUT.as_secs()
                )))
            }
        }
    }
}

/// The group before it starts: made first, because the orchestrator's store commits through
/// it; [`Pending::start`] then starts Raft over that store.
pub struct Pending {
    group: Arc<Group>,
    leadership: watch::Sender<bool>,
}

impl Pending {
    /// A group to start, and the link the orchestrator is started with.
    pub fn new() -> (Self, ClusterLink) {
        let group = Arc::new(Group {
            raft: OnceLock::new(),
            runtime: tokio::runtime::Handle::current(),
            ready_term: std::sync::Mutex::new(None),
            unsure: AtomicBool::new(false),
            leading: Arc::new(AtomicBool::new(false)),
        });
        let (leadership, watching) = watch::channel(false);
        let link = ClusterLink {
            group: Arc::clone(&group) as Arc<dyn Replicate>,
            leadership: watching,
        };
        (Self { group, leadership }, link)
    }

    /// Starts this member over `store` (the orchestrator's, opened with the link), serves the
    /// cluster listener, and forms the cluster with the peers when none exists yet.
    pub async fn start(
        self,
        config: ClusterConfig,
        store: &Store,
    ) -> Result<Cluster, ClusterError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| ClusterError::Storage(format!("{}: {e}", config.data_dir.display())))?;
        let advertise = if config.advertise.is_empty() {
            config.listen.clone()
        } else {
            strip_scheme(&config.advertise).to_string()
        };
        let id = member_id(&advertise);
        let me = Member {
            name: config.node_name.clone(),
            raft: advertise,
            api: config.api.clone(),
        };
        let log = log_store::LogStore::open(&config.data_dir.join("raft-log.redb"))
            .map_err(|e| ClusterError::Storage(e.to_string()))?;
        let state_machine = state_machine::StateMachine::new(
            store.database(),
            config.data_dir.join("raft-snapshot.json"),
        )
        .map_err(|e| ClusterError::Storage(e.to_string()))?;
        let raft_config = openraft::Config {
            cluster_name: config.cluster_name.clone(),
            // A follower that hears nothing for 0.6–1.2 s stands for election: a dead leader
            // is replaced within about two seconds.
            heartbeat_interval: 150,
            election_timeout_min: 600,
            election_timeout_max: 1200,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5000),
            // Each entry is a whole group of writes (up to 512 of them): fewer per append.
            max_payload_entries: 64,
            // A snapshot travels in 1 MiB chunks (JSON, so about 3.5 MiB on the wire each);
            // openraft's 200 ms per chunk is too short for a loaded machine.
            snapshot_max_chunk_size: 1 << 20,
            install_snapshot_timeout: 10_000,
            max_in_snapshot_log_to_keep: 1000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        // Raft traffic leaves from the cluster address when it names one, so a member is known
        // by its source address too (firewalls, and the partition tests).
        let bind = config
            .listen
            .rsplit_once(':')
            .and_then(|(host, _)| {
                host.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .ok()
            })
            .filter(|ip| !ip.is_unspecified());
        let client = reqwest::Client::builder()
            .local_address(bind)
            .build()
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let network = network::Network {
            client: client.clone(),
            token: config.token.clone(),
        };
        let raft = Raft::new(id, Arc::new(raft_config), network, log, state_machine)
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let _ = self.group.raft.set(raft.clone());
        let cluster = Cluster {
            inner: Arc::new(Inner {
                leading: Arc::clone(&self.group.leading),
                id,
                me,
                raft,
                client,
                token: config.token.clone(),
                cluster_name: config.cluster_name.clone(),
            }),
        };
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| ClusterError::Listen {
                address: config.listen.clone(),
                reason: e.to_string(),
            })?;
        let app = network::routes(cluster.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the orchestrator cluster listener stopped");
            }
        });
        tokio::spawn(watch_leadership(cluster.clone(), self.leadership));
        let peers: Vec<String> = config
            .peers
            .iter()
            .map(|p| strip_scheme(p).to_string())
            .filter(|p| *p != cluster.inner.me.raft)
            .collect();
        tokio::spawn(bootstrap(cluster.clone(), peers));
        Ok(cluster)
    }
}

fn strip_scheme(address: &str) -> &str {
    address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .trim_end_matches('/')
}

/// A member's ID: the first 8 bytes of the SHA-256 of its advertised address, so every
/// member computes the same ID for a peer from its address alone.
pub fn member_id(advertise: &str) -> NodeId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(advertise.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// How often a leader confirms it still has a majority behind it, and how long it waits.
const LEASE_CHECK: Duration = Duration::from_millis(300);
const LEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends whether this member leads whenever that changes. Raft alone lets a leader cut off
/// from the others believe it leads until it hears of a newer term; a member that cannot
/// confirm its lead with a majority within [`LEASE_TIMEOUT`] gives it up here (no scheduling,
/// no compute nodes, writes refused at once), so its nodes move to the majority's leader.
async fn watch_leadership(cluster: Cluster, leadership: watch::Sender<bool>) {
    let raft = &cluster.inner.raft;
    let mut metrics = raft.metrics();
    let mut tick = tokio::time::interval(LEASE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_raft_leader = false;
    loop {
        let raft_leader = {
            let m = metrics.borrow_and_update();
            m.state == ServerState::Leader && m.current_leader == Some(m.id)
        };
        let leading = if !raft_leader {
            false
        } else if !was_raft_leader {
            // Just elected: a majority voted for it.
            true
        } else {
            *leadership.borrow()
        };
        was_raft_leader = raft_leader;
        publish(&cluster, &leadership, leading);
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = tick.tick() => {
                if raft_leader {
                    let confirmed = matches!(
                        tokio::time::timeout(LEASE_TIMEOUT, raft.ensure_linearizable()).await,
                        Ok(Ok(_))
                    );
                    if confirmed != *leadership.borrow() {
                        tracing::warn!(confirmed, "the lead with a majority behind it changed");
                    }
                    publish(&cluster, &leadership, confirmed);
                }
            }
        }
    }
}

fn publish(cluster: &Cluster, leadership: &watch::Sender<bool>, leading: bool) {
    cluster.inner.leading.store(leading, Ordering::SeqCst);
    leadership.send_if_modified(|was| {
        let changed = *was != leading;
        *was = leading;
        changed
    });
}

/// What `/raft/info` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Info {
    id: NodeId,
    member: Member,
    cluster_name: String,
    initialized: bool,
}

/// Forms the cluster when none exists: once every peer answers and none belongs to a
/// cluster yet, the member with the lowest ID initializes it with all of them as voters.
/// A member added to a running cluster waits to be added (`bacalhau cluster join`).
async fn bootstrap(cluster: Cluster, peers: Vec<String>) {
    let raft = &cluster.inner.raft;
    if peers.is_empty() {
        if !raft.is_initialized().await.unwrap_or(true) {
            let mut members = BTreeMap::new();
            members.insert(cluster.inner.id, cluster.inner.me.clone());
            if let Err(e) = raft.initialize(members).await {
                tracing::warn!(error = %e, "cannot form a one-member cluster");
            }
        }
        return;
    }
    loop {
        if raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        let mut members = BTreeMap::new();
        members.insert(cluster.inner.id, cluster.inner.me.clone());
        let mut all = true;
        let mut any_initialized = false;
        for peer in &peers {
            match cluster.info(peer).await {
                Ok(info) if info.cluster_name == cluster.inner.cluster_name => {
                    any_initialized |= info.initialized;
                    members.insert(info.id, info.member);
                }
                Ok(info) => {
                    tracing::error!(peer, their = %info.cluster_name, ours = %cluster.inner.cluster_name, "a peer belongs to another cluster");
                    all = false;
                }
                Err(e) => {
                    tracing::debug!(peer, error = %e, "waiting for a cluster peer");
                    all = false;
                }
            }
        }
        if any_initialized {
            tracing::info!("the cluster exists already: waiting to be added to it");
            return;
        }
        if all {
            if members.keys().next() != Some(&cluster.inner.id) {
                // The member with the lowest ID forms it.
                return;
            }
            tracing::info!(
                n_members = members.len(),
                "forming the orchestrator cluster"
            );
            match raft.initialize(members).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "cannot form the cluster yet"),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub(crate) struct Inner {
    /// Whether this member leads with a majority behind it (see `watch_leadership`).
    leading: Arc<AtomicBool>,
    pub(crate) id: NodeId,
    pub(crate) me: Member,
    pub(crate) raft: Raft<TypeConfig>,
    client: reqwest::Client,
    pub(crate) token: String,
    cluster_name: String,
}

/// A running member.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) inner: Arc<Inner>,
}

pub use bacalhau_client::apimodels::{ClusterMember as MemberStatus, ClusterStatus};

impl Cluster {
    /// Whether this member leads now, with a majority behind it.
    pub fn is_leader(&self) -> bool {
        self.inner.leading.load(Ordering::SeqCst)
    }

    /// The leader's API URL, if a leader is known and it is not this member.
    pub fn leader_api(&self) -> Option<String> {
        let leader = self.inner.raft.metrics().borrow().current_leader;
        if self.is_leader() || leader == Some(self.inner.id) {
            // Leading, or believing so without a majority to confirm it: no one to ask.
            return None;
        }
        leader_api(&self.inner.raft)
    }

    async fn info(&self, address: &str) -> Result<Info, ClusterError> {
        let peer = |reason: String| ClusterError::Peer {
            address: address.to_string(),
            reason,
        };
        self.inner
            .client
            .get(format!("http://{address}/raft/info"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| peer(e.to_string()))?
            .json()
            .await
            .map_err(|e| peer(e.to_string()))
    }

    /// This member's answer to `/raft/info`.
    pub(crate) async fn own_info(&self) -> Info {
        Info {
            id: self.inner.id,
            member: self.inner.me.clone(),
            cluster_name: self.inner.cluster_name.clone(),
            initialized: self.inner.raft.is_initialized().await.unwrap_or(false),
        }
    }

    /// Waits until this member has applied everything the leader had committed when asked,
    /// so a read here sees every write acknowledged before it (the read-index protocol: the
    /// leader confirms it still leads and names its commit index).
    pub async fn read_barrier(&self) -> Result<(), ClusterError> {
        let raft = &self.inner.raft;
        if self.is_leader() {
            // The leader applies each write before acknowledging it.
            return Ok(());
        }
        let metrics = raft.metrics().borrow().clone();
        let leader = metrics
            .current_leader
            .and_then(|id| {
                metrics
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .cloned()
            })
            .ok_or(ReplicationError::NotLeader { leader: None })?;
        let peer = |reason: String| ClusterError::Peer {
            address: leader.raft.clone(),
            reason,
        };
        let response = self
            .inner
            .client
            .post(format!("http://{}/raft/read-index", leader.raft))
            .header("x-bacalhau-cluster-token", &self.inner.token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| peer(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(peer(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            )));
        }
        let index: Option<u64> = response.json().await.map_err(|e| peer(e.to_string()))?;
        if let Some(index) = index {
            raft.wait(Some(Duration::from_secs(5)))
                .applied_index_at_least(Some(index), "read barrier")
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
        }
        Ok(())
    }

    /// The group as this member sees it.
    pub fn status(&self) -> ClusterStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leader_last = m.last_log_index;
        let members = membership
            .nodes()
            .map(|(id, member)| {
                let matched = if *id == m.id {
                    m.last_log_index
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(id).cloned().flatten())
                        .map(|log_id| log_id.index)
                };
                let role = if Some(*id) == m.current_leader {
                    "Leader"
                } else if voters.contains(id) {
                    "Follower"
                } else {
                    "Learner"
                };
                MemberStatus {
                    id: format!("{id:016x}"),
                    name: member.name.clone(),
                    address: member.raft.clone(),
                    api_address: member.api.clone(),
                    role: role.to_string(),
                    matched_index: matched,
                    lag: match (m.replication.is_some() || *id == m.id, leader_last, matched) {
                        (true, Some(last), Some(at)) => Some(last.saturating_sub(at)),
                        (true, Some(last), None) => Some(last + 1),
                        _ => None,
                    },
                }
            })
            .collect();
        ClusterStatus {
            name: self.inner.cluster_name.clone(),
            this_member: self.inner.me.name.clone(),
            leader: m
                .current_leader
                .and_then(|id| membership.get_node(&id))
                .map(|member| member.name.clone()),
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|id| id.index),
            snapshot_index: m.snapshot.map(|id| id.index),
            purged_index: m.purged.map(|id| id.index),
            members,
        }
    }

    /// Adds the orchestrator whose cluster listener is at `address` as a voting member (first
    /// as a learner, which catches up, then as a voter). Only the leader can.
    pub async fn add_member(&self, address: &str) -> Result<(), ClusterError> {
        let address = strip_scheme(address);
        let info = self.info(address).await?;
        if info.cluster_name != self.inner.cluster_name {
            return Err(ClusterError::Peer {
                address: address.to_string(),
                reason: format!("it belongs to cluster {:?}", info.cluster_name),
            });
        }
        let raft = &self.inner.raft;
        raft.add_learner(info.id, info.member, true)
            .await
            .map_err(|e| ClusterError::NotLeader(write_error(e)))?;
        let mut voters: BTreeSet<NodeId> = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        voters.insert(info.id);
        raft.change_membership(voters, false)
            .await
            .map_err(|e| ClusterError::NotLeader(write_error(e)))?;
        Ok(())
    }

    /// Removes a member (by name, ID or cluster address) from the group. Only the leader can.
    pub async fn remove_member(&self, which: &str) -> Result<(), ClusterError> {
        let raft = &self.inner.raft;
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let found = membership
            .nodes()
            .find(|(id, m)| {
                m.name == which || m.raft == strip_scheme(which) || format!("{id:016x}") == which
            })
            .map(|(id, _)| *id)
            .ok_or_else(|| ClusterError::Raft(format!("no cluster member {which}")))?;
        let voters: BTreeSet<NodeId> = membership.voter_ids().filter(|id| *id != found).collect();
        if voters.is_empty() {
            return Err(ClusterError::Raft("cannot remove the last member".into()));
        }
        raft.change_membership(voters, false)
            .await
            .map_err(|e| ClusterError::NotLeader(write_error(e)))?;
        Ok(())
    }

    /// Stops Raft (the store stays as applied).
    pub async fn shutdown(&self) {
        let _ = self.inner.raft.shutdown().await;
    }
}
