//! Request and response bodies of the v1 API, field for field as upstream's `apimodels`.

use bacalhau_models::node::BuildVersionInfo;
use bacalhau_models::{Execution, Job, JobHistory, NodeState, SpecConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `PUT /api/v1/orchestrator/jobs` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PutJobResponse {
    /// The job's ID.
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// The evaluation created.
    #[serde(rename = "EvaluationID")]
    pub evaluation_id: String,
    /// Things the user should know.
    #[serde(rename = "Warnings", default)]
    pub warnings: Vec<String>,
}

/// `PUT /api/v1/orchestrator/jobs` request (the client's side; the server reads it loosely).
#[derive(Debug, Clone, Serialize)]
pub struct PutJobRequest<'a> {
    /// The job spec.
    #[serde(rename = "Job")]
    pub job: &'a Job,
    /// Submit even when the spec did not change.
    #[serde(rename = "Force")]
    pub force: bool,
}

/// `PUT /api/v1/orchestrator/jobs/diff` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiffJobResponse {
    /// A unified diff of the stored spec against the new one.
    #[serde(rename = "Diff")]
    pub diff: String,
    /// Things the user should know.
    #[serde(rename = "Warnings", default)]
    pub warnings: Vec<String>,
}

/// A page of items and the token of the next page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListResponse<T> {
    /// The items.
    #[serde(rename = "Items", default = "Vec::new")]
    pub items: Vec<T>,
    /// The next page's token; empty on the last page.
    #[serde(rename = "NextToken", default)]
    pub next_token: String,
}

/// `GET /api/v1/orchestrator/jobs/{id}` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetJobResponse {
    /// The job.
    #[serde(rename = "Job")]
    pub job: Job,
    /// Its history, when `include=history`.
    #[serde(rename = "History", default, skip_serializing_if = "Option::is_none")]
    pub history: Option<ListResponse<JobHistory>>,
    /// Its executions, when `include=executions`.
    #[serde(
        rename = "Executions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub executions: Option<ListResponse<Execution>>,
}

/// `DELETE /api/v1/orchestrator/jobs/{id}` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StopJobResponse {
    /// The evaluation created; empty when the job was already stopped.
    #[serde(rename = "EvaluationID")]
    pub evaluation_id: String,
}

/// `PUT /api/v1/orchestrator/jobs/{id}/rerun` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RerunJobResponse {
    /// The job's ID.
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// The new version that runs.
    #[serde(rename = "JobVersion")]
    pub job_version: u64,
    /// The evaluation created.
    #[serde(rename = "EvaluationID")]
    pub evaluation_id: String,
    /// Things the user should know.
    #[serde(rename = "Warnings", default)]
    pub warnings: Vec<String>,
}

/// `GET /api/v1/orchestrator/jobs/{id}/results` response.
pub type ListJobResultsResponse = ListResponse<SpecConfig>;

/// `GET /api/v1/orchestrator/nodes` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListNodesResponse {
    /// The nodes.
    #[serde(rename = "Nodes", default)]
    pub nodes: Vec<NodeState>,
    /// The next page's token; empty on the last page.
    #[serde(rename = "NextToken", default)]
    pub next_token: String,
}

/// `GET /api/v1/orchestrator/nodes/{id}` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetNodeResponse {
    /// The node.
    #[serde(rename = "Node")]
    pub node: NodeState,
}

/// `PUT /api/v1/orchestrator/nodes/{id}` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PutNodeRequest {
    /// `approve`, `reject` or `delete`.
    #[serde(rename = "Action", default)]
    pub action: String,
    /// Why.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// The node.
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
}

/// `PUT /api/v1/orchestrator/nodes/{id}` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PutNodeResponse {
    /// Whether the action took effect.
    #[serde(rename = "Success")]
    pub success: bool,
    /// Why not.
    #[serde(rename = "Error", default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `GET /api/v1/agent/alive` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IsAliveResponse {
    /// `OK` when the agent is up.
    #[serde(rename = "Status")]
    pub status: String,
}

/// `GET /api/v1/agent/version` response: the build version, flat.
pub type GetVersionResponse = BuildVersionInfo;

/// `GET /api/v1/agent/authconfig` response: the node's single sign-on (OAuth2) settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetAgentNodeAuthConfigResponse {
    /// The version of this document's format (upstream's is `1.0.0`).
    #[serde(rename = "Version")]
    pub version: String,
    /// The OAuth2 provider; empty when single sign-on is not offered.
    #[serde(rename = "Config", default)]
    pub config: Oauth2Config,
}

/// An OAuth2 provider for device-code sign-on, as upstream's `types.Oauth2Config`; every field
/// is left out when empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Oauth2Config {
    /// The provider's ID; empty: no single sign-on.
    #[serde(
        rename = "ProviderID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub provider_id: String,
    /// The provider's display name.
    #[serde(
        rename = "ProviderName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub provider_name: String,
    /// Where tokens are obtained.
    #[serde(
        rename = "TokenEndpoint",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub token_endpoint: String,
    /// Where the provider's signing keys are published.
    #[serde(rename = "JWKSUri", default, skip_serializing_if = "String::is_empty")]
    pub jwks_uri: String,
    /// The tokens' issuer.
    #[serde(rename = "Issuer", default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// The client ID of the device flow.
    #[serde(
        rename = "DeviceClientID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub device_client_id: String,
    /// The tokens' audience.
    #[serde(rename = "Audience", default, skip_serializing_if = "String::is_empty")]
    pub audience: String,
    /// The scopes asked for.
    #[serde(rename = "Scopes", default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Where the device flow starts.
    #[serde(
        rename = "DeviceAuthorizationEndpoint",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub device_authorization_endpoint: String,
    /// Seconds between polls of the device flow.
    #[serde(rename = "PollingInterval", default, skip_serializing_if = "is_zero")]
    pub polling_interval: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One component's debug report, `GET /api/v1/agent/debug`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DebugInfo {
    /// The component.
    #[serde(rename = "component")]
    pub component: String,
    /// What it reports.
    #[serde(rename = "info")]
    pub info: serde_json::Value,
}

/// Upstream's error body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The HTTP status.
    #[serde(rename = "Status", default)]
    pub status: u16,
    /// What went wrong.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// The request's ID.
    #[serde(rename = "RequestID", default)]
    pub request_id: String,
    /// A machine-readable code.
    #[serde(rename = "Code", default)]
    pub code: String,
    /// The component that failed.
    #[serde(rename = "Component", default)]
    pub component: String,
    /// What the user can do about it.
    #[serde(rename = "Hint", default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
    /// More details.
    #[serde(
        rename = "Details",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
}

/// `POST /api/v1/orchestrator/data` request (ours): pin a CID on a compute node, its blocks
/// fetched from `Peers` (the client's own IPFS node, for `bacalhau data add`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PinDataRequest {
    /// The root CID.
    #[serde(rename = "CID")]
    pub cid: String,
    /// The compute node (full ID or unique prefix).
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// IPFS nodes (multiaddrs with `/p2p/ID`) holding the blocks.
    #[serde(rename = "Peers", default)]
    pub peers: Vec<String>,
    /// How long the node may take to bring the blocks, in seconds (default 600).
    #[serde(rename = "TimeoutSeconds", default)]
    pub timeout_seconds: u64,
}

/// `POST /api/v1/orchestrator/data` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PinDataResponse {
    /// The root CID, as pinned.
    #[serde(rename = "CID")]
    pub cid: String,
    /// The node that holds it.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Bytes the node fetched (0 when it held every block already).
    #[serde(rename = "BytesFetched")]
    pub bytes_fetched: u64,
}

/// One member of an orchestrator cluster, as `GET /api/v1/cluster/status` shows it (ours).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterMember {
    /// Its Raft ID, in hex.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its node name.
    pub name: String,
    /// Its cluster address (`Orchestrator.Cluster.Advertise`).
    pub address: String,
    /// Its API.
    #[serde(rename = "APIAddress")]
    pub api_address: String,
    /// `Leader`, `Follower` or `Learner` (catching up, not voting yet).
    pub role: String,
    /// The last log index it holds (known on the leader and for the member answering).
    pub matched_index: Option<u64>,
    /// How many entries it is behind the leader's log (known on the leader).
    pub lag: Option<u64>,
}

/// `GET /api/v1/cluster/status` response (ours): the orchestrator cluster as the member
/// answering sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterStatus {
    /// The cluster's name.
    pub name: String,
    /// The member answering.
    pub this_member: String,
    /// The leader's name, if one is known.
    pub leader: Option<String>,
    /// The current Raft term.
    pub term: u64,
    /// The last log index the member answering holds.
    pub last_log_index: Option<u64>,
    /// The last index it applied to its store.
    pub applied_index: Option<u64>,
    /// The last index its newest snapshot covers.
    #[serde(default)]
    pub snapshot_index: Option<u64>,
    /// The last index it has dropped from its log (covered by a snapshot): a member behind
    /// this must be sent the snapshot.
    #[serde(default)]
    pub purged_index: Option<u64>,
    /// Every member.
    pub members: Vec<ClusterMember>,
}

/// `POST /api/v1/cluster/members` request (ours).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddClusterMemberRequest {
    /// The new member's cluster address, `host:port`.
    #[serde(rename = "Address")]
    pub address: String,
}
