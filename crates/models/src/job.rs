//! The job: its wire shape, upstream's defaults (`normalize`) and submission checks (`validate`).

use crate::DEFAULT_NAMESPACE;
use crate::ids::JobId;
use crate::ids::short_id;
use crate::resources::ResourcesConfig;
use crate::selector::{LabelSelectorRequirement, validate_label_key, validate_label_value};
use crate::state::{JobStateType, State};
use crate::task::{
    ENGINE_TYPES, INPUT_SOURCE_TYPES, NetworkType, PUBLISHER_TYPES, SpecConfig, Task, TimeoutConfig,
};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The four job types of upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobType {
    /// Runs `Count` executions to completion.
    Batch,
    /// Runs once on every matching node, to completion.
    Ops,
    /// Runs on every matching node, nodes that join later included, forever.
    Daemon,
    /// Keeps `Count` executions running.
    Service,
}

impl JobType {
    /// Parses upstream's lowercase name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "batch" => Some(Self::Batch),
            "ops" => Some(Self::Ops),
            "daemon" => Some(Self::Daemon),
            "service" => Some(Self::Service),
            _ => None,
        }
    }

    /// The name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Ops => "ops",
            Self::Daemon => "daemon",
            Self::Service => "service",
        }
    }

    /// Daemon and ops jobs run on every matching node instead of `Count` nodes.
    pub fn targets_all_nodes(self) -> bool {
        matches!(self, Self::Ops | Self::Daemon)
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as stored and sent on the wire.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Job {
    /// The job's ID, `j-<uuid>`; assigned at submission.
    #[serde(rename = "ID", default)]
    pub id: JobId,
    /// A name unique within the namespace; submitting the same name again updates the job.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The namespace; `default` when omitted.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// `batch`, `ops`, `daemon` or `service`.
    #[serde(rename = "Type", default)]
    pub r#type: String,
    /// Scheduling priority; higher runs first.
    #[serde(rename = "Priority", default)]
    pub priority: i64,
    /// How many executions (partitions) a batch or service job runs.
    #[serde(rename = "Count", default)]
    pub count: i64,
    /// Requirements on the labels of the nodes that may run the job.
    #[serde(rename = "Constraints", default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<LabelSelectorRequirement>,
    /// Free-form metadata; keys starting `bacalhau.org/` are the system's.
    #[serde(rename = "Meta", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Labels to find the job by.
    #[serde(rename = "Labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The job's tasks; upstream supports exactly one.
    #[serde(rename = "Tasks", default)]
    pub tasks: Vec<Task>,
    /// The job's state and why.
    #[serde(rename = "State", default)]
    pub state: State<JobStateType>,
    /// The spec version; a resubmission under the same name makes a new one.
    #[serde(rename = "Version", default)]
    pub version: u64,
    /// Bumped on every change to the stored job.
    #[serde(rename = "Revision", default)]
    pub revision: u64,
    /// When the job was first submitted, in nanoseconds since the epoch.
    #[serde(rename = "CreateTime", default)]
    pub create_time: Timestamp,
    /// When the job last changed, in nanoseconds since the epoch.
    #[serde(rename = "ModifyTime", default)]
    pub modify_time: Timestamp,
}

/// Defaults applied to tasks of one job type (upstream's `JobDefaults.<Type>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeDefaults {
    /// Priority given to jobs that set none.
    #[serde(default)]
    pub priority: i64,
    /// Task-level defaults.
    #[serde(default)]
    pub task: TaskDefaults,
}

/// Task defaults: resources, publisher and timeouts filled where the spec leaves them empty.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDefaults {
    /// Resources for tasks that request none.
    #[serde(default)]
    pub resources: ResourcesConfig,
    /// Publisher for tasks that name none.
    #[serde(default)]
    pub publisher: SpecConfig,
    /// Timeouts for tasks that set none.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
}

/// Upstream's `JobDefaults` config section, one entry per job type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobDefaults {
    /// Defaults for batch jobs.
    #[serde(default = "TypeDefaults::upstream")]
    pub batch: TypeDefaults,
    /// Defaults for ops jobs.
    #[serde(default = "TypeDefaults::upstream")]
    pub ops: TypeDefaults,
    /// Defaults for daemon jobs.
    #[serde(default = "TypeDefaults::upstream")]
    pub daemon: TypeDefaults,
    /// Defaults for service jobs.
    #[serde(default = "TypeDefaults::upstream")]
    pub service: TypeDefaults,
    /// Ours (`Orchestrator.ResultCacheDefault`): jobs the result cache can key use it unless
    /// their meta says otherwise.
    #[serde(skip)]
    pub cache_by_default: bool,
}

impl TypeDefaults {
    /// Upstream's defaults: half a core and 512 MB per task.
    pub fn upstream() -> Self {
        Self {
            priority: 0,
            task: TaskDefaults {
                resources: ResourcesConfig {
                    cpu: "500m".into(),
                    memory: "512Mb".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }
}

impl Default for JobDefaults {
    fn default() -> Self {
        Self {
            batch: TypeDefaults::upstream(),
            ops: TypeDefaults::upstream(),
            daemon: TypeDefaults::upstream(),
            service: TypeDefaults::upstream(),
            cache_by_default: false,
        }
    }
}

impl JobDefaults {
    /// The defaults for one job type.
    pub fn for_type(&self, job_type: JobType) -> &TypeDefaults {
        match job_type {
            JobType::Batch => &self.batch,
            JobType::Ops => &self.ops,
            JobType::Daemon => &self.daemon,
            JobType::Service => &self.service,
        }
    }
}

/// One problem with a submitted spec, naming the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The field path, e.g. `Tasks[0].Engine.Type`; empty for the job as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Joins validation errors into one message, one problem per line.
pub fn describe_errors(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Meta keys the system owns; users' values under this prefix are dropped at submission.
pub const SYSTEM_META_PREFIX: &str = "bacalhau.org/";

/// The most executions one job may ask for: each needs its own node, and planning holds one
/// record per partition in memory.
pub const MAX_COUNT: i64 = 100_000;

impl Job {
    /// The parsed job type, if valid.
    pub fn job_type(&self) -> Option<JobType> {
        JobType::parse(&self.r#type)
    }

    /// Upstream's short form of the job's ID.
    pub fn short_id(&self) -> &str {
        short_id(self.id.as_str())
    }

    /// The first (and in practice only) task.
    pub fn task(&self) -> Option<&Task> {
        self.tasks.first()
    }

    /// Clears what a client may not set and returns warnings about it, as upstream does.
    pub fn sanitize_submission(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.state.state_type != JobStateType::Undefined {
            warnings.push("job state is ignored when submitting a job".to_string());
            self.state = State::default();
        }
        if self.revision != 0 {
            warnings.push("job revision is ignored when submitting a job".to_string());
            self.revision = 0;
        }
        if self.version != 0 {
            warnings.push("job version is ignored when submitting a job".to_string());
            self.version = 0;
        }
        if self.create_time != 0 {
            warnings.push("job create time is ignored when submitting a job".to_string());
            self.create_time = 0;
        }
        if self.modify_time != 0 {
            warnings.push("job modify time is ignored when submitting a job".to_string());
            self.modify_time = 0;
        }
        if !self.id.is_empty() && matches!(self.job_type(), Some(JobType::Batch | JobType::Ops)) {
            warnings.push("job ID is ignored when submitting a batch job".to_string());
        }
        if self.tasks.len() > 1 {
            warnings.push("only one task is supported per job".to_string());
        }
        let before = self.meta.len();
        self.meta.retain(|k, _| !k.starts_with(SYSTEM_META_PREFIX));
        if self.meta.len() != before {
            warnings.push(format!(
                "meta keys with prefix {SYSTEM_META_PREFIX} are reserved and were dropped"
            ));
        }
        warnings
    }

    /// Fills upstream's defaults: namespace, name, count for daemon/ops, priority and task
    /// resources, publisher and timeouts from `defaults`.
    pub fn normalize(&mut self, defaults: &JobDefaults) {
        if self.namespace.is_empty() {
            self.namespace = DEFAULT_NAMESPACE.to_string();
        }
        if self.name.is_empty() {
            self.name = self.id.to_string();
        }
        let Some(job_type) = self.job_type() else {
            return;
        };
        if job_type.targets_all_nodes() && self.count <= 1 {
            self.count = 0;
        }
        let type_defaults = defaults.for_type(job_type);
        if self.priority == 0 {
            self.priority = type_defaults.priority;
        }
        for task in &mut self.tasks {
            let d = &type_defaults.task;
            let r = &mut task.resources;
            if r.cpu.is_empty() {
                r.cpu = d.resources.cpu.clone();
            }
            if r.memory.is_empty() {
                r.memory = d.resources.memory.clone();
            }
            if r.disk.is_empty() {
                r.disk = d.resources.disk.clone();
            }
            if r.gpu.is_empty() {
                r.gpu = d.resources.gpu.clone();
            }
            if task.publisher.is_empty() {
                task.publisher = d.publisher.clone();
            }
            let t = &mut task.timeouts;
            if t.execution_timeout == 0 {
                t.execution_timeout = d.timeouts.execution_timeout;
            }
            if t.queue_timeout == 0 {
                t.queue_timeout = d.timeouts.queue_timeout;
            }
            if t.total_timeout == 0 {
                t.total_timeout = d.timeouts.total_timeout;
            }
        }
    }

    /// Checks a submitted spec; every problem is reported with the field it concerns.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: String| {
            errors.push(ValidationError {
                field: field.to_string(),
                message,
            })
        };
        if self.name.contains('\0') {
            err("Name", "job name contains a null character".into());
        }
        match self.r#type.as_str() {
            "" => err("Type", "missing job type".into()),
            t if JobType::parse(t).is_none() => err(
                "Type",
                format!("invalid job type: {t:?} (known: batch, ops, daemon, service)"),
            ),
            _ => {}
        }
        if self.count < 0 {
            err("Count", "job count must be >= 0".into());
        } else if self.count > MAX_COUNT {
            err(
                "Count",
                format!(
                    "job count must be at most {MAX_COUNT}, found {}",
                    self.count
                ),
            );
        }
        if let Some(job_type) = self.job_type()
            && job_type.targets_all_nodes()
            && self.count > 1
        {
            err(
                "Count",
                format!(
                    "{job_type} jobs cannot specify count > 1 as they run on all matching nodes"
                ),
            );
        }
        for (i, constraint) in self.constraints.iter().enumerate() {
            if let Err(e) = constraint.validate() {
                err(&format!("Constraints[{i}]"), e);
            }
        }
        for (key, value) in &self.labels {
            if let Err(e) = validate_label_key(key) {
                err("Labels", e);
            }
            if let Err(e) = validate_label_value(value) {
                err(&format!("Labels.{key}"), e);
            }
        }
        if self.tasks.is_empty() {
            err("Tasks", "missing job tasks".into());
        }
        for (i, task) in self.tasks.iter().enumerate() {
            validate_task(&format!("Tasks[{i}]"), task, &mut err);
        }
        if let Some(raw) = self.meta.get(crate::content::VERIFY_META) {
            let field = format!("Meta[{}]", crate::content::VERIFY_META);
            if let Err(why) = crate::content::check_verify(self, raw) {
                err(&field, why);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn validate_task(at: &str, task: &Task, err: &mut impl FnMut(&str, String)) {
    if task.name.trim().is_empty() {
        err(&format!("{at}.Name"), "missing task name".into());
    }
    if task.name.contains('\0') {
        err(
            &format!("{at}.Name"),
            "task name cannot contain null characters".into(),
        );
    }
    match task.engine.r#type.as_str() {
        "" => err(&format!("{at}.Engine.Type"), "missing engine type".into()),
        t if !ENGINE_TYPES.contains(&t) => err(
            &format!("{at}.Engine.Type"),
            format!("unknown engine {t:?} (known: {})", ENGINE_TYPES.join(", ")),
        ),
        "docker"
            if task
                .engine
                .param_str("Image")
                .is_none_or(|image| image.trim().is_empty()) =>
        {
            err(
                &format!("{at}.Engine.Params.Image"),
                "a docker job needs an Image".into(),
            )
        }
        _ => {}
    }
    if !task.publisher.is_empty() && !PUBLISHER_TYPES.contains(&task.publisher.r#type.as_str()) {
        err(
            &format!("{at}.Publisher.Type"),
            format!(
                "unknown publisher {:?} (known: {})",
                task.publisher.r#type,
                PUBLISHER_TYPES.join(", ")
            ),
        );
    }
    if !task.result_paths.is_empty() && task.publisher.is_empty() {
        err(
            &format!("{at}.Publisher"),
            "publisher must be set if result paths are set".into(),
        );
    }
    let mut targets = std::collections::BTreeSet::new();
    for (j, input) in task.input_sources.iter().enumerate() {
        let here = format!("{at}.InputSources[{j}]");
        match input.source.r#type.as_str() {
            "" => err(&format!("{here}.Source.Type"), "missing spec type".into()),
            t if !INPUT_SOURCE_TYPES.contains(&t) => err(
                &format!("{here}.Source.Type"),
                format!(
                    "unknown input source {t:?} (known: {})",
                    INPUT_SOURCE_TYPES.join(", ")
                ),
            ),
            _ => {}
        }
        if input.target.trim().is_empty() {
            err(
                &format!("{here}.Target"),
                "input source is missing a target".into(),
            );
        } else if !targets.insert(input.target.as_str()) {
            err(
                &format!("{here}.Target"),
                format!("input source with target '{}' already exists", input.target),
            );
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let mut paths = std::collections::BTreeSet::new();
    for (j, result) in task.result_paths.iter().enumerate() {
        let here = format!("{at}.ResultPaths[{j}]");
        if result.name.trim().is_empty() {
            err(&format!("{here}.Name"), "missing result path name".into());
        } else if !names.insert(result.name.as_str()) {
            err(
                &format!("{here}.Name"),
                format!("result path with name '{}' already exists", result.name),
            );
        }
        if result.path.trim().is_empty() {
            err(&format!("{here}.Path"), "missing result path".into());
        } else if !paths.insert(result.path.as_str()) {
            err(
                &format!("{here}.Path"),
                format!("result path '{}' already exists", result.path),
            );
        }
    }
    if let Err(e) = task.resources.to_resources() {
        err(&format!("{at}.Resources"), e.to_string());
    }
    let network = &task.network;
    if !network.domains.is_empty() && network.r#type != NetworkType::Http {
        err(
            &format!("{at}.Network.Domains"),
            "domains can only be set for HTTP network mode".into(),
        );
    }
    let takes_ports = network.r#type.is_host() || network.r#type == NetworkType::Bridge;
    if !network.ports.is_empty() && !takes_ports {
        err(
            &format!("{at}.Network.Ports"),
            "ports can only be set for Host or Bridge network modes".into(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    let mut statics = std::collections::BTreeSet::new();
    let mut targets = std::collections::BTreeSet::new();
    for (i, port) in network.ports.iter().enumerate() {
        let field = format!("{at}.Network.Ports[{i}]");
        // The name becomes part of an environment variable: BACALHAU_HOST_PORT_<Name>.
        let valid_name = port
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && port
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && port.name.len() <= 237;
        if !valid_name {
            err(
                &format!("{field}.Name"),
                format!(
                    "invalid port name {:?}: letters, digits and _, not starting with a digit",
                    port.name
                ),
            );
        }
        if !names.insert(port.name.as_str()) {
            err(
                &format!("{field}.Name"),
                format!("port name {:?} is used twice", port.name),
            );
        }
        if port.r#static != 0 && !(1024..=65535).contains(&port.r#static) {
            err(
                &format!("{field}.Static"),
                format!(
                    "port {} is outside 1024-65535 (the privileged range 1-1023 is not allowed)",
                    port.r#static
                ),
            );
        }
        if port.r#static != 0 && !statics.insert(port.r#static) {
            err(
                &format!("{field}.Static"),
                format!("port {} is used twice", port.r#static),
            );
        }
        if port.target > 65535 {
            err(
                &format!("{field}.Target"),
                format!("port {} is above 65535", port.target),
            );
        }
        if port.target != 0 && network.r#type.is_host() {
            err(
                &format!("{field}.Target"),
                "target ports cannot be set for Host network mode".into(),
            );
        }
        if port.target != 0 && !targets.insert(port.target) {
            err(
                &format!("{field}.Target"),
                format!("target port {} is used twice", port.target),
            );
        }
        if !port.host_network.is_empty() && port.host_network.parse::<std::net::IpAddr>().is_err() {
            err(
                &format!("{field}.HostNetwork"),
                format!("{:?} is not an IP address", port.host_network),
            );
        }
    }
    let t = &task.timeouts;
    for (name, value) in [
        ("ExecutionTimeout", t.execution_timeout),
        ("QueueTimeout", t.queue_timeout),
        ("TotalTimeout", t.total_timeout),
    ] {
        if value < 0 {
            err(
                &format!("{at}.Timeouts.{name}"),
                format!("invalid timeout value {value}: must be >= 0 seconds"),
            );
        }
    }
    if t.total_timeout > 0
        && (t.execution_timeout > t.total_timeout || t.queue_timeout > t.total_timeout)
    {
        err(
            &format!("{at}.Timeouts"),
            format!(
                "execution timeout {}s and queue timeout {}s should be less than total timeout {}s",
                t.execution_timeout, t.queue_timeout, t.total_timeout
            ),
        );
    }
    for key in task.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            err(
                &format!("{at}.Env"),
                format!("invalid environment variable name {key:?}"),
            );
        } else if key.to_ascii_uppercase().starts_with("BACALHAU_") {
            err(
                &format!("{at}.Env"),
                format!("environment variable {key:?} uses the reserved prefix BACALHAU_"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
