//! Nodes as the orchestrator knows them: identity, capacity, membership and connection.

use crate::ids::NodeId;
use crate::resources::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a node is: an orchestrator (upstream's `Requester`) or a compute node. On the wire as
/// upstream's strings; a hybrid node shows as both, one record each. Ordered as upstream sorts
/// them: requesters first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum NodeType {
    /// An orchestrator.
    #[serde(rename = "Requester")]
    Requester,
    /// A compute node: the only kind that joins over the node channel and runs executions.
    #[default]
    #[serde(rename = "Compute")]
    Compute,
}

impl NodeType {
    /// Upstream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requester => "Requester",
            Self::Compute => "Compute",
        }
    }
}

impl std::fmt::Display for NodeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's membership: `PENDING` until approved, `APPROVED`, or `REJECTED` for good. On the
/// wire as upstream's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Membership {
    /// Waiting for an operator's approval.
    #[default]
    // Records written before the field was typed may hold an empty string.
    #[serde(rename = "PENDING", alias = "")]
    Pending,
    /// May receive work.
    #[serde(rename = "APPROVED")]
    Approved,
    /// Refused; its handshakes are refused too.
    #[serde(rename = "REJECTED")]
    Rejected,
}

impl Membership {
    /// Every membership, in upstream's order.
    pub const ALL: [Membership; 3] = [Self::Pending, Self::Approved, Self::Rejected];

    /// Upstream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
        }
    }

    /// Parses upstream's name, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's connection: `CONNECTED` while heartbeats arrive, else `DISCONNECTED`. On the wire
/// as upstream's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConnectionStatus {
    /// Heartbeats arrive.
    #[serde(rename = "CONNECTED")]
    Connected,
    /// Heartbeats stopped (or never came).
    #[default]
    // Records written before the field was typed may hold an empty string.
    #[serde(rename = "DISCONNECTED", alias = "")]
    Disconnected,
}

impl ConnectionStatus {
    /// Both, in upstream's order.
    pub const ALL: [ConnectionStatus; 2] = [Self::Connected, Self::Disconnected];

    /// Upstream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "CONNECTED",
            Self::Disconnected => "DISCONNECTED",
        }
    }

    /// Parses upstream's name, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator can do to a node's membership (`node approve|reject|delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeAction {
    /// Let it take work.
    Approve,
    /// Refuse it for good.
    Reject,
    /// Forget it (it may join again).
    Delete,
}

impl NodeAction {
    /// Every action.
    pub const ALL: [NodeAction; 3] = [Self::Approve, Self::Reject, Self::Delete];

    /// The action's name as the API and CLI write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Delete => "delete",
        }
    }

    /// Parses an action's name, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for NodeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version of the software a node runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BuildVersionInfo {
    /// Major version.
    #[serde(rename = "Major", default, skip_serializing_if = "String::is_empty")]
    pub major: String,
    /// Minor version.
    #[serde(rename = "Minor", default, skip_serializing_if = "String::is_empty")]
    pub minor: String,
    /// The full version, `v1.2.3`.
    #[serde(rename = "GitVersion", default)]
    pub git_version: String,
    /// The commit built.
    #[serde(rename = "GitCommit", default)]
    pub git_commit: String,
    /// When it was built, RFC 3339.
    #[serde(rename = "BuildDate", default)]
    pub build_date: String,
    /// Operating system.
    #[serde(rename = "GOOS", default)]
    pub goos: String,
    /// Processor architecture.
    #[serde(rename = "GOARCH", default)]
    pub goarch: String,
}

/// What a compute node can do and how busy it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ComputeNodeInfo {
    /// Engines it runs: `docker`, `wasm`, `noop`.
    #[serde(rename = "ExecutionEngines", default)]
    pub execution_engines: Vec<String>,
    /// Publishers it supports.
    #[serde(rename = "Publishers", default)]
    pub publishers: Vec<String>,
    /// Input source types it can fetch.
    #[serde(rename = "StorageSources", default)]
    pub storage_sources: Vec<String>,
    /// Everything it offers.
    #[serde(rename = "MaxCapacity", default)]
    pub max_capacity: Resources,
    /// Resources taken by queued executions (upstream's JSON key is `QueueCapacity`).
    #[serde(rename = "QueueCapacity", default)]
    pub queue_used_capacity: Resources,
    /// What is free now.
    #[serde(rename = "AvailableCapacity", default)]
    pub available_capacity: Resources,
    /// The largest single job it takes.
    #[serde(rename = "MaxJobRequirements", default)]
    pub max_job_requirements: Resources,
    /// Executions running now.
    #[serde(rename = "RunningExecutions", default)]
    pub running_executions: u64,
    /// Executions waiting on the node.
    #[serde(rename = "EnqueuedExecutions", default)]
    pub enqueued_executions: u64,
    /// The address it is reachable at, if any.
    #[serde(rename = "address", default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Where its IPFS node takes bitswap connections (multiaddrs with `/p2p/<peer ID>`).
    #[serde(
        rename = "IPFSAddresses",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ipfs_addresses: Vec<String>,
    /// The data it holds (ours, beyond upstream), so jobs can be placed next to their inputs.
    #[serde(
        rename = "DataLocality",
        default,
        skip_serializing_if = "DataLocality::is_empty"
    )]
    pub data_locality: DataLocality,
}

/// The data a compute node holds: host paths jobs may mount (its allow-list) and S3 buckets or
/// prefixes it is close to (a cache, the same site).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataLocality {
    /// `Compute.AllowListedLocalPaths` entries: a path, optionally with `/*` and `:rw`/`:ro`.
    #[serde(rename = "LocalPaths", default, skip_serializing_if = "Vec::is_empty")]
    pub local_paths: Vec<String>,
    /// `bucket` or `bucket/prefix` entries.
    #[serde(rename = "S3", default, skip_serializing_if = "Vec::is_empty")]
    pub s3: Vec<String>,
    /// Root CIDs pinned in the node's block store.
    #[serde(rename = "IPFS", default, skip_serializing_if = "Vec::is_empty")]
    pub ipfs: Vec<String>,
}

/// Whether `path` is `base` or lies under it, comparing whole components.
fn under(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl DataLocality {
    /// Whether nothing is advertised.
    pub fn is_empty(&self) -> bool {
        self.local_paths.is_empty() && self.s3.is_empty() && self.ipfs.is_empty()
    }

    /// Whether a local path lies under one of the allow-listed paths. Lexical only: the node
    /// resolves symlinks itself before it mounts anything.
    pub fn allows_local(&self, path: &str) -> bool {
        self.local_paths.iter().any(|entry| {
            let entry = entry
                .strip_suffix(":rw")
                .or_else(|| entry.strip_suffix(":ro"))
                .unwrap_or(entry);
            under(path, entry.trim_end_matches('*'))
        })
    }

    /// Whether the node holds the input: a local path it allow-lists, or an S3 object under a
    /// bucket or prefix it names.
    pub fn holds(&self, input: &crate::InputSource) -> bool {
        match input.source.r#type.as_str() {
            "local" | "localDirectory" => input
                .source
                .param_str("SourcePath")
                .is_some_and(|path| self.allows_local(path)),
            "s3" => {
                let bucket = input.source.param_str("Bucket").unwrap_or_default();
                let key = input.source.param_str("Key").unwrap_or_default();
                let key = key.trim_start_matches('/').trim_end_matches('*');
                self.s3.iter().any(|entry| {
                    let (held_bucket, prefix) = entry.split_once('/').unwrap_or((entry, ""));
                    held_bucket == bucket && key.starts_with(prefix)
                })
            }
            "ipfs" => input.source.param_str("CID").is_some_and(|text| {
                let text = text.trim().trim_start_matches("/ipfs/");
                let root = text.split('/').next().unwrap_or(text);
                self.ipfs.iter().any(|held| held == root)
            }),
            _ => false,
        }
    }
}

/// A node's identity and capabilities.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's ID.
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    /// `Requester` (orchestrator) or `Compute`.
    #[serde(rename = "NodeType", default)]
    pub node_type: NodeType,
    /// Labels jobs select nodes by.
    #[serde(rename = "Labels", default)]
    pub labels: BTreeMap<String, String>,
    /// Protocols it speaks.
    #[serde(rename = "SupportedProtocols", default)]
    pub supported_protocols: Vec<String>,
    /// Compute capabilities; compute nodes only.
    #[serde(rename = "ComputeNodeInfo", default)]
    pub compute_node_info: ComputeNodeInfo,
    /// Software version.
    #[serde(rename = "BacalhauVersion", default)]
    pub bacalhau_version: BuildVersionInfo,
}

/// The connection to a compute node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConnectionState {
    /// `CONNECTED` or `DISCONNECTED`.
    #[serde(rename = "Status", default)]
    pub status: ConnectionStatus,
    /// Last heartbeat, RFC 3339.
    #[serde(rename = "LastHeartbeat", default)]
    pub last_heartbeat: String,
    /// Last sequence number received from the node.
    #[serde(rename = "LastComputeSeqNum", default, skip_serializing_if = "is_zero")]
    pub last_compute_seq_num: u64,
    /// Last sequence number the node received from the orchestrator.
    #[serde(
        rename = "LastOrchestratorSeqNum",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub last_orchestrator_seq_num: u64,
    /// Since when it is connected, RFC 3339.
    #[serde(rename = "ConnectedSince", default)]
    pub connected_since: String,
    /// Since when it is disconnected, RFC 3339.
    #[serde(rename = "DisconnectedSince", default)]
    pub disconnected_since: String,
    /// Why it disconnected last.
    #[serde(
        rename = "LastError",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub last_error: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A node as listed by the API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeState {
    /// Identity and capabilities.
    #[serde(rename = "Info")]
    pub info: NodeInfo,
    /// `PENDING`, `APPROVED` or `REJECTED`.
    #[serde(rename = "Membership", default)]
    pub membership: Membership,
    /// Deprecated copy of `ConnectionState.Status`, kept as upstream sends it.
    #[serde(rename = "Connection", default)]
    pub connection: ConnectionStatus,
    /// The connection's state.
    #[serde(rename = "ConnectionState", default)]
    pub connection_state: ConnectionState,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InputSource, SpecConfig};

    #[test]
    fn node_types_are_upstreams_strings_and_sort_requesters_first() {
        assert_eq!(
            serde_json::to_string(&NodeType::Requester).unwrap(),
            "\"Requester\""
        );
        let compute: NodeType = serde_json::from_str("\"Compute\"").unwrap();
        assert_eq!(compute, NodeType::Compute);
        assert!(serde_json::from_str::<NodeType>("\"Hybrid\"").is_err());
        assert!(NodeType::Requester < NodeType::Compute);
    }

    fn input(kind: &str, params: &[(&str, &str)]) -> InputSource {
        let mut source = SpecConfig::of_type(kind);
        for (k, v) in params {
            source.params.insert(k.to_string(), (*v).into());
        }
        InputSource {
            source,
            alias: String::new(),
            target: "/inputs".into(),
        }
    }

    #[test]
    fn locality_matches_whole_components_and_prefixes() {
        let held = DataLocality {
            local_paths: vec!["/data/*".into(), "/scratch:rw".into()],
            s3: vec!["logs/2024/".into(), "images".into()],
            ipfs: vec!["QmPqc5LexYh7oXbMSPJ9TiQqr26cQH23RsoZhY5Lzx5f9c".into()],
        };
        assert!(held.holds(&input("local", &[("SourcePath", "/data/a")])));
        assert!(held.holds(&input("localDirectory", &[("SourcePath", "/scratch")])));
        assert!(!held.holds(&input("local", &[("SourcePath", "/database")])));
        assert!(held.holds(&input("s3", &[("Bucket", "logs"), ("Key", "2024/01/x")])));
        assert!(!held.holds(&input("s3", &[("Bucket", "logs"), ("Key", "2023/x")])));
        assert!(held.holds(&input("s3", &[("Bucket", "images"), ("Key", "")])));
        assert!(!held.holds(&input("urlDownload", &[("URL", "http://x/y")])));
        let cid = "QmPqc5LexYh7oXbMSPJ9TiQqr26cQH23RsoZhY5Lzx5f9c";
        assert!(held.holds(&input("ipfs", &[("CID", cid)])));
        assert!(held.holds(&input(
            "ipfs",
            &[("CID", &format!("/ipfs/{cid}/out/a.txt"))]
        )));
        assert!(!held.holds(&input(
            "ipfs",
            &[("CID", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")]
        )));
    }

    #[test]
    fn membership_and_connection_travel_as_upstreams_strings() {
        let state = NodeState {
            membership: Membership::Approved,
            connection_state: ConnectionState {
                status: ConnectionStatus::Connected,
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["Membership"], "APPROVED");
        assert_eq!(json["ConnectionState"]["Status"], "CONNECTED");
        assert_eq!(json["Connection"], "DISCONNECTED");
        let back: NodeState = serde_json::from_value(json).unwrap();
        assert_eq!(back.membership, Membership::Approved);
        assert_eq!(Membership::parse("rejected"), Some(Membership::Rejected));
        assert_eq!(
            ConnectionStatus::parse(" Connected "),
            Some(ConnectionStatus::Connected)
        );
        assert_eq!(Membership::parse("maybe"), None);
        assert!(serde_json::from_str::<Membership>("\"MAYBE\"").is_err());
        // As older records hold them.
        assert_eq!(
            serde_json::from_str::<ConnectionStatus>("\"\"").unwrap(),
            ConnectionStatus::Disconnected
        );
    }
}
