//! Configuration with upstream's keys (`API.Port`, `Orchestrator.Auth.Token`...), layered:
//! defaults < config files < `BACALHAU_*` environment < `-c Key.Path=value` < dedicated flags.
//!
//! [`keys::KEYS`] lists every key (upstream v1.9's and ours) with its kind and description.
//! Keys are matched case-insensitively. A file may hold any of them: a key we do not act on
//! is accepted (and named once when a node starts), an unknown key is skipped with a warning
//! that suggests the nearest known one, and a value of the wrong kind is an error naming key,
//! value and the kind expected.

mod keys;

pub use keys::KEYS;

use anyhow::{Context, Result, anyhow, bail};
use bacalhau_models::job::JobDefaults;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a key's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// Go's duration syntax (`30s`, `1m0s`, `500ms`); empty means unset.
    Duration,
    /// A list of strings (YAML list, or comma-separated).
    List,
    /// A map of names to strings (YAML mapping, or `k=v,k2=v2`).
    Map,
    /// A structured value (a list of users, a map of objects).
    Any,
}

impl Kind {
    /// The kind as `config list` and errors name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "a whole number",
            Kind::Bool => "true or false",
            Kind::Duration => "a duration such as 30s or 1m0s",
            Kind::List => "a list of strings",
            Kind::Map => "a map of strings",
            Kind::Any => "a structured value",
        }
    }
}

/// Whether this binary acts on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Honoured,
    /// Accepted so upstream's files load, but changes nothing here; says why.
    Unused(&'static str),
}

/// One configuration key.
#[derive(Debug)]
pub struct Key {
    /// Canonical dotted path, e.g. `Compute.Heartbeat.Interval`.
    pub path: &'static str,
    pub kind: Kind,
    pub description: &'static str,
    pub support: Support,
}

/// The key at `path` (any case), or the key whose free-form value holds it (`Labels.zone` is
/// in `Labels`).
pub fn key_for(path: &str) -> Option<&'static Key> {
    let lower = path.to_ascii_lowercase();
    KEYS.iter().find(|key| {
        let key_lower = key.path.to_ascii_lowercase();
        lower == key_lower
            || (matches!(key.kind, Kind::Map | Kind::Any)
                && lower.starts_with(&key_lower)
                && lower.as_bytes().get(key_lower.len()) == Some(&b'.'))
    })
}

/// The known key nearest to an unknown `path`, if one is close enough to be a typo.
pub fn nearest_key(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    KEYS.iter()
        .map(|key| {
            let distance = strsim::levenshtein(&lower, &key.path.to_ascii_lowercase());
            (distance, key.path)
        })
        .min()
        .filter(|(distance, _)| *distance <= 3.max(lower.len() / 4))
        .map(|(_, path)| path)
}

/// "unknown config key X", with the nearest known key when there is one.
fn unknown_key(path: &str) -> String {
    match nearest_key(path) {
        Some(near) => format!("unknown config key {path}; did you mean {near}?"),
        None => format!("unknown config key {path} (`bacalhau config list` shows every key)"),
    }
}

/// Every known key with its default value: ours where we set one, else the kind's empty value.
pub fn defaults() -> Value {
    let mut tree = our_defaults();
    for key in KEYS {
        let mut node = &mut tree;
        let parts: Vec<&str> = key.path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let Some(map) = node.as_object_mut() else {
                break;
            };
            if i + 1 == parts.len() {
                map.entry(part.to_string())
                    .or_insert_with(|| empty_value(key.kind));
                break;
            }
            node = map.entry(part.to_string()).or_insert_with(|| json!({}));
        }
    }
    tree
}

/// The value of an unset key of `kind`.
fn empty_value(kind: Kind) -> Value {
    match kind {
        Kind::Str | Kind::Duration => json!(""),
        Kind::Int => json!(0),
        Kind::Bool => json!(false),
        Kind::List => json!([]),
        Kind::Map => json!({}),
        Kind::Any => Value::Null,
    }
}

/// The defaults this binary chooses (upstream's unless a comment says why not).
fn our_defaults() -> Value {
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
            "EvaluationBroker": { "VisibilityTimeout": "1m", "MaxRetryCount": 10 },
            "ResultCacheDefault": false,
            "JobRetention": "0s",
            "CompactOnStart": false,
            "QUIC": { "Enabled": false }
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
            "TLS": { "CACert": "", "RequireTLS": false },
            "Network": { "PortRangeStart": 20000, "PortRangeEnd": 32000 },
            // The embedded IPFS node: no public bootstrap, peers only as named.
            "IPFS": {
                "Listen": ["/ip4/0.0.0.0/tcp/0"],
                "Peers": [],
                "FetchTimeout": "1m",
                "MaxStoreSize": "10GB"
            }
        },
        "InputSources": { "Disabled": [], "ReadTimeout": "5m", "MaxRetryCount": 3, "MaxSize": "10GB" },
        "Publishers": {
            "Disabled": [],
            "MaxResultSize": "10GB",
            "Types": { "Local": { "Address": "127.0.0.1", "Port": 6001 } }
        },
        "JobAdmissionControl": { "RejectNetworkedJobs": false, "Locality": "anywhere" },
        "Engines": { "Disabled": [] },
        "ResultDownloaders": { "Disabled": [], "Timeout": "" },
        "JobDefaults": serde_json::to_value(JobDefaults::default()).unwrap_or(Value::Null),
        "Logging": { "Level": "info", "Mode": "default" },
        "WebUI": { "Enabled": false, "Listen": "0.0.0.0:8438", "ChartInterval": "5s" },
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
    /// Keys given a value by a file, the environment or `-c` (canonical paths).
    pub set_keys: BTreeSet<&'static str>,
    /// What was skipped while loading (unknown keys), for the command to print once.
    pub warnings: Vec<String>,
}

/// The default data directory: `~/.bacalhau`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".bacalhau")
}

impl Config {
    /// Loads the layers. `sources` are the `-c/--config` arguments: files, or `Key=value` pairs
    /// (a bare `Key` sets a boolean key to true, as upstream).
    pub fn load(sources: &[String]) -> Result<Self> {
        let mut config = Self {
            tree: defaults(),
            write_path: PathBuf::new(),
            set_keys: BTreeSet::new(),
            warnings: Vec::new(),
        };
        let is_file =
            |s: &str| Path::new(s).exists() || s.ends_with(".yaml") || s.ends_with(".yml");
        let (files, pairs): (Vec<&String>, Vec<&String>) =
            sources.iter().partition(|s| is_file(s) && !s.contains('='));
        let default_file = default_data_dir().join("config.yaml");
        config.write_path = files
            .first()
            .map(|f| PathBuf::from(f.as_str()))
            .unwrap_or_else(|| default_file.clone());
        if files.is_empty() {
            if default_file.exists() {
                config.merge_file(&default_file)?;
            }
        } else {
            for file in &files {
                config.merge_file(Path::new(file.as_str()))?;
            }
        }
        config.apply_env()?;
        for pair in pairs {
            let (key, value) = match pair.split_once('=') {
                Some((key, value)) => (key, value),
                // `-c Compute.Enabled` turns a switch on.
                None if key_for(pair).is_some_and(|k| k.kind == Kind::Bool) => {
                    (pair.as_str(), "true")
                }
                None => bail!(
                    "invalid config override {pair:?}: use Key.Path=value (or a config file that exists)"
                ),
            };
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Sets one key from text, as `-c Key=value` does.
    pub fn set(&mut self, key: &str, raw: &str) -> Result<()> {
        set_path(&mut self.tree, key, raw)?;
        if let Some(known) = key_for(key) {
            self.set_keys.insert(known.path);
        }
        Ok(())
    }

    fn merge_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        if text.trim().is_empty() {
            return Ok(());
        }
        let value: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("invalid YAML in config file {}", path.display()))?;
        let mut found = Vec::new();
        merge(&mut self.tree, value, "", &mut found);
        for leaf in found {
            match leaf {
                Merged::Known(key) => {
                    self.set_keys.insert(key);
                }
                Merged::Unknown(path_in_file) => self.warnings.push(format!(
                    "{} (in {}; skipped)",
                    unknown_key(&path_in_file),
                    path.display()
                )),
            }
        }
        self.check_kinds()
            .with_context(|| format!("in config file {}", path.display()))
    }

    /// Applies `BACALHAU_<KEY_PATH>` variables (e.g. `BACALHAU_API_PORT`) for every key.
    fn apply_env(&mut self) -> Result<()> {
        for key in KEYS {
            let name = format!(
                "BACALHAU_{}",
                key.path.replace('.', "_").to_ascii_uppercase()
            );
            if let Ok(raw) = std::env::var(&name) {
                self.set(key.path, &raw)
                    .with_context(|| format!("environment variable {name}"))?;
            }
        }
        // Upstream's long-standing name for the data directory.
        if let Ok(dir) = std::env::var("BACALHAU_DIR") {
            self.set("DataDir", &dir)?;
        }
        Ok(())
    }

    /// Every key's value has its kind: a file can put anything anywhere.
    fn check_kinds(&self) -> Result<()> {
        for key in KEYS {
            if let Some(value) = self.get(key.path) {
                check_kind(key, value)?;
            }
        }
        Ok(())
    }

    /// Keys that were given a value but change nothing here, with why: for one warning when a
    /// node starts.
    pub fn unused_keys(&self) -> Vec<(&'static str, &'static str)> {
        self.set_keys
            .iter()
            .filter_map(|path| match key_for(path).map(|k| k.support) {
                Some(Support::Unused(why)) => Some((*path, why)),
                _ => None,
            })
            .collect()
    }

    /// The value at a dotted key path (case-insensitive).
    pub fn get(&self, path: &str) -> Option<&Value> {
        value_at(&self.tree, path)
    }

    /// The value at a dotted key path of a tree such as [`Config::redacted`]'s.
    pub fn value_in<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
        value_at(tree, path)
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

    /// A duration such as `30s`, `1m0s` or `500ms`.
    pub fn duration(&self, path: &str) -> Result<std::time::Duration> {
        parse_duration(&self.string(path)).with_context(|| format!("config {path}"))
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

    /// The job defaults section; its timeouts are durations (`5m`), as in upstream's files.
    pub fn job_defaults(&self) -> Result<JobDefaults> {
        let mut section = self.get("JobDefaults").cloned().unwrap_or(Value::Null);
        for job_type in ["Batch", "Ops", "Daemon", "Service"] {
            let pointer = format!("/{job_type}/Task/Timeouts");
            let Some(timeouts) = section.pointer_mut(&pointer).and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (name, value) in timeouts.iter_mut() {
                if let Value::String(text) = value {
                    let seconds = if text.trim().is_empty() {
                        0
                    } else {
                        parse_duration(text)
                            .with_context(|| {
                                format!("config JobDefaults.{job_type}.Task.Timeouts.{name}")
                            })?
                            .as_secs()
                    };
                    *value = json!(seconds);
                }
            }
        }
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

/// The value at a dotted key path of `tree` (case-insensitive).
fn value_at<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = tree;
    for part in path.split('.') {
        node = node
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)?;
    }
    Some(node)
}

/// What merging a file found at one of its leaves.
enum Merged {
    Known(&'static str),
    Unknown(String),
}

/// Merges `overlay` into `base`, matching keys case-insensitively against the known keys; a
/// key `base` does not have is skipped and reported, never an error.
fn merge(base: &mut Value, overlay: Value, at: &str, found: &mut Vec<Merged>) {
    let path_of = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            // An empty default object (Labels, a map) takes any keys.
            let free_form = base.is_empty();
            for (key, value) in overlay {
                let path = path_of(&key);
                let known = base.keys().find(|k| k.eq_ignore_ascii_case(&key)).cloned();
                match known.and_then(|k| base.get_mut(&k)) {
                    Some(slot) => merge(slot, value, &path, found),
                    None if free_form => {
                        base.insert(key, value);
                    }
                    None => found.push(Merged::Unknown(path)),
                }
            }
            if let Some(key) = key_for(at).filter(|k| k.path.eq_ignore_ascii_case(at)) {
                found.push(Merged::Known(key.path));
            }
        }
        (slot, value) => {
            *slot = value;
            if let Some(key) = key_for(at) {
                found.push(Merged::Known(key.path));
            }
        }
    }
}

/// Checks that `value` has `key`'s kind.
fn check_kind(key: &Key, value: &Value) -> Result<()> {
    let fits = match (key.kind, value) {
        (_, Value::Null) => true,
        (Kind::Str, v) => v.is_string() || v.is_number() || v.is_boolean(),
        (Kind::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Kind::Int, Value::String(s)) => s.trim().parse::<i64>().is_ok(),
        (Kind::Bool, Value::Bool(_)) => true,
        (Kind::Bool, Value::String(s)) => parse_bool(s).is_some(),
        (Kind::Duration, Value::String(s)) => s.trim().is_empty() || parse_duration(s).is_ok(),
        (Kind::List, Value::Array(items)) => items.iter().all(|i| !i.is_object() && !i.is_array()),
        (Kind::List, Value::String(_)) => true,
        (Kind::Map, Value::Object(_)) => true,
        (Kind::Any, _) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        bail!(
            "config key {}: {value} is not {}",
            key.path,
            key.kind.name()
        )
    }
}

/// Go's boolean spellings, as upstream's flags and config read them.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "yes" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "no" => Some(false),
        _ => None,
    }
}

/// A duration in Go's syntax (`1m0s`, `1h30m`, `500ms`, `30s`) or humantime's (`1 min`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(text.trim())
        .map_err(|e| anyhow!("invalid duration {text:?} (use e.g. 30s, 1m0s, 500ms): {e}"))
}

/// Sets `Key.Path` to `raw`, read as the key's kind (unknown keys inside a free-form map, such
/// as `Labels.zone`, are strings).
pub fn set_path(tree: &mut Value, key: &str, raw: &str) -> Result<()> {
    let kind = key_for(key).map(|k| {
        if k.path.eq_ignore_ascii_case(key) {
            k.kind
        } else {
            Kind::Str
        }
    });
    let Some(kind) = kind else {
        bail!("{}", unknown_key(key));
    };
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if node.is_null() {
            *node = json!({});
        }
        let map: &mut Map<String, Value> = node.as_object_mut().ok_or_else(|| {
            anyhow!(
                "config key {key}: {} is not a section",
                parts[..i].join(".")
            )
        })?;
        let name = match map.keys().find(|k| k.eq_ignore_ascii_case(part)).cloned() {
            Some(name) => name,
            None => {
                map.insert(part.to_string(), Value::Null);
                part.to_string()
            }
        };
        let slot = map
            .get_mut(&name)
            .ok_or_else(|| anyhow!("{}", unknown_key(key)))?;
        if i + 1 == parts.len() {
            *slot = parse_as(kind, raw).with_context(|| format!("config key {key}"))?;
            return Ok(());
        }
        node = slot;
    }
    Ok(())
}

/// Reads `raw` as a value of `kind`.
fn parse_as(kind: Kind, raw: &str) -> Result<Value> {
    let wrong = || anyhow!("{raw:?} is not {}", kind.name());
    Ok(match kind {
        Kind::Str => Value::String(raw.to_string()),
        Kind::Int => json!(raw.trim().parse::<i64>().map_err(|_| wrong())?),
        Kind::Bool => Value::Bool(parse_bool(raw).ok_or_else(wrong)?),
        Kind::Duration => {
            if !raw.trim().is_empty() {
                parse_duration(raw).map_err(|_| wrong())?;
            }
            Value::String(raw.trim().to_string())
        }
        Kind::List => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Kind::Map => {
            let mut map = Map::new();
            for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(wrong)?;
                map.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
            }
            Value::Object(map)
        }
        Kind::Any => serde_yaml_ng::from_str(raw)
            .map_err(|e| anyhow!("{raw:?} is not {}: {e}", kind.name()))?,
    })
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
    let typed = value_at(&check, &canonical).cloned().unwrap_or(Value::Null);
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
        let mut found = Vec::new();
        merge(&mut tree, json!({"api": {"prot": 1}}), "", &mut found);
        assert!(
            matches!(&found[..], [Merged::Unknown(path)] if path == "api.prot"),
            "an unknown key in a file is reported, not an error"
        );
        assert_eq!(nearest_key("api.prot"), Some("API.Port"));
        assert_eq!(
            nearest_key("Compute.Heartbeat.Intervall"),
            Some("Compute.Heartbeat.Interval")
        );
        assert_eq!(nearest_key("Flibble"), None);
    }

    #[test]
    fn files_merge_case_insensitively_and_labels_take_any_key() {
        let mut tree = defaults();
        let mut found = Vec::new();
        merge(
            &mut tree,
            json!({"api": {"port": 9999}, "Labels": {"zone": "eu"}}),
            "",
            &mut found,
        );
        assert!(found.iter().all(|f| matches!(f, Merged::Known(_))));
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
            set_keys: BTreeSet::new(),
            warnings: Vec::new(),
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
