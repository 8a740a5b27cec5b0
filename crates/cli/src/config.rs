//! Configuration with upstream's keys (`API.Port`, `Orchestrator.Auth.Token`...), layered:
//! defaults < config files < `BACALHAU_*` environment < `-c Key.Path=value` < dedicated flags.
//!
//! Keys are matched case-insensitively against the defaults tree, which holds every known key
//! in its canonical spelling; an unknown key is an error that names it.

use anyhow::{Context, Result, anyhow, bail};
use bacalhau_models::job::JobDefaults;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Every known key with its default value.
pub fn defaults() -> Value {
    json!({
        "API": {
            "Host": "0.0.0.0",
            "Port": 1234,
            // Users are the server's; APIKey, Username and Password are a client's own
            // credentials (also BACALHAU_API_KEY, BACALHAU_API_USERNAME, BACALHAU_API_PASSWORD).
            "Auth": { "Users": [], "APIKey": "", "Username": "", "Password": "" },
            "TLS": { "CertFile": "", "KeyFile": "", "CAFile": "", "UseTLS": false, "Insecure": false, "SelfSigned": false }
        },
        "NameProvider": "puuid",
        "DataDir": "",
        "Labels": {},
        "Orchestrator": {
            "Enabled": false,
            "Host": "0.0.0.0",
            "Port": 4222,
            "Advertise": "",
            "Auth": { "Token": "" },
            "NodeManager": { "DisconnectTimeout": "30s", "ManualApproval": false, "RescheduleGracePeriod": "1m" },
            // Workers are tasks that mostly wait for their plan's commit: many in flight make
            // bigger group commits (bench/: 64 workers ~800 jobs/s, 4 workers ~350 on 2 cores).
            "Scheduler": { "WorkerCount": 64, "QueueBackoff": "1m", "HousekeepingInterval": "30s", "HousekeepingTimeout": "2m" },
            "EvaluationBroker": { "VisibilityTimeout": "1m", "MaxRetryCount": 10 }
        },
        "Compute": {
            "Enabled": false,
            "Orchestrators": ["127.0.0.1:1234"],
            "Auth": { "Token": "" },
            "Heartbeat": { "Interval": "5s", "InfoUpdateInterval": "1m" },
            "AllocatedCapacity": { "CPU": "80%", "Memory": "80%", "Disk": "80%", "GPU": "100%" },
            "AllowListedLocalPaths": [],
            "DataLocality": { "S3": [] },
            "Env": { "AllowList": [] },
            "TLS": { "CACert": "", "RequireTLS": false }
        },
        "InputSources": { "ReadTimeout": "5m", "MaxRetryCount": 3, "MaxSize": "10GB" },
        "Publishers": {
            "MaxResultSize": "10GB",
            "Types": { "Local": { "Address": "127.0.0.1", "Port": 6001 } }
        },
        "JobAdmissionControl": { "AcceptNetworkedJobs": false, "RejectStatelessJobs": false },
        "JobDefaults": serde_json::to_value(JobDefaults::default()).unwrap_or(Value::Null),
        "Logging": { "Level": "info", "Mode": "default" },
        "WebUI": { "Enabled": false, "Listen": "0.0.0.0:8438" },
        "UpdateConfig": { "Interval": "24h" },
        "DisableAnalytics": false
    })
}

/// Key paths whose values are secrets: never printed.
const SECRET_KEYS: &[&str] = &[
    "Orchestrator.Auth.Token",
    "Compute.Auth.Token",
    "API.Auth.APIKey",
    "API.Auth.Password",
];

/// The merged configuration, and where `config set` writes.
#[derive(Debug, Clone)]
pub struct Config {
    /// The merged tree.
    pub tree: Value,
    /// The file `config set` writes to.
    pub write_path: PathBuf,
}

/// The default data directory: `~/.bacalhau`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".bacalhau")
}

impl Config {
    /// Loads the layers. `sources` are the `-c/--config` arguments: files, or `Key=value` pairs.
    pub fn load(sources: &[String]) -> Result<Self> {
        let mut tree = defaults();
        let (pairs, files): (Vec<&String>, Vec<&String>) = sources
            .iter()
            .partition(|s| s.contains('=') && !Path::new(s.as_str()).exists());
        let default_file = default_data_dir().join("config.yaml");
        let write_path = files
            .first()
            .map(|f| PathBuf::from(f.as_str()))
            .unwrap_or_else(|| default_file.clone());
        if files.is_empty() {
            if default_file.exists() {
                merge_file(&mut tree, &default_file)?;
            }
        } else {
            for file in &files {
                merge_file(&mut tree, Path::new(file.as_str()))?;
            }
        }
        apply_env(&mut tree)?;
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid config override {pair:?}: use Key.Path=value"))?;
            set_path(&mut tree, key, value)?;
        }
        Ok(Self { tree, write_path })
    }

    /// The value at a dotted key path (case-insensitive).
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut node = &self.tree;
        for part in path.split('.') {
            node = node
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(part))
                .map(|(_, v)| v)?;
        }
        Some(node)
    }

    /// A size such as `10GB`; 0 when unset.
    pub fn bytes(&self, path: &str) -> Result<u64> {
        let text = self.string(path);
        if text.is_empty() {
            return Ok(0);
        }
        bacalhau_models::resources::parse_bytes("size", &text)
            .map_err(|e| anyhow!("config {path}: {e}"))
    }

    /// A string value; empty when unset.
    pub fn string(&self, path: &str) -> String {
        match self.get(path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }

    /// A boolean value.
    pub fn flag(&self, path: &str) -> bool {
        self.get(path).and_then(Value::as_bool).unwrap_or(false)
    }

    /// An unsigned number.
    pub fn number(&self, path: &str) -> Result<u64> {
        match self.get(path) {
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| anyhow!("config {path}: expected a whole number, found {n}")),
            Some(Value::String(s)) => s
                .parse()
                .with_context(|| format!("config {path}: expected a whole number, found {s:?}")),
            other => bail!("config {path}: expected a whole number, found {other:?}"),
        }
    }

    /// The data directory: `DataDir`, else `~/.bacalhau`.
    pub fn data_dir(&self) -> PathBuf {
        let configured = self.string("DataDir");
        if configured.is_empty() {
            default_data_dir()
        } else {
            PathBuf::from(configured)
        }
    }

    /// A duration such as `30s`, `1m` or `500ms`.
    pub fn duration(&self, path: &str) -> Result<std::time::Duration> {
        let text = self.string(path);
        humantime::parse_duration(text.trim()).with_context(|| {
            format!("config {path}: invalid duration {text:?} (use e.g. 30s, 1m, 500ms)")
        })
    }

    /// A list of strings (a YAML list, or a comma-separated string).
    pub fn strings(&self, path: &str) -> Vec<String> {
        match self.get(path) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) if !s.is_empty() => {
                s.split(',').map(|p| p.trim().to_string()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The job defaults section.
    pub fn job_defaults(&self) -> Result<JobDefaults> {
        let section = self.get("JobDefaults").cloned().unwrap_or(Value::Null);
        serde_json::from_value(section).context("config JobDefaults")
    }

    /// The tree with secrets blanked, for display.
    pub fn redacted(&self) -> Value {
        let mut tree = self.tree.clone();
        for key in SECRET_KEYS {
            let mut node = &mut tree;
            let parts: Vec<&str> = key.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                let Some(map) = node.as_object_mut() else {
                    break;
                };
                let Some(next) = map.get_mut(*part) else {
                    break;
                };
                if i + 1 == parts.len() {
                    if next.as_str().is_some_and(|s| !s.is_empty()) {
                        *next = Value::String("<redacted>".into());
                    }
                    break;
                }
                node = next;
            }
        }
        if let Some(users) = tree
            .pointer_mut("/API/Auth/Users")
            .and_then(Value::as_array_mut)
        {
            for user in users {
                for secret in ["Password", "APIKey"] {
                    if let Some(v) = user.get_mut(secret) {
                        *v = Value::String("<redacted>".into());
                    }
                }
            }
        }
        tree
    }
}

fn merge_file(tree: &mut Value, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(());
    }
    let value: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("invalid YAML in config file {}", path.display()))?;
    merge(tree, value, "").with_context(|| format!("in config file {}", path.display()))
}

/// Merges `overlay` into `base`, matching keys case-insensitively against known keys.
fn merge(base: &mut Value, overlay: Value, at: &str) -> Result<()> {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            let free_form = base.is_empty();
            for (key, value) in overlay {
                let known = base.keys().find(|k| k.eq_ignore_ascii_case(&key)).cloned();
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match known {
                    Some(k) => {
                        let slot = base
                            .get_mut(&k)
                            .ok_or_else(|| anyhow!("config key {path}"))?;
                        merge(slot, value, &path)?;
                    }
                    // An empty default object (Labels) takes any keys.
                    None if free_form => {
                        base.insert(key, value);
                    }
                    None => bail!("unknown config key {path}"),
                }
            }
            Ok(())
        }
        (slot, value) => {
            *slot = value;
            Ok(())
        }
    }
}

/// Sets `Key.Path` to `raw`, read as the type the key's default has.
pub fn set_path(tree: &mut Value, key: &str, raw: &str) -> Result<()> {
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map: &mut Map<String, Value> = node.as_object_mut().ok_or_else(|| {
            anyhow!(
                "config key {key}: {} is not a section",
                parts[..i].join(".")
            )
        })?;
        let free_form = map.is_empty() && i > 0;
        let existing = map.keys().find(|k| k.eq_ignore_ascii_case(part)).cloned();
        let name = match (existing, free_form) {
            (Some(k), _) => k,
            (None, true) => {
                map.insert(part.to_string(), Value::String(String::new()));
                part.to_string()
            }
            (None, false) => bail!("unknown config key {key}"),
        };
        let slot = map
            .get_mut(&name)
            .ok_or_else(|| anyhow!("unknown config key {key}"))?;
        if i + 1 == parts.len() {
            *slot = typed_like(slot, raw).with_context(|| format!("config key {key}"))?;
            return Ok(());
        }
        node = slot;
    }
    Ok(())
}

fn typed_like(current: &Value, raw: &str) -> Result<Value> {
    Ok(match current {
        Value::Bool(_) => Value::Bool(match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => bail!("expected true or false, found {raw:?}"),
        }),
        Value::Number(_) => Value::Number(
            raw.parse::<u64>()
                .map_err(|_| anyhow!("expected a whole number, found {raw:?}"))?
                .into(),
        ),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Value::Object(_) => {
            serde_yaml_ng::from_str(raw).map_err(|e| anyhow!("expected a YAML mapping: {e}"))?
        }
        _ => Value::String(raw.to_string()),
    })
}

/// Applies `BACALHAU_<KEY_PATH>` variables (e.g. `BACALHAU_API_PORT`) for every known leaf key.
fn apply_env(tree: &mut Value) -> Result<()> {
    let mut leaves = Vec::new();
    collect_leaves(tree, "", &mut leaves);
    for path in leaves {
        let name = format!("BACALHAU_{}", path.replace('.', "_").to_ascii_uppercase());
        if let Ok(raw) = std::env::var(&name) {
            set_path(tree, &path, &raw).with_context(|| format!("environment variable {name}"))?;
        }
    }
    // Upstream's long-standing name for the data directory.
    if let Ok(dir) = std::env::var("BACALHAU_DIR") {
        set_path(tree, "DataDir", &dir)?;
    }
    Ok(())
}

fn collect_leaves(node: &Value, at: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                collect_leaves(v, &path, out);
            }
        }
        _ if !at.is_empty() => out.push(at.to_string()),
        _ => {}
    }
}

/// Writes `key = raw` into the YAML file at `path`, creating it if needed.
pub fn write_setting(path: &Path, key: &str, raw: &str) -> Result<()> {
    // Check the key and value against the known keys first.
    let mut check = defaults();
    set_path(&mut check, key, raw)?;
    let mut file_tree = if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if text.trim().is_empty() {
            json!({})
        } else {
            serde_yaml_ng::from_str(&text)
                .with_context(|| format!("invalid YAML in {}", path.display()))?
        }
    } else {
        json!({})
    };
    // Write the canonical spelling, with the typed value.
    let canonical = canonical_path(&check, key)?;
    let typed = Config {
        tree: check,
        write_path: path.to_path_buf(),
    }
    .get(&canonical)
    .cloned()
    .unwrap_or(Value::Null);
    let mut node = &mut file_tree;
    let parts: Vec<&str> = canonical.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = node.as_object_mut().ok_or_else(|| {
            anyhow!(
                "{} is not a section in {}",
                parts[..i].join("."),
                path.display()
            )
        })?;
        if i + 1 == parts.len() {
            map.insert(part.to_string(), typed);
            break;
        }
        node = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let text = serde_yaml_ng::to_string(&file_tree)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn canonical_path(tree: &Value, key: &str) -> Result<String> {
    let mut node = tree;
    let mut parts = Vec::new();
    for part in key.split('.') {
        let (name, next) = node
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)))
            .ok_or_else(|| anyhow!("unknown config key {key}"))?;
        parts.push(name.clone());
        node = next;
    }
    Ok(parts.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_typed_by_their_default() {
        let mut tree = defaults();
        set_path(&mut tree, "api.port", "4321").unwrap();
        set_path(&mut tree, "Compute.Orchestrators", "a:1,b:2").unwrap();
        set_path(&mut tree, "Orchestrator.NodeManager.ManualApproval", "true").unwrap();
        assert_eq!(tree["API"]["Port"], 4321);
        assert_eq!(tree["Compute"]["Orchestrators"], json!(["a:1", "b:2"]));
        assert_eq!(tree["Orchestrator"]["NodeManager"]["ManualApproval"], true);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let mut tree = defaults();
        assert!(set_path(&mut tree, "API.Prot", "1").is_err());
        assert!(set_path(&mut tree, "API.Port", "many").is_err());
        let err = merge(&mut tree, json!({"api": {"nope": 1}}), "").unwrap_err();
        assert!(err.to_string().contains("API.nope") || err.to_string().contains("api.nope"));
    }

    #[test]
    fn files_merge_case_insensitively_and_labels_take_any_key() {
        let mut tree = defaults();
        merge(
            &mut tree,
            json!({"api": {"port": 9999}, "Labels": {"zone": "eu"}}),
            "",
        )
        .unwrap();
        assert_eq!(tree["API"]["Port"], 9999);
        assert_eq!(tree["Labels"]["zone"], "eu");
    }

    #[test]
    fn secrets_are_redacted() {
        let mut tree = defaults();
        set_path(&mut tree, "Orchestrator.Auth.Token", "s3cret").unwrap();
        let config = Config {
            tree,
            write_path: PathBuf::new(),
        };
        assert!(!config.redacted().to_string().contains("s3cret"));
    }

    #[test]
    fn settings_are_written_with_canonical_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        write_setting(&path, "api.port", "5555").unwrap();
        write_setting(&path, "compute.orchestrators", "x:1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(value["API"]["Port"], 5555);
        assert_eq!(value["Compute"]["Orchestrators"], json!(["x:1"]));
        assert!(write_setting(&path, "nope.key", "1").is_err());
    }
}
