//! Reads job specs from YAML or JSON with keys matched case-insensitively, as upstream does.
//!
//! Keys of known struct fields are rewritten to their canonical spelling before typed decoding;
//! keys inside free-form maps (`Labels`, `Meta`, `Env`, `Params`, `Details`) are left alone.

use crate::job::Job;
use serde_json::{Map, Value};

/// Why a spec could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The text is neither valid YAML nor JSON.
    #[error("invalid job spec: {0}")]
    Syntax(String),
    /// The document is empty.
    #[error("empty job spec")]
    Empty,
    /// A field has the wrong type.
    #[error("invalid job spec: {0}")]
    Shape(String),
}

/// Every field name of the job model, in its canonical spelling.
const CANONICAL_KEYS: &[&str] = &[
    "ID",
    "Name",
    "Namespace",
    "Type",
    "Priority",
    "Count",
    "Constraints",
    "Meta",
    "Labels",
    "Tasks",
    "State",
    "StateType",
    "Message",
    "Details",
    "Version",
    "Revision",
    "CreateTime",
    "ModifyTime",
    "Key",
    "Operator",
    "Values",
    "Engine",
    "Publisher",
    "Env",
    "InputSources",
    "ResultPaths",
    "Resources",
    "Network",
    "Timeouts",
    "Params",
    "Source",
    "Alias",
    "Target",
    "Path",
    "CPU",
    "Memory",
    "Disk",
    "GPU",
    "Ports",
    "Domains",
    "Static",
    "HostNetwork",
    "ExecutionTimeout",
    "QueueTimeout",
    "TotalTimeout",
    "Job",
    "Force",
    "JobVersion",
    "Reason",
    "Action",
    "NodeID",
];

/// Fields whose values are maps with user-chosen keys.
const FREE_FORM_KEYS: &[&str] = &["Meta", "Labels", "Env", "Params", "Details"];

/// Rewrites known keys of `value` to their canonical case, recursively.
pub fn canonicalize_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, inner) in map {
                let canonical = CANONICAL_KEYS
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(&key))
                    .map(|k| k.to_string());
                let key = canonical.unwrap_or(key);
                let inner = if FREE_FORM_KEYS.contains(&key.as_str()) {
                    inner
                } else {
                    canonicalize_keys(inner)
                };
                out.insert(key, inner);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize_keys).collect()),
        other => other,
    }
}

/// Decodes a job from a JSON value: keys canonicalized, `Count` defaulted to 1 for batch and
/// service jobs that omit it (an explicit 0 is kept), as upstream's decoder does.
pub fn job_from_value(value: Value) -> Result<Job, SpecError> {
    let mut value = canonicalize_keys(value);
    let Value::Object(map) = &mut value else {
        return Err(match value {
            Value::Null => SpecError::Empty,
            other => SpecError::Shape(format!("expected a job object, found {other}")),
        });
    };
    if map.is_empty() {
        return Err(SpecError::Empty);
    }
    if !map.contains_key("Count") {
        let job_type = map.get("Type").and_then(Value::as_str).unwrap_or("");
        if !matches!(job_type, "daemon" | "ops") {
            map.insert("Count".into(), Value::from(1));
        }
    }
    serde_json::from_value(value).map_err(|e| SpecError::Shape(e.to_string()))
}

/// Parses a job spec written in YAML or JSON (JSON is YAML, so one parser reads both).
pub fn parse_job_spec(text: &str) -> Result<Job, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Empty);
    }
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| SpecError::Syntax(e.to_string()))?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| SpecError::Syntax(e.to_string()))?
    };
    job_from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM_EXAMPLE: &str = r#"
Name: Docker Job with Output
Type: batch
Count: 1
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: busybox:1.37.0
        Entrypoint: [/bin/sh]
        Parameters: [-c, "echo 15 > /output_custom/output.txt"]
    Publisher:
      Type: local
    ResultPaths:
      - Name: output_custom
        Path: /output_custom
"#;

    #[test]
    fn parses_upstream_example() {
        let job = parse_job_spec(UPSTREAM_EXAMPLE).unwrap();
        assert_eq!(job.name, "Docker Job with Output");
        assert_eq!(
            job.tasks[0].engine.param_str("image"),
            Some("busybox:1.37.0")
        );
        assert_eq!(job.tasks[0].result_paths[0].path, "/output_custom");
    }

    #[test]
    fn keys_match_case_insensitively_but_free_form_keys_keep_case() {
        let job = parse_job_spec(
            "name: x\ntype: batch\nlabels: {MyKey: v}\ntasks:\n - name: t\n   engine: {type: noop, params: {FooBar: 1}}\n",
        )
        .unwrap();
        assert_eq!(job.name, "x");
        assert!(job.labels.contains_key("MyKey"));
        assert!(job.tasks[0].engine.params.contains_key("FooBar"));
    }

    #[test]
    fn count_defaults_to_one_unless_given_or_daemon() {
        let omitted = parse_job_spec("{\"Type\":\"batch\",\"Tasks\":[]}").unwrap();
        assert_eq!(omitted.count, 1);
        let zero = parse_job_spec("{\"Type\":\"batch\",\"Count\":0}").unwrap();
        assert_eq!(zero.count, 0);
        let daemon = parse_job_spec("{\"Type\":\"daemon\"}").unwrap();
        assert_eq!(daemon.count, 0);
    }

    #[test]
    fn empty_and_malformed_specs_are_errors() {
        assert!(matches!(parse_job_spec("  "), Err(SpecError::Empty)));
        assert!(matches!(parse_job_spec("{}"), Err(SpecError::Empty)));
        assert!(parse_job_spec("Tasks: {").is_err());
        assert!(parse_job_spec("Count: many").is_err());
        assert!(parse_job_spec("- a\n- b").is_err());
    }
}
