//! The `docker` engine: one container per execution on the local Docker engine.
//!
//! Params as upstream's: `Image`, `Entrypoint`, `Parameters`, `EnvironmentVariables`,
//! `WorkingDirectory`. Containers get no network unless the task asks, CPU and memory limits
//! from its resources, `no-new-privileges`, and labels naming the node and the execution, so a
//! restarted node can remove what it left behind (a finished container is removed after its
//! run answers, off the job's path). Output goes to the execution's log
//! (`compute::logs`); the first 2 KiB of each stream go back in the run output, as upstream's.

use crate::http_proxy::HttpProxy;
use crate::registry::RegistryCredentials;
use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::logs::{LogWriter, Stream};
use bacalhau_compute::metrics::PullLabel;
use bacalhau_compute::{ExecutionContext, Executor, ExecutorError};
use bacalhau_models::task::NetworkType;
use bacalhau_models::{Execution, RunCommandResult, Task};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use prometheus_client::metrics::{counter::Counter, family::Family};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// How much of stdout and of stderr the run output keeps (the files keep everything).
pub const MAX_RETURNED_OUTPUT: usize = 2048;

const LABEL_NODE: &str = "bacalhau.org/node-id";
const LABEL_EXECUTION: &str = "bacalhau.org/execution-id";
const LABEL_JOB: &str = "bacalhau.org/job-id";

/// Runs executions as Docker containers.
pub struct DockerExecutor {
    docker: Docker,
    node_id: String,
    /// The internal network and proxy of `Network: HTTP` jobs, set up on first use.
    http: tokio::sync::OnceCell<Result<Arc<HttpNetwork>, String>>,
    /// Where image pulls are counted, by result.
    pulls: Family<PullLabel, Counter>,
}

/// The Docker network that `Network: HTTP` containers join (internal: no route out, no
/// traffic between containers) and the proxy on its gateway that is their only way out.
struct HttpNetwork {
    name: String,
    proxy: Arc<HttpProxy>,
}

/// The network HTTP-only jobs share on this host, and its bridge interface.
const HTTP_NETWORK: &str = "bacalhau-http";
const HTTP_BRIDGE: &str = "bacalhau-http0";

impl DockerExecutor {
    /// Connects to the local Docker engine and agrees on an API version with it; `None` (with
    /// the reason logged) when no engine answers.
    pub async fn connect(node_id: &str) -> Option<Self> {
        let docker = match Docker::connect_with_local_defaults() {
            Ok(docker) => docker,
            Err(e) => {
                tracing::warn!(error = %e, "no Docker engine: the docker engine is disabled");
                return None;
            }
        };
        match docker.negotiate_version().await {
            Ok(docker) => Some(Self {
                docker,
                node_id: node_id.to_string(),
                http: tokio::sync::OnceCell::new(),
                pulls: Family::default(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "the Docker engine does not answer: the docker engine is disabled");
                None
            }
        }
    }

    /// Counts image pulls in `pulls` (a compute node's figures) rather than in a family of
    /// its own.
    pub fn counting_pulls(mut self, pulls: Family<PullLabel, Counter>) -> Self {
        self.pulls = pulls;
        self
    }

    /// The HTTP-only network and its proxy, made on first use.
    async fn http_network(&self) -> Result<Arc<HttpNetwork>, ExecutorError> {
        self.http
            .get_or_init(|| async {
                self.setup_http_network()
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("cannot set up HTTP networking: {e}"))
            })
            .await
            .clone()
            .map_err(ExecutorError::Failed)
    }

    async fn setup_http_network(&self) -> Result<HttpNetwork, String> {
        let existing = self
            .docker
            .inspect_network(
                HTTP_NETWORK,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        let network = match existing {
            Ok(network) => network,
            Err(_) => {
                let request = bollard::models::NetworkCreateRequest {
                    name: HTTP_NETWORK.into(),
                    driver: Some("bridge".into()),
                    internal: Some(true),
                    options: Some(HashMap::from([
                        (
                            "com.docker.network.bridge.enable_icc".into(),
                            "false".into(),
                        ),
                        ("com.docker.network.bridge.name".into(), HTTP_BRIDGE.into()),
                    ])),
                    labels: Some(HashMap::from([(LABEL_NODE.into(), "shared".into())])),
                    ..Default::default()
                };
                // Another node on this host may create it at the same moment.
                if let Err(e) = self.docker.create_network(request).await {
                    tracing::debug!(error = %e, "creating the HTTP network");
                }
                self.docker
                    .inspect_network(
                        HTTP_NETWORK,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let gateway: std::net::IpAddr = network
            .ipam
            .as_ref()
            .and_then(|ipam| ipam.config.as_ref())
            .and_then(|configs| configs.iter().find_map(|c| c.gateway.clone()))
            .ok_or("the network has no gateway address")?
            .parse()
            .map_err(|e| format!("the network's gateway: {e}"))?;
        let bridge = network
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
            .or_else(|| {
                network
                    .id
                    .as_ref()
                    .map(|id| format!("br-{}", id.get(..12).unwrap_or(id)))
            })
            .unwrap_or_else(|| HTTP_BRIDGE.into());
        let proxy = HttpProxy::start(gateway)
            .await
            .map_err(|e| format!("cannot listen on {gateway}: {e}"))?;
        guard_host(&bridge, proxy.addr().port()).await;
        tracing::info!(network = HTTP_NETWORK, proxy = %proxy.addr(), "HTTP networking ready");
        Ok(HttpNetwork {
            name: HTTP_NETWORK.into(),
            proxy,
        })
    }

    /// Removes containers this node left behind (a crash or kill -9 mid-run).
    pub async fn reap_orphans(&self) {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_NODE}={}", self.node_id)],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let Ok(containers) = self.docker.list_containers(Some(options)).await else {
            return;
        };
        for container in containers {
            if let Some(id) = container.id {
                tracing::info!(container = %id, "removing a container left by an earlier run");
                let _ = remove(&self.docker, &id).await;
            }
        }
    }

    /// Makes sure the image is here, pulling it if a registry answers; answers its ID.
    async fn ensure_image(&self, image: &str) -> Result<Option<String>, ExecutorError> {
        if let Ok(found) = self.docker.inspect_image(image).await {
            return Ok(found.id);
        }
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        // Read at each pull, so a `docker login` on the node applies without a restart.
        let credentials = RegistryCredentials::from_environment();
        let registry = crate::registry::registry_of(image);
        let mut pull = self
            .docker
            .create_image(Some(options), None, credentials.for_image(image));
        while let Some(progress) = pull.next().await {
            if let Err(e) = progress {
                self.count_pull("failed");
                let hint = if credentials.has(image) {
                    format!(
                        "the node's credentials for {registry} were refused or the image is not there"
                    )
                } else {
                    format!(
                        "the node has no credentials for {registry}: `docker login {registry}` on the node (or DOCKER_CONFIG; DOCKER_USERNAME/DOCKER_PASSWORD for Docker Hub)"
                    )
                };
                return Err(ExecutorError::InvalidSpec(format!(
                    "image not available: {image} is not on this node and pulling it failed ({hint}): {e}"
                )));
            }
        }
        let pulled = self
            .docker
            .inspect_image(image)
            .await
            .map(|found| found.id)
            .map_err(|e| ExecutorError::InvalidSpec(format!("image not found: {image}: {e}")));
        self.count_pull(if pulled.is_ok() { "ok" } else { "failed" });
        pulled
    }

    fn count_pull(&self, result: &str) {
        self.pulls
            .get_or_create(&PullLabel {
                result: result.to_string(),
            })
            .inc();
    }

    async fn run_container(
        &self,
        context: ExecutionContext,
    ) -> Result<RunCommandResult, ExecutorError> {
        let ExecutionContext {
            execution,
            mut cancel,
            work_dir,
            inputs,
            results,
            resolved_image,
        } = context;
        let task = execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .cloned()
            .ok_or_else(|| ExecutorError::InvalidSpec("the execution carries no task".into()))?;
        let params = DockerParams::read(&task)?;
        if let Some(id) = self.ensure_image(&params.image).await? {
            let _ = resolved_image.set(bacalhau_models::content::Identity::image(&id));
        }
        let mut body = container_body(&execution, &task, &params, &self.node_id)?;
        // Lives until the container is gone: the proxy lets its token through until then.
        let mut _grant = None;
        if task.network.r#type == NetworkType::Http {
            let network = self.http_network().await?;
            let grant = network.proxy.grant(&task.network.domains);
            let url = grant.url();
            let env = body.env.get_or_insert_with(Vec::new);
            for name in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"] {
                env.push(format!("{name}={url}"));
            }
            env.push("no_proxy=".into());
            env.push("NO_PROXY=".into());
            if let Some(host) = body.host_config.as_mut() {
                host.network_mode = Some(network.name.clone());
            }
            body.network_disabled = Some(false);
            _grant = Some(grant);
        }
        if let Some(host) = body.host_config.as_mut() {
            let inputs = inputs.iter().map(|i| {
                let mode = if i.read_write { "rw" } else { "ro" };
                format!("{}:{}:{mode}", i.host_path.display(), i.target)
            });
            let results = results
                .iter()
                .map(|r| format!("{}:{}:rw", r.host_path.display(), r.target));
            host.binds = Some(inputs.chain(results).collect());
        }
        let name = format!("bacalhau-{}", execution.id);
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot create the container: {e}")))?;
        let id = created.id;
        let result = self.supervise(&id, &mut cancel, &work_dir, &task).await;
        // The run is over once the container has exited and its output is read: its end is
        // reported without waiting for the engine to delete the container (~5 ms of a 130 ms
        // run here). A node stopped before the removal is done reaps the container at its
        // next start (`reap_orphans`, by the node's label).
        let docker = self.docker.clone();
        tokio::spawn(async move {
            if let Err(e) = remove(&docker, &id).await {
                tracing::warn!(container = %id, error = %e, "cannot remove a finished container");
            }
        });
        result
    }

    async fn supervise(
        &self,
        id: &str,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
        work_dir: &Path,
        task: &Task,
    ) -> Result<RunCommandResult, ExecutorError> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot start the container: {e}")))?;
        let logs = self.docker.logs(
            id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let capture = tokio::spawn(capture_logs(logs, work_dir.to_path_buf()));
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        // The wait answers the exit code (bollard makes a non-zero one an error carrying it).
        let (cancelled, waited_code) = tokio::select! {
            waited = wait.next() => (false, match waited {
                Some(Ok(response)) if response.error.is_none() => Some(response.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, error }))
                    if error.is_empty() => Some(code),
                _ => None,
            }),
            _ = cancel.wait_for(|stop| *stop) => (true, None),
        };
        if cancelled {
            let _ = self
                .docker
                .kill_container(
                    id,
                    Some(KillContainerOptions {
                        signal: "KILL".into(),
                    }),
                )
                .await;
        }
        let (stdout, stdout_truncated, stderr, stderr_truncated) = capture
            .await
            .map_err(|e| ExecutorError::Failed(format!("log capture failed: {e}")))??;
        if cancelled {
            return Err(ExecutorError::Cancelled);
        }
        // Only a killed container (137: SIGKILL, which the kernel's OOM killer sends) or one
        // whose wait said nothing clear needs the inspect that tells an OOM kill apart; the
        // rest ends with the wait's code, one engine round trip fewer per job.
        if let Some(exit_code) = waited_code.filter(|code| *code != 137) {
            return Ok(RunCommandResult {
                stdout,
                stdout_truncated,
                stderr,
                stderr_truncated,
                exit_code,
                error_msg: String::new(),
            });
        }
        let inspected = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot inspect the container: {e}")))?;
        let state = inspected.state.unwrap_or_default();
        if state.oom_killed == Some(true) {
            return Err(ExecutorError::JobFault(format!(
                "memory limit exceeded: the container was killed for using more than the {} it asked for",
                if task.resources.memory.is_empty() {
                    "memory"
                } else {
                    task.resources.memory.as_str()
                }
            )));
        }
        Ok(RunCommandResult {
            stdout,
            stdout_truncated,
            stderr,
            stderr_truncated,
            exit_code: state.exit_code.unwrap_or(-1),
            error_msg: state.error.unwrap_or_default(),
        })
    }
}

/// Deletes a container, running or not, with its anonymous volumes.
async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
}

type Captured = (String, bool, String, bool);

/// Writes the container's output to the execution's log, keeping the start of each stream.
async fn capture_logs(
    mut logs: impl futures_util::Stream<
        Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
    > + Unpin,
    dir: std::path::PathBuf,
) -> Result<Captured, ExecutorError> {
    let io = |e: std::io::Error| ExecutorError::Failed(format!("cannot write the log: {e}"));
    let mut writer = LogWriter::create(&dir).await.map_err(io)?;
    let mut kept = OutputHead::default();
    while let Some(chunk) = logs.next().await {
        let Ok(chunk) = chunk else { break };
        let (stream, bytes) = match chunk {
            bollard::container::LogOutput::StdErr { message } => (Stream::Stderr, message),
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => (Stream::Stdout, message),
            bollard::container::LogOutput::StdIn { .. } => continue,
        };
        writer.write(stream, &bytes).await.map_err(io)?;
        kept.add(stream, &bytes);
    }
    writer.finish().await.map_err(io)?;
    Ok(kept.into_parts())
}

/// The first [`MAX_RETURNED_OUTPUT`] bytes of stdout and of stderr, for the run output.
#[derive(Default)]
pub struct OutputHead {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_total: usize,
    stderr_total: usize,
}

impl OutputHead {
    /// Notes a chunk of output.
    pub fn add(&mut self, stream: Stream, bytes: &[u8]) {
        let (kept, total) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.stdout_total),
            Stream::Stderr => (&mut self.stderr, &mut self.stderr_total),
        };
        let room = MAX_RETURNED_OUTPUT.saturating_sub(kept.len());
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        *total += bytes.len();
    }

    /// Stdout, whether it was cut, stderr, whether it was cut.
    pub fn into_parts(self) -> Captured {
        (
            String::from_utf8_lossy(&self.stdout).into_owned(),
            self.stdout_total > MAX_RETURNED_OUTPUT,
            String::from_utf8_lossy(&self.stderr).into_owned(),
            self.stderr_total > MAX_RETURNED_OUTPUT,
        )
    }
}

/// The `docker` engine's params.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerParams {
    /// The image, e.g. `busybox:1.37.0`.
    pub image: String,
    /// Replaces the image's entrypoint.
    pub entrypoint: Vec<String>,
    /// The command's arguments (the image's CMD when there is no entrypoint).
    pub parameters: Vec<String>,
    /// `NAME=value` pairs.
    pub environment: Vec<String>,
    /// The working directory inside the container.
    pub working_directory: String,
    /// The user (`name`, `uid` or `uid:gid`) to run as instead of the image's; our own
    /// extension of upstream's params.
    pub user: String,
}

/// Params that would widen what a container can reach on the host; refused so a spec cannot
/// mount host paths (inputs do that, under the node's allow-list) or escape its confinement.
const REFUSED_PARAMS: &[&str] = &[
    "Binds",
    "Mounts",
    "Volumes",
    "Privileged",
    "CapAdd",
    "Devices",
    "HostConfig",
    "SecurityOpt",
    "PidMode",
    "IpcMode",
    "UsernsMode",
];

/// The most processes a container may run (a fork bomb stops here).
pub const PIDS_LIMIT: i64 = 1024;

fn strings(task: &Task, key: &str) -> Result<Vec<String>, ExecutorError> {
    match task.engine.param(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Ok(s.clone()),
                other => Ok(other.to_string()),
            })
            .collect(),
        Some(other) => Err(ExecutorError::InvalidSpec(format!(
            "Engine.Params.{key} must be a list of strings, found {other}"
        ))),
    }
}

impl DockerParams {
    /// Reads the params of a task's `docker` engine.
    pub fn read(task: &Task) -> Result<Self, ExecutorError> {
        if let Some(refused) = REFUSED_PARAMS
            .iter()
            .find(|key| task.engine.param(key).is_some())
        {
            return Err(ExecutorError::InvalidSpec(format!(
                "Engine.Params.{refused} is not allowed: containers get host paths only through input sources the node allow-lists"
            )));
        }
        let image = task
            .engine
            .param_str("Image")
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| ExecutorError::InvalidSpec("Engine.Params.Image is required".into()))?
            .to_string();
        Ok(Self {
            image,
            entrypoint: strings(task, "Entrypoint")?,
            parameters: strings(task, "Parameters")?,
            environment: strings(task, "EnvironmentVariables")?,
            working_directory: task
                .engine
                .param_str("WorkingDirectory")
                .unwrap_or("")
                .to_string(),
            user: task.engine.param_str("User").unwrap_or("").to_string(),
        })
    }
}

/// Lets containers on the HTTP-only bridge reach the host only at the proxy's port (they
/// would otherwise reach every service listening on the host's addresses), and refuses their
/// attempts to go anywhere else. Best effort: a host without `iptables` gets a warning.
async fn guard_host(bridge: &str, port: u16) {
    let port = port.to_string();
    let rules: [(&str, Vec<&str>); 3] = [
        (
            "-I",
            vec![
                "INPUT", "-i", bridge, "-p", "tcp", "--dport", &port, "-j", "ACCEPT",
            ],
        ),
        ("-A", vec!["INPUT", "-i", bridge, "-j", "REJECT"]),
        // Docker drops what an internal network sends out silently, so a job's connection
        // would hang for minutes; a rejection fails it at once.
        ("-I", vec!["DOCKER-USER", "-i", bridge, "-j", "REJECT"]),
    ];
    for (add, rule) in rules {
        let present = tokio::process::Command::new("iptables")
            .arg("-C")
            .args(&rule)
            .output()
            .await;
        match present {
            Ok(out) if out.status.success() => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "no iptables: containers with HTTP networking can reach services on this host");
                return;
            }
        }
        let added = tokio::process::Command::new("iptables")
            .arg(add)
            .args(&rule)
            .output()
            .await;
        if !added.as_ref().is_ok_and(|o| o.status.success()) {
            tracing::warn!(rule = ?rule, "cannot add a firewall rule for HTTP networking");
        }
    }
}

/// The container's configuration for an execution.
fn container_body(
    execution: &Execution,
    task: &Task,
    params: &DockerParams,
    node_id: &str,
) -> Result<ContainerCreateBody, ExecutorError> {
    let resources = task
        .resources
        .to_resources()
        .map_err(|e| ExecutorError::InvalidSpec(e.to_string()))?;
    // Upstream's meanings since v1.7: `Default` is a bridge network (a node that rejects
    // networked jobs turns it into `None` before the run), `Full` is the host's network.
    let network_mode = match task.network.r#type {
        NetworkType::None => "none",
        NetworkType::Host | NetworkType::Full => "host",
        NetworkType::Default | NetworkType::Bridge => "bridge",
        // Joined to the HTTP-only network once its proxy is up (`run_container`).
        NetworkType::Http => {
            if task.network.domains.is_empty() {
                return Err(ExecutorError::InvalidSpec(
                    "Network.Domains is empty: an HTTP network needs the domains the job may reach"
                        .into(),
                ));
            }
            "none"
        }
    };
    let mut env = params.environment.clone();
    for (name, value) in &task.env {
        env.push(format!("{name}={value}"));
    }
    let job = execution.job.as_deref();
    env.extend([
        format!("BACALHAU_EXECUTION_ID={}", execution.id),
        format!("BACALHAU_JOB_ID={}", execution.job_id),
        format!(
            "BACALHAU_JOB_TYPE={}",
            job.map(|j| j.r#type.as_str()).unwrap_or("")
        ),
        format!("BACALHAU_PARTITION_INDEX={}", execution.partition().0),
        format!(
            "BACALHAU_PARTITION_COUNT={}",
            job.map_or(1, |j| j.count.max(1))
        ),
    ]);
    // Published ports (host ports chosen by the node): the job learns them from
    // BACALHAU_HOST_PORT_<Name> and, on a bridge, BACALHAU_PORT_<Name> (names as written).
    let mut exposed_ports = HashMap::new();
    let mut port_bindings = HashMap::new();
    for port in &task.network.ports {
        if port.r#static > 0 {
            env.push(format!(
                "BACALHAU_HOST_PORT_{}={}",
                port.name, port.r#static
            ));
        }
        if network_mode == "bridge" && port.target > 0 {
            env.push(format!("BACALHAU_PORT_{}={}", port.name, port.target));
            let key = format!("{}/tcp", port.target);
            exposed_ports.insert(key.clone(), HashMap::new());
            port_bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some(if port.host_network.is_empty() {
                        "0.0.0.0".to_string()
                    } else {
                        port.host_network.clone()
                    }),
                    host_port: Some(port.r#static.to_string()),
                }]),
            );
        }
    }
    let memory = i64::try_from(resources.memory).unwrap_or(i64::MAX);
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        // As upstream: a job on a bridge or the host's network reaches the host by this name.
        extra_hosts: matches!(network_mode, "bridge" | "host")
            .then(|| vec!["host.docker.internal:host-gateway".to_string()]),
        memory: (memory > 0).then_some(memory),
        // No swap beyond the memory limit, so the limit is the limit.
        memory_swap: (memory > 0).then_some(memory),
        nano_cpus: (resources.cpu > 0.0).then_some((resources.cpu * 1e9) as i64),
        network_mode: Some(network_mode.to_string()),
        privileged: Some(false),
        security_opt: Some(vec!["no-new-privileges".to_string()]),
        pids_limit: Some(PIDS_LIMIT),
        // Raw sockets and device nodes are of no use to a batch job and of use to an attacker.
        cap_drop: Some(vec!["NET_RAW".to_string(), "MKNOD".to_string()]),
        device_requests: (resources.gpu > 0).then(|| {
            vec![DeviceRequest {
                driver: Some("nvidia".into()),
                count: Some(i64::try_from(resources.gpu).unwrap_or(1)),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }]
        }),
        ..Default::default()
    };
    let labels = HashMap::from([
        (LABEL_NODE.to_string(), node_id.to_string()),
        (LABEL_EXECUTION.to_string(), execution.id.to_string()),
        (LABEL_JOB.to_string(), execution.job_id.to_string()),
    ]);
    Ok(ContainerCreateBody {
        image: Some(params.image.clone()),
        entrypoint: (!params.entrypoint.is_empty()).then(|| params.entrypoint.clone()),
        cmd: (!params.parameters.is_empty()).then(|| params.parameters.clone()),
        env: Some(env),
        working_dir: (!params.working_directory.is_empty())
            .then(|| params.working_directory.clone()),
        user: (!params.user.is_empty()).then(|| params.user.clone()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        network_disabled: Some(network_mode == "none"),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        host_config: Some(host_config),
        ..Default::default()
    })
}

impl Executor for DockerExecutor {
    fn engine(&self) -> &'static str {
        "docker"
    }

    fn run(
        &self,
        context: ExecutionContext,
    ) -> BoxFuture<'_, Result<RunCommandResult, ExecutorError>> {
        Box::pin(self.run_container(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::parse_job_spec;

    fn task(spec: &str) -> Task {
        parse_job_spec(spec).unwrap().tasks.remove(0)
    }

    #[test]
    fn params_read_upstreams_names_case_insensitively() {
        let t = task(
            "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {image: busybox, Entrypoint: [sh, -c], parameters: [echo hi], EnvironmentVariables: [A=1], WorkingDirectory: /tmp}}\n",
        );
        let params = DockerParams::read(&t).unwrap();
        assert_eq!(params.image, "busybox");
        assert_eq!(params.entrypoint, vec!["sh", "-c"]);
        assert_eq!(params.parameters, vec!["echo hi"]);
        assert_eq!(params.environment, vec!["A=1"]);
        assert_eq!(params.working_directory, "/tmp");
    }

    #[test]
    fn a_missing_image_is_a_spec_error() {
        let t = task("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker}\n");
        assert!(matches!(
            DockerParams::read(&t),
            Err(ExecutorError::InvalidSpec(_))
        ));
    }

    #[test]
    fn networks_as_upstream_and_limits() {
        let network_mode = |network: &str| {
            let t = task(&format!(
                "Type: batch\nTasks:\n - Name: main\n   Engine: {{Type: docker, Params: {{Image: busybox}}}}\n   Network: {{Type: {network}}}\n"
            ));
            let params = DockerParams::read(&t).unwrap();
            let body = container_body(&Execution::default(), &t, &params, "n1").unwrap();
            body.host_config.unwrap().network_mode.unwrap()
        };
        assert_eq!(network_mode("Default"), "bridge");
        assert_eq!(network_mode("None"), "none");
        assert_eq!(network_mode("Full"), "host");
        assert_eq!(network_mode("Host"), "host");
        assert_eq!(network_mode("Bridge"), "bridge");
        let t = task(
            "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox}}\n   Network: {Type: Bridge, Ports: [{Name: web, Static: 20001, Target: 80}]}\n",
        );
        let params = DockerParams::read(&t).unwrap();
        let body = container_body(&Execution::default(), &t, &params, "n1").unwrap();
        let env = body.env.clone().unwrap();
        assert!(
            env.contains(&"BACALHAU_HOST_PORT_web=20001".to_string()),
            "{env:?}"
        );
        assert!(env.contains(&"BACALHAU_PORT_web=80".to_string()), "{env:?}");
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let binding = bindings["80/tcp"].as_ref().unwrap();
        assert_eq!(binding[0].host_port.as_deref(), Some("20001"));
        assert!(body.exposed_ports.unwrap().contains_key("80/tcp"));
        let t = task(
            "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox}}\n   Resources: {CPU: 500m, Memory: 64mb}\n",
        );
        let params = DockerParams::read(&t).unwrap();
        let body = container_body(&Execution::default(), &t, &params, "n1").unwrap();
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert_eq!(host.memory, Some(64_000_000));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(
            body.labels.unwrap().get(LABEL_NODE).map(String::as_str),
            Some("n1")
        );
    }
}
