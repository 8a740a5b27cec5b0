//! A task: what one execution runs (engine, inputs, outputs, resources, network, timeouts).

use crate::resources::ResourcesConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The engines a task may name.
pub const ENGINE_TYPES: &[&str] = &["docker", "wasm", "noop"];
/// The publishers a task may name.
pub const PUBLISHER_TYPES: &[&str] = &["local", "s3", "s3managed", "ipfs", "noop"];
/// The input source types a task may name (`localDirectory` is `local`'s deprecated alias).
pub const INPUT_SOURCE_TYPES: &[&str] = &[
    "local",
    "localDirectory",
    "urlDownload",
    "s3",
    "s3PreSigned",
    "inline",
    "ipfs",
];

/// A typed, free-form configuration: an engine, publisher or input source and its params.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SpecConfig {
    /// Which implementation, e.g. `docker`, `local`, `s3`.
    #[serde(rename = "Type", default)]
    pub r#type: String,
    /// Parameters for that implementation; their keys are matched case-insensitively.
    #[serde(
        rename = "Params",
        default,
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl SpecConfig {
    /// A config of the given type with no params.
    pub fn of_type(kind: &str) -> Self {
        Self {
            r#type: kind.to_string(),
            params: serde_json::Map::new(),
        }
    }

    /// Whether the config names no type at all.
    pub fn is_empty(&self) -> bool {
        self.r#type.is_empty()
    }

    /// Looks a param up, matching its key case-insensitively as upstream's decoder does.
    pub fn param(&self, key: &str) -> Option<&serde_json::Value> {
        self.params.get(key).or_else(|| {
            self.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }

    /// A param as text, when it is a string.
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.param(key).and_then(|v| v.as_str())
    }
}

/// Data a task reads: where it comes from and where it is mounted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InputSource {
    /// The storage type and its params.
    #[serde(rename = "Source", default)]
    pub source: SpecConfig,
    /// A name to refer to the input by.
    #[serde(rename = "Alias", default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
    /// The path inside the task where the input appears.
    #[serde(rename = "Target", default)]
    pub target: String,
}

/// A path the task writes that is published as part of its result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResultPath {
    /// The name of the result folder.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The path inside the task.
    #[serde(rename = "Path", default)]
    pub path: String,
}

/// A port mapping for host or bridge networking.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Port {
    /// The mapping's name; becomes `BACALHAU_PORT_<Name>`.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The host port; 0 lets the node pick one.
    #[serde(rename = "Static", default, skip_serializing_if = "is_zero_u64")]
    pub r#static: u64,
    /// The port inside the task.
    #[serde(rename = "Target", default, skip_serializing_if = "is_zero_u64")]
    pub target: u64,
    /// The host address to bind.
    #[serde(
        rename = "HostNetwork",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub host_network: String,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// A task's network access, as upstream's v1.7+ types: on the wire as their names (any case
/// when read) or upstream's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkType {
    /// A bridge network, unless the node rejects networked jobs (then none). Also what an
    /// absent or empty type means.
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
    /// The host's network (upstream's older name).
    Full,
    /// Only HTTP(S) to the listed domains, through the node's proxy.
    Http,
    /// A bridge network with port mappings.
    Bridge,
}

impl NetworkType {
    /// Every type, in upstream's numbering.
    pub const ALL: [NetworkType; 6] = [
        Self::Default,
        Self::None,
        Self::Host,
        Self::Full,
        Self::Http,
        Self::Bridge,
    ];

    /// Upstream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "Default",
            Self::None => "None",
            Self::Host => "Host",
            Self::Full => "Full",
            Self::Http => "HTTP",
            Self::Bridge => "Bridge",
        }
    }

    /// Parses upstream's name in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// Upstream's names, for messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Whether the job reaches the host's own network.
    pub fn is_host(self) -> bool {
        matches!(self, Self::Host | Self::Full)
    }

    fn is_default(&self) -> bool {
        *self == Self::Default
    }
}

impl std::fmt::Display for NetworkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NetworkType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NetworkType {
    /// A name in any case, upstream's number, or null / empty for `Default`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let found = match &value {
            serde_json::Value::Null => Some(Self::Default),
            serde_json::Value::String(s) if s.is_empty() => Some(Self::Default),
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|i| Self::ALL.get(usize::try_from(i).ok()?))
                .copied(),
            _ => None,
        };
        found.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown network type {value} (known: {})",
                Self::names()
            ))
        })
    }
}

/// A task's network access.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// The type; `Default` when absent (and then not written).
    #[serde(
        rename = "Type",
        default,
        skip_serializing_if = "NetworkType::is_default"
    )]
    pub r#type: NetworkType,
    /// Port mappings (host and bridge networking).
    #[serde(rename = "Ports", default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Domains reachable with `HTTP` networking.
    #[serde(rename = "Domains", default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
}

/// Timeouts in seconds; zero means none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimeoutConfig {
    /// Longest time one execution may run.
    #[serde(
        rename = "ExecutionTimeout",
        default,
        skip_serializing_if = "is_zero_i64"
    )]
    pub execution_timeout: i64,
    /// Longest time the job may wait for a node before it fails.
    #[serde(rename = "QueueTimeout", default, skip_serializing_if = "is_zero_i64")]
    pub queue_timeout: i64,
    /// Longest time from submission to completion, retries included.
    #[serde(rename = "TotalTimeout", default, skip_serializing_if = "is_zero_i64")]
    pub total_timeout: i64,
}

impl TimeoutConfig {
    /// Whether no timeout is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One unit of work of a job.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Task {
    /// The task's name, unique within its job.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The engine that runs the task and its params.
    #[serde(rename = "Engine", default)]
    pub engine: SpecConfig,
    /// Where the task's results go.
    #[serde(
        rename = "Publisher",
        default,
        skip_serializing_if = "SpecConfig::is_empty"
    )]
    pub publisher: SpecConfig,
    /// Environment variables; `env:NAME` values are resolved on the compute node.
    #[serde(rename = "Env", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Free-form metadata.
    #[serde(rename = "Meta", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Data mounted into the task.
    #[serde(
        rename = "InputSources",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub input_sources: Vec<InputSource>,
    /// Paths published as the task's result.
    #[serde(rename = "ResultPaths", default, skip_serializing_if = "Vec::is_empty")]
    pub result_paths: Vec<ResultPath>,
    /// Resources the task needs.
    #[serde(rename = "Resources", default)]
    pub resources: ResourcesConfig,
    /// Network access the task needs.
    #[serde(rename = "Network", default)]
    pub network: NetworkConfig,
    /// The task's timeouts.
    #[serde(rename = "Timeouts", default)]
    pub timeouts: TimeoutConfig,
}
