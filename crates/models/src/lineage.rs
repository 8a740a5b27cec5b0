//! A job's lineage: which jobs produced the data it read (upstream) and which jobs read what it
//! produced (downstream), linked by content identities ([`crate::content::Identity`]).

use crate::content::Identity;
use crate::ids::{ExecutionId, JobId};
use serde::{Deserialize, Serialize};

/// One job in a lineage tree.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LineageNode {
    /// The job.
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// Its name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Its state, as upstream names it.
    #[serde(rename = "State", default)]
    pub state: String,
    /// The execution whose records the links come from (its latest completed one).
    #[serde(
        rename = "ExecutionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub execution_id: Option<ExecutionId>,
    /// What each input was known by, and the jobs that produced it (upstream only).
    #[serde(rename = "Inputs", default)]
    pub inputs: Vec<LineageInput>,
    /// What its result is known by.
    #[serde(rename = "Result", default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Identity>,
    /// Jobs that read its result (downstream only).
    #[serde(rename = "ConsumedBy", default, skip_serializing_if = "Vec::is_empty")]
    pub consumed_by: Vec<LineageNode>,
    /// Set when the tree stops here: the job was already shown higher up, or the depth limit
    /// was reached.
    #[serde(
        rename = "Truncated",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub truncated: bool,
}

/// One input of a job in a lineage tree.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LineageInput {
    /// Where the task saw it.
    #[serde(rename = "Target")]
    pub target: String,
    /// Its source type (`ipfs`, `urlDownload`...).
    #[serde(rename = "SourceType", default)]
    pub source_type: String,
    /// Where it came from, when the spec says by place (a URL, a path, a bucket and key).
    #[serde(rename = "Place", default, skip_serializing_if = "String::is_empty")]
    pub place: String,
    /// What its data was known by when the job ran (or from the spec, before it ran).
    #[serde(rename = "Identity", default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// The jobs whose result it is.
    #[serde(rename = "ProducedBy", default, skip_serializing_if = "Vec::is_empty")]
    pub produced_by: Vec<LineageNode>,
}
