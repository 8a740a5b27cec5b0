//! Raft's messages between members: JSON over HTTP on each member's cluster listener
//! (`Orchestrator.Cluster.Host`/`Port`). A request carries the cluster's token (the nodes'
//! join token, `Orchestrator.Auth.Token`) when one is set; a member refuses one without it.

use crate::{Member, NodeId, TypeConfig};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The largest RPC body a member accepts.
const MAX_RPC_BYTES: usize = 1 << 30;

/// The header that carries the cluster token.
const TOKEN_HEADER: &str = "x-bacalhau-cluster-token";

/// Opens a client per member.
#[derive(Clone)]
pub struct Network {
    pub(crate) client: reqwest::Client,
    pub(crate) token: String,
}

/// The way to one member.
pub struct Connection {
    client: reqwest::Client,
    token: String,
    target: NodeId,
    address: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Connection {
        Connection {
            client: self.client.clone(),
            token: self.token.clone(),
            target,
            address: node.raft.clone(),
        }
    }
}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        route: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Member, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("http://{}/raft/{route}", self.address);
        let response = self
            .client
            .post(&url)
            .header(TOKEN_HEADER, &self.token)
            .timeout(option.hard_ttl())
            .json(request)
            .send()
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(format!("{url}: {status}: {text}")),
            )));
        }
        let answer: Result<Resp, RaftError<NodeId, E>> = response
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.call("vote", &rpc, &option).await
    }
}

/// The routes of the cluster listener.
pub fn routes(cluster: crate::Cluster) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/read-index", post(read_index))
        .route("/raft/info", get(info))
        // An append carries up to `max_payload_entries` groups of writes, and a group may
        // hold jobs with inline inputs (the API takes 10 MiB per request): well past axum's
        // default 2 MiB.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RPC_BYTES))
        .with_state(Arc::new(cluster))
}

type Shared = State<Arc<crate::Cluster>>;

fn authorized(cluster: &crate::Cluster, headers: &HeaderMap) -> Result<(), StatusCode> {
    use subtle::ConstantTimeEq as _;
    let given = headers
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(given.ct_eq(cluster.inner.token.as_bytes())) {
        Ok(())
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

async fn append(
    State(cluster): Shared,
    headers: HeaderMap,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Result<Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>, StatusCode> {
    authorized(&cluster, &headers)?;
    Ok(Json(cluster.inner.raft.append_entries(rpc).await))
}

async fn vote(
    State(cluster): Shared,
    headers: HeaderMap,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Result<Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>>, StatusCode> {
    authorized(&cluster, &headers)?;
    Ok(Json(cluster.inner.raft.vote(rpc).await))
}

async fn snapshot(
    State(cluster): Shared,
    headers: HeaderMap,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Result<
    Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>>,
    StatusCode,
> {
    authorized(&cluster, &headers)?;
    Ok(Json(cluster.inner.raft.install_snapshot(rpc).await))
}

/// The leader's half of a follower's linearizable read: confirms it still leads and answers
/// the index the follower must have applied before it reads.
async fn read_index(
    State(cluster): Shared,
    headers: HeaderMap,
) -> Result<Json<Option<u64>>, (StatusCode, String)> {
    authorized(&cluster, &headers).map_err(|s| (s, String::new()))?;
    let read = cluster
        .inner
        .raft
        .ensure_linearizable()
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(read.map(|id| id.index)))
}

/// Who this member is: how a member that bootstraps the cluster learns its peers.
async fn info(State(cluster): Shared) -> Json<crate::Info> {
    Json(cluster.own_info().await)
}
