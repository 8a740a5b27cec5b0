//! A typed client of the v1 API, used by the CLI and the tests.

use crate::apimodels::*;
use bacalhau_models::{Execution, Job, JobHistory, NodeInfo, SpecConfig};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What can go wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot reach the Bacalhau API at {url}: {reason}")]
    Unreachable {
        /// The server's base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{message}{}", hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// What the user can do, when the server says.
        hint: Option<String>,
    },
    /// The server's answer could not be read.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// The request's URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one Bacalhau API server.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    /// Other servers of the same cluster (several orchestrators), tried in turn when a
    /// request cannot connect to the one before.
    alternatives: Vec<reqwest::Url>,
    http: reqwest::Client,
    /// The `Authorization` header value, also sent on WebSocket upgrades.
    authorization: Option<reqwest::header::HeaderValue>,
    /// TLS for WebSocket upgrades to an `https://` server.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// How a client proves who it is: upstream's `BACALHAU_API_KEY`, or
/// `BACALHAU_API_USERNAME`/`BACALHAU_API_PASSWORD`.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Sent as `Authorization: Bearer <key>`.
    ApiKey(String),
    /// Sent as `Authorization: Basic ...`.
    Basic {
        /// The username.
        username: String,
        /// The password.
        password: String,
    },
}

/// How a client authenticates and which servers it trusts.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Credentials sent with every request; none for an open API.
    pub credentials: Option<Credentials>,
    /// A PEM CA certificate to trust besides the web's roots, e.g. a self-signed server's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any server certificate (throwaway test servers only).
    pub insecure: bool,
}

/// Query options for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct ListJobsOptions {
    /// Namespace; empty for the server's default, `*` for all.
    pub namespace: String,
    /// Label selector, e.g. `env=prod,tier in (a,b)`.
    pub labels: String,
    /// Page size.
    pub limit: usize,
    /// Newest first.
    pub reverse: bool,
    /// Continue from a previous page.
    pub next_token: String,
    /// Sort field (`created_at`); empty for the server's order.
    pub order_by: String,
    /// Only jobs in these states (ours); empty for every state.
    pub states: Vec<bacalhau_models::JobStateType>,
}

/// Upstream's query parameters for list routes and versioned job reads; empty fields are not
/// sent. `filters` carries route-specific ones (`labels`, `filter-approval`, `event_type`...).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub namespace: String,
    pub limit: usize,
    pub next_token: String,
    pub reverse: bool,
    pub order_by: String,
    /// One version of the job (0: not asked).
    pub job_version: u64,
    /// Every version of the job.
    pub all_job_versions: bool,
    pub filters: Vec<(String, String)>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(String, String)> {
        let mut query: Vec<(String, String)> = Vec::new();
        let mut push = |key: &str, value: String| query.push((key.to_string(), value));
        if !self.namespace.is_empty() {
            push("namespace", self.namespace.clone());
        }
        if self.limit > 0 {
            push("limit", self.limit.to_string());
        }
        if !self.next_token.is_empty() {
            push("next_token", self.next_token.clone());
        }
        if self.reverse {
            push("reverse", "true".into());
        }
        if !self.order_by.is_empty() {
            push("order_by", self.order_by.clone());
        }
        if self.job_version > 0 {
            push("job_version", self.job_version.to_string());
        }
        if self.all_job_versions {
            push("all_job_versions", "true".into());
        }
        query.extend(self.filters.iter().cloned());
        query
    }
}

impl ApiClient {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:1234`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_options(base_url, &ClientOptions::default())
    }

    /// A client of the server at `base_url` with credentials and TLS trust settings.
    pub fn with_options(base_url: &str, options: &ClientOptions) -> Result<Self, ClientError> {
        let setup = |reason: String| ClientError::Unreachable {
            url: base_url.to_string(),
            reason,
        };
        let authorization = options
            .credentials
            .as_ref()
            .map(|credentials| {
                let value = match credentials {
                    Credentials::ApiKey(key) => format!("Bearer {key}"),
                    Credentials::Basic { username, password } => {
                        use base64::Engine as _;
                        let pair = format!("{username}:{password}");
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(pair)
                        )
                    }
                };
                let mut value = reqwest::header::HeaderValue::from_str(&value)
                    .map_err(|_| setup("credentials hold characters a header cannot".into()))?;
                value.set_sensitive(true);
                Ok::<_, ClientError>(value)
            })
            .transpose()?;
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        if let Some(value) = &authorization {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value.clone());
            builder = builder.default_headers(headers);
        }
        let tls = if base_url.starts_with("https://") {
            let config = crate::tls::client_config(options.ca_file.as_deref(), options.insecure)
                .map_err(|e| setup(e.to_string()))?;
            builder = builder.use_preconfigured_tls(rustls::ClientConfig::clone(&config));
            Some(config)
        } else {
            None
        };
        let http = builder.build().map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            alternatives: Vec::new(),
            http,
            authorization,
            tls,
        })
    }

    /// The same client, trying `others` (base URLs of the other orchestrators of a cluster) in
    /// turn when a request cannot connect to the server before. A request is sent again only
    /// when it never reached a server, so nothing is submitted twice.
    pub fn with_alternatives(mut self, others: &[String]) -> Result<Self, ClientError> {
        self.alternatives = others
            .iter()
            .map(|other| {
                reqwest::Url::parse(other.trim_end_matches('/')).map_err(|e| {
                    ClientError::Unreachable {
                        url: other.clone(),
                        reason: format!("not a URL: {e}"),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends `request`, to the alternatives in turn while it cannot connect.
    async fn execute(&self, request: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let unreachable = |url: &str, e: &reqwest::Error| ClientError::Unreachable {
            url: url.to_string(),
            reason: root_cause(e),
        };
        let mut request = request.build().map_err(|e| unreachable(&self.base, &e))?;
        let mut alternatives = self.alternatives.iter();
        loop {
            // A copy to send elsewhere, only while somewhere else is left.
            let again = if alternatives.len() > 0 {
                request.try_clone()
            } else {
                None
            };
            let url = request.url().to_string();
            match self.http.execute(request).await {
                Ok(response) => return Ok(response),
                Err(e) if e.is_connect() => {
                    let (Some(mut next), Some(other)) = (again, alternatives.next()) else {
                        return Err(unreachable(&url, &e));
                    };
                    let moved = next.url_mut();
                    // Same path and query, another server.
                    let _ = moved.set_scheme(other.scheme());
                    let _ = moved.set_host(other.host_str());
                    let _ = moved.set_port(other.port_or_known_default());
                    request = next;
                }
                Err(e) => return Err(unreachable(&url, &e)),
            }
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let (url, bytes) = self.send_for_bytes(request).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// Sends `request` and reads a successful answer's body; an error status becomes the
    /// API's error.
    async fn send_for_bytes(
        &self,
        request: RequestBuilder,
    ) -> Result<(String, Vec<u8>), ClientError> {
        let response = self.execute(request).await?;
        let url = response.url().to_string();
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ClientError::Decode {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if !status.is_success() {
            let body: ApiErrorBody =
                serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiErrorBody {
                    message: String::from_utf8_lossy(&bytes).trim().to_string(),
                    ..Default::default()
                });
            let message = if body.message.is_empty() {
                format!("server answered {status}")
            } else {
                body.message
            };
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
                hint: Some(body.hint).filter(|h| !h.is_empty()),
            });
        }
        Ok((url, bytes.to_vec()))
    }

    /// Submits a job (or a new version of the job with the same name).
    pub async fn put_job(&self, job: &Job, force: bool) -> Result<PutJobResponse, ClientError> {
        let body = PutJobRequest { job, force };
        self.send(
            self.request(Method::PUT, "/api/v1/orchestrator/jobs")
                .json(&body),
        )
        .await
    }

    /// Diffs a spec against the stored job of the same name.
    pub async fn diff_job(&self, job: &Job) -> Result<DiffJobResponse, ClientError> {
        let body = PutJobRequest { job, force: false };
        self.send(
            self.request(Method::PUT, "/api/v1/orchestrator/jobs/diff")
                .json(&body),
        )
        .await
    }

    /// A job, optionally with its history and executions (`include`).
    pub async fn get_job(&self, id: &str, include: &str) -> Result<GetJobResponse, ClientError> {
        let mut request = self.request(Method::GET, &job_path(id, ""));
        if !include.is_empty() {
            request = request.query(&[("include", include)]);
        }
        self.send(request).await
    }

    /// The job (with the parts in `include`, as [`ApiClient::get_job`]) once it has ended or,
    /// with `after`, has a history event numbered above it, or after `timeout_secs` (1 to 60)
    /// seconds. Ours: an upstream orchestrator answers 404.
    pub async fn wait_job(
        &self,
        id: &str,
        include: &str,
        after: Option<u64>,
        timeout_secs: u64,
    ) -> Result<GetJobResponse, ClientError> {
        let mut pairs = vec![("timeout", timeout_secs.to_string())];
        if let Some(after) = after {
            pairs.push(("after", after.to_string()));
        }
        if !include.is_empty() {
            pairs.push(("include", include.to_string()));
        }
        self.send(
            self.request(Method::GET, &job_path(id, "/wait"))
                .query(&pairs),
        )
        .await
    }

    /// A page of jobs.
    pub async fn list_jobs(
        &self,
        options: &ListJobsOptions,
    ) -> Result<ListResponse<Job>, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if !options.namespace.is_empty() {
            query.push(("namespace", options.namespace.clone()));
        }
        if !options.labels.is_empty() {
            query.push(("labels", options.labels.clone()));
        }
        if options.limit > 0 {
            query.push(("limit", options.limit.to_string()));
        }
        if options.reverse {
            query.push(("reverse", "true".into()));
        }
        if !options.next_token.is_empty() {
            query.push(("next_token", options.next_token.clone()));
        }
        if !options.order_by.is_empty() {
            query.push(("order_by", options.order_by.clone()));
        }
        if !options.states.is_empty() {
            let states: Vec<&str> = options.states.iter().map(|s| s.as_str()).collect();
            query.push(("state", states.join(",")));
        }
        self.send(
            self.request(Method::GET, "/api/v1/orchestrator/jobs")
                .query(&query),
        )
        .await
    }

    /// Stops a job.
    pub async fn stop_job(&self, id: &str, reason: &str) -> Result<StopJobResponse, ClientError> {
        self.send(
            self.request(Method::DELETE, &job_path(id, ""))
                .query(&[("reason", reason)]),
        )
        .await
    }

    /// Reruns a job (version 0: the latest).
    pub async fn rerun_job(
        &self,
        id: &str,
        version: u64,
        reason: &str,
    ) -> Result<RerunJobResponse, ClientError> {
        let body = serde_json::json!({"JobVersion": version, "Reason": reason});
        self.send(
            self.request(Method::PUT, &job_path(id, "/rerun"))
                .json(&body),
        )
        .await
    }

    /// A job's executions.
    pub async fn job_executions(&self, id: &str) -> Result<ListResponse<Execution>, ClientError> {
        self.job_executions_with(id, &ListQuery::default()).await
    }

    /// A page of a job's executions.
    pub async fn job_executions_with(
        &self,
        id: &str,
        query: &ListQuery,
    ) -> Result<ListResponse<Execution>, ClientError> {
        self.send(
            self.request(Method::GET, &job_path(id, "/executions"))
                .query(&query.pairs()),
        )
        .await
    }

    /// A page of a job's history (`filters`: `event_type`, `execution_id`, `since`).
    pub async fn job_history_with(
        &self,
        id: &str,
        query: &ListQuery,
    ) -> Result<ListResponse<JobHistory>, ClientError> {
        self.send(
            self.request(Method::GET, &job_path(id, "/history"))
                .query(&query.pairs()),
        )
        .await
    }

    /// A page of a job's versions.
    pub async fn job_versions_with(
        &self,
        id: &str,
        query: &ListQuery,
    ) -> Result<ListResponse<Job>, ClientError> {
        self.send(
            self.request(Method::GET, &job_path(id, "/versions"))
                .query(&query.pairs()),
        )
        .await
    }

    /// A job at one version (0: the latest), with its history and executions (`include`).
    pub async fn get_job_version(
        &self,
        id: &str,
        include: &str,
        query: &ListQuery,
    ) -> Result<GetJobResponse, ClientError> {
        let mut pairs = query.pairs();
        if !include.is_empty() {
            pairs.push(("include".into(), include.into()));
        }
        self.send(self.request(Method::GET, &job_path(id, "")).query(&pairs))
            .await
    }

    /// A page of nodes (`filters`: `labels`, `filter-approval`, `filter-status`).
    pub async fn list_nodes_with(
        &self,
        query: &ListQuery,
    ) -> Result<ListNodesResponse, ClientError> {
        self.send(
            self.request(Method::GET, "/api/v1/orchestrator/nodes")
                .query(&query.pairs()),
        )
        .await
    }

    /// The server's authentication methods (`/api/v1/agent/authconfig`).
    pub async fn auth_config(&self) -> Result<serde_json::Value, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/agent/authconfig"))
            .await
    }

    /// A job's history, filtered by `event_type` (`all`, `job`, `execution`) and execution.
    pub async fn job_history(
        &self,
        id: &str,
        event_type: &str,
        execution_id: &str,
        next_token: &str,
    ) -> Result<ListResponse<JobHistory>, ClientError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if !event_type.is_empty() {
            query.push(("event_type", event_type));
        }
        if !execution_id.is_empty() {
            query.push(("execution_id", execution_id));
        }
        if !next_token.is_empty() {
            query.push(("next_token", next_token));
        }
        self.send(
            self.request(Method::GET, &job_path(id, "/history"))
                .query(&query),
        )
        .await
    }

    /// Every version of a job.
    pub async fn job_versions(&self, id: &str) -> Result<ListResponse<Job>, ClientError> {
        self.send(self.request(Method::GET, &job_path(id, "/versions")))
            .await
    }

    /// Where a job's results were published.
    pub async fn job_results(&self, id: &str) -> Result<ListResponse<SpecConfig>, ClientError> {
        self.send(self.request(Method::GET, &job_path(id, "/results")))
            .await
    }

    /// A job's lineage, `depth` steps up and down (ours).
    pub async fn job_lineage(
        &self,
        id: &str,
        namespace: &str,
        depth: u64,
    ) -> Result<bacalhau_models::lineage::LineageNode, ClientError> {
        let depth = depth.to_string();
        let mut query = vec![("depth", depth.as_str())];
        if !namespace.is_empty() {
            query.push(("namespace", namespace));
        }
        self.send(
            self.request(Method::GET, &job_path(id, "/lineage"))
                .query(&query),
        )
        .await
    }

    /// Streams an execution's log: `(1 stdout | 2 stderr, text)` pieces, or an error, until the
    /// stream ends. `tail` keeps the last N lines of what exists; `follow` waits for more;
    /// `job_version` (0: any) picks the execution among that version's.
    pub async fn logs(
        &self,
        id: &str,
        execution_id: &str,
        tail: Option<usize>,
        follow: bool,
        job_version: u64,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<(u8, String), String>>, ClientError> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        let mut url = format!("{}{}", self.base, job_path(id, "/logs"))
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        url.push_str(&format!("?follow={follow}"));
        if let Some(n) = tail {
            url.push_str(&format!("&tail={n}"));
        }
        if !execution_id.is_empty() {
            url.push_str(&format!("&execution_id={}", encode(execution_id)));
        }
        if job_version > 0 {
            url.push_str(&format!("&job_version={job_version}"));
        }
        let unreachable = |reason: String| ClientError::Unreachable {
            url: url.clone(),
            reason,
        };
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                url.as_str(),
            )
            .map_err(|e| unreachable(e.to_string()))?;
        if let Some(value) = &self.authorization {
            request
                .headers_mut()
                .insert(reqwest::header::AUTHORIZATION, value.clone());
        }
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
                .await
                .map_err(|e| match e {
                    tokio_tungstenite::tungstenite::Error::Http(response) => {
                        let body = response
                            .body()
                            .as_deref()
                            .and_then(|b| serde_json::from_slice::<ApiErrorBody>(b).ok());
                        ClientError::Api {
                            status: response.status().as_u16(),
                            message: body.as_ref().map(|b| b.message.clone()).unwrap_or_else(
                                || format!("server answered {}", response.status()),
                            ),
                            hint: body.map(|b| b.hint).filter(|h| !h.is_empty()),
                        }
                    }
                    other => unreachable(other.to_string()),
                })?;
        let (_, mut stream) = socket.split();
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let text = match message {
                    Ok(WsMessage::Text(text)) => text,
                    Ok(WsMessage::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                let item = match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                    Ok(value) => match value.get("error").and_then(|e| e.as_str()) {
                        Some(error) if !error.is_empty() => Err(error.to_string()),
                        _ => Ok((
                            value["value"]["Type"].as_u64().unwrap_or(1) as u8,
                            value["value"]["Line"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        )),
                    },
                    Err(e) => Err(format!("unreadable log frame: {e}")),
                };
                if sender.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(receiver)
    }

    /// A page of the audit log: up to `limit` events after sequence number `since`.
    pub async fn audit_log(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<ListResponse<JobHistory>, ClientError> {
        self.send(
            self.request(Method::GET, "/api/v1/orchestrator/audit")
                .query(&[("since", since.to_string()), ("limit", limit.to_string())]),
        )
        .await
    }

    /// Every node.
    pub async fn list_nodes(&self) -> Result<ListNodesResponse, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/orchestrator/nodes"))
            .await
    }

    /// One node.
    pub async fn get_node(&self, id: &str) -> Result<GetNodeResponse, ClientError> {
        self.send(self.request(
            Method::GET,
            &format!("/api/v1/orchestrator/nodes/{}", encode(id)),
        ))
        .await
    }

    /// Approves, rejects or deletes a node.
    pub async fn update_node(
        &self,
        id: &str,
        action: &str,
        message: &str,
    ) -> Result<PutNodeResponse, ClientError> {
        let body = PutNodeRequest {
            action: action.to_string(),
            message: message.to_string(),
            node_id: id.to_string(),
        };
        self.send(
            self.request(
                Method::PUT,
                &format!("/api/v1/orchestrator/nodes/{}", encode(id)),
            )
            .json(&body),
        )
        .await
    }

    /// Asks a compute node to fetch a CID from `peers` and pin it (ours: `data add`).
    pub async fn pin_data(&self, request: &PinDataRequest) -> Result<PinDataResponse, ClientError> {
        self.send(
            self.request(Method::POST, "/api/v1/orchestrator/data")
                .json(request),
        )
        .await
    }

    /// The orchestrator cluster as the member answering sees it (ours).
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/cluster/status"))
            .await
    }

    /// Adds the orchestrator whose cluster listener is at `address` to the cluster (ours).
    pub async fn add_cluster_member(&self, address: &str) -> Result<ClusterStatus, ClientError> {
        let body = AddClusterMemberRequest {
            address: address.to_string(),
        };
        self.send(
            self.request(Method::POST, "/api/v1/cluster/members")
                .json(&body),
        )
        .await
    }

    /// Removes a member (by name, ID or cluster address) from the cluster (ours).
    pub async fn remove_cluster_member(&self, member: &str) -> Result<ClusterStatus, ClientError> {
        self.send(self.request(
            Method::DELETE,
            &format!("/api/v1/cluster/members/{}", encode(member)),
        ))
        .await
    }

    /// Whether the agent is up.
    pub async fn alive(&self) -> Result<IsAliveResponse, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/agent/alive"))
            .await
    }

    /// The server's version.
    pub async fn version(&self) -> Result<GetVersionResponse, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/agent/version"))
            .await
    }

    /// The server's node identity.
    pub async fn node_info(&self) -> Result<NodeInfo, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/agent/node"))
            .await
    }

    /// The server's effective configuration.
    pub async fn config(&self) -> Result<serde_json::Value, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/agent/config"))
            .await
    }

    /// The server's debug information.
    pub async fn debug(&self) -> Result<Vec<DebugInfo>, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/agent/debug"))
            .await
    }

    /// The server's figures in Prometheus' text format (`GET /metrics`; needs `read:agent`
    /// when the server has users).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let (url, bytes) = self
            .send_for_bytes(self.request(Method::GET, "/metrics"))
            .await?;
        String::from_utf8(bytes).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn job_path(id: &str, suffix: &str) -> String {
    format!("/api/v1/orchestrator/jobs/{}{suffix}", encode(id))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
