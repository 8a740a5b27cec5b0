//! `bacalhau docker run` and (to come) `bacalhau wasm run`: build a one-task job from flags, as
//! upstream's commands do, and submit it like `job run`.

use super::Global;
use super::job::{RunFlags, submit};
use anyhow::{Result, bail};
use bacalhau_models::selector::{parse_selector, validate_label_key, validate_label_value};
use bacalhau_models::{Job, NetworkConfig, ResourcesConfig, SpecConfig, Task, TimeoutConfig};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;

/// Job-level flags shared by the run commands.
#[derive(Debug, Args)]
pub struct JobFlags {
    /// The job's name (a resubmission with the same name updates the job).
    #[arg(long)]
    name: Option<String>,
    /// The namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Scheduling priority.
    #[arg(long, default_value_t = 0)]
    priority: i64,
    /// Labels of the job, `key=value`, repeated or comma-separated.
    #[arg(short = 'l', long = "labels", value_delimiter = ',')]
    labels: Vec<String>,
    /// How many nodes run the job.
    #[arg(long, default_value_t = 1)]
    count: i64,
    /// Node label requirements, e.g. `zone=eu,gpu in (a100)`.
    #[arg(long, alias = "constraints", short = 's')]
    selector: Option<String>,
    /// Environment variables of the task, `NAME=value`, repeated or comma-separated.
    #[arg(short = 'e', long = "env", value_delimiter = ',')]
    env: Vec<String>,
    /// CPU cores, e.g. `500m` or `2`.
    #[arg(long)]
    cpu: Option<String>,
    /// Memory, e.g. `512mb` or `2Gi`.
    #[arg(long)]
    memory: Option<String>,
    /// Disk, e.g. `10gb`.
    #[arg(long)]
    disk: Option<String>,
    /// GPUs.
    #[arg(long)]
    gpu: Option<String>,
    /// Network access: None (the default), Host, Full, HTTP or Bridge.
    #[arg(long)]
    network: Option<String>,
    /// An input, as upstream writes it: `URI[:DST]` or `src=URI,dst=DST[,opt=rw]`, where URI is
    /// `file:///host/path` (a path the node allow-lists), `https://...`, `s3://bucket/key` or
    /// `ipfs://CID`. Repeatable.
    #[arg(short = 'i', long = "input")]
    inputs: Vec<String>,
    /// Seconds the execution may run; 0 for no limit.
    #[arg(long, default_value_t = 0)]
    timeout: i64,
    /// Seconds the job may wait for a node before failing; 0 fails at once.
    #[arg(long, default_value_t = 0)]
    queue_timeout: i64,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Debug, Subcommand)]
pub enum DockerCommand {
    /// Run a Docker container as a job: `bacalhau docker run [flags] IMAGE [-- CMD ARGS...]`.
    Run(Box<DockerRunArgs>),
}

#[derive(Debug, Args)]
pub struct DockerRunArgs {
    /// Overrides the image's ENTRYPOINT (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    entrypoint: Vec<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    #[command(flatten)]
    job: JobFlags,
    /// The image, e.g. `busybox:1.37.0`.
    image: String,
    /// The command and its arguments (after `--` when they start with `-`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum WasmCommand {
    /// Run a WebAssembly (WASI) module as a job: `bacalhau wasm run [flags] MODULE [ARGS...]`.
    Run(Box<WasmRunArgs>),
}

#[derive(Debug, Args)]
pub struct WasmRunArgs {
    /// The function to call.
    #[arg(long, default_value = "_start")]
    entry_point: String,
    #[command(flatten)]
    job: JobFlags,
    /// The module: a local `.wasm` file, sent inline with the job.
    module: std::path::PathBuf,
    /// The module's arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Largest module `wasm run` sends inline.
const MAX_INLINE_MODULE: u64 = 16 * 1024 * 1024;

pub async fn wasm(global: &Global, command: WasmCommand) -> Result<ExitCode> {
    use base64::Engine as _;
    let WasmCommand::Run(args) = command;
    let size = std::fs::metadata(&args.module)
        .map_err(|e| anyhow::anyhow!("cannot read module {}: {e}", args.module.display()))?
        .len();
    if size > MAX_INLINE_MODULE {
        bail!(
            "module {} is {size} bytes; modules sent inline may be at most {MAX_INLINE_MODULE}",
            args.module.display()
        );
    }
    let bytes = std::fs::read(&args.module)
        .map_err(|e| anyhow::anyhow!("cannot read module {}: {e}", args.module.display()))?;
    let name = args
        .module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "main.wasm".into());
    let mut params = serde_json::Map::new();
    params.insert("EntryModule".into(), json!(name));
    params.insert("Entrypoint".into(), json!(args.entry_point));
    if !args.args.is_empty() {
        params.insert("Parameters".into(), json!(args.args));
    }
    let mut job = build_job(&args.job, "wasm", params)?;
    let url = format!(
        "data:application/wasm;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    if let Some(task) = job.tasks.first_mut() {
        task.input_sources.push(bacalhau_models::InputSource {
            source: SpecConfig {
                r#type: "inline".into(),
                params: serde_json::Map::from_iter([("URL".to_string(), Value::String(url))]),
            },
            alias: String::new(),
            target: format!("/{name}"),
        });
    }
    submit(global, &job, &args.job.run).await
}

pub async fn docker(global: &Global, command: DockerCommand) -> Result<ExitCode> {
    match command {
        DockerCommand::Run(args) => {
            let mut params = serde_json::Map::new();
            params.insert("Image".into(), json!(args.image));
            if !args.entrypoint.is_empty() {
                params.insert("Entrypoint".into(), json!(args.entrypoint));
            }
            if !args.command.is_empty() {
                params.insert("Parameters".into(), json!(args.command));
            }
            if let Some(dir) = args.workdir {
                params.insert("WorkingDirectory".into(), Value::String(dir));
            }
            let job = build_job(&args.job, "docker", params)?;
            submit(global, &job, &args.job.run).await
        }
    }
}

/// A one-task batch job from the shared flags and an engine.
fn build_job(
    flags: &JobFlags,
    engine: &str,
    params: serde_json::Map<String, Value>,
) -> Result<Job> {
    let mut labels = std::collections::BTreeMap::new();
    for label in flags.labels.iter().filter(|l| !l.is_empty()) {
        let (key, value) = label.split_once('=').unwrap_or((label.as_str(), ""));
        validate_label_key(key).map_err(anyhow::Error::msg)?;
        validate_label_value(value).map_err(anyhow::Error::msg)?;
        labels.insert(key.to_string(), value.to_string());
    }
    let mut env = std::collections::BTreeMap::new();
    for pair in flags.env.iter().filter(|p| !p.is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("invalid --env {pair:?}: use NAME=value");
        };
        env.insert(name.to_string(), value.to_string());
    }
    let constraints = match &flags.selector {
        Some(selector) => {
            parse_selector(selector).map_err(|e| anyhow::anyhow!("invalid --selector: {e}"))?
        }
        None => Vec::new(),
    };
    let input_sources = flags
        .inputs
        .iter()
        .map(|i| parse_input(i))
        .collect::<Result<Vec<_>>>()?;
    Ok(Job {
        name: flags.name.clone().unwrap_or_default(),
        namespace: flags.namespace.clone().unwrap_or_default(),
        r#type: "batch".into(),
        priority: flags.priority,
        count: flags.count,
        constraints,
        labels,
        tasks: vec![Task {
            name: "main".into(),
            engine: SpecConfig {
                r#type: engine.into(),
                params,
            },
            env,
            input_sources,
            resources: ResourcesConfig {
                cpu: flags.cpu.clone().unwrap_or_default(),
                memory: flags.memory.clone().unwrap_or_default(),
                disk: flags.disk.clone().unwrap_or_default(),
                gpu: flags.gpu.clone().unwrap_or_default(),
            },
            network: NetworkConfig {
                r#type: flags
                    .network
                    .as_deref()
                    .map(canonical_network)
                    .transpose()?
                    .unwrap_or_default(),
                ..Default::default()
            },
            timeouts: TimeoutConfig {
                execution_timeout: flags.timeout,
                queue_timeout: flags.queue_timeout,
                total_timeout: 0,
            },
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn canonical_network(text: &str) -> Result<String> {
    bacalhau_models::task::NETWORK_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(text))
        .map(|t| t.to_string())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --network {text:?}: use one of {}",
                bacalhau_models::task::NETWORK_TYPES.join(", ")
            )
        })
}

/// Parses `-i`: `URI[:DST]` or `src=URI,dst=DST[,opt=rw]`.
fn parse_input(text: &str) -> Result<bacalhau_models::InputSource> {
    let (uri, dst, read_write) = if text.contains("src=") {
        let mut uri = None;
        let mut dst = None;
        let mut rw = false;
        for part in text.split(',') {
            match part.split_once('=') {
                Some(("src" | "source", value)) => uri = Some(value.to_string()),
                Some(("dst" | "target", value)) => dst = Some(value.to_string()),
                Some(("opt" | "options", value)) => rw = value.contains("rw"),
                _ => bail!("invalid --input {text:?}: use src=URI,dst=PATH[,opt=rw]"),
            }
        }
        let uri = uri.ok_or_else(|| anyhow::anyhow!("invalid --input {text:?}: no src="))?;
        (uri, dst, rw)
    } else {
        match text.rsplit_once(':') {
            Some((uri, dst)) if uri.contains("://") && dst.starts_with('/') => {
                (uri.to_string(), Some(dst.to_string()), false)
            }
            _ => (text.to_string(), None, false),
        }
    };
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        anyhow::anyhow!("invalid --input {text:?}: expected a URI such as file:///data")
    })?;
    let mut params = serde_json::Map::new();
    let (kind, default_target) = match scheme {
        "file" => {
            params.insert("SourcePath".into(), json!(rest));
            if read_write {
                params.insert("ReadWrite".into(), json!(true));
            }
            ("local", rest.to_string())
        }
        "http" | "https" => {
            params.insert("URL".into(), json!(uri));
            let name = rest
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("input");
            ("urlDownload", format!("/inputs/{name}"))
        }
        "s3" => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            params.insert("Bucket".into(), json!(bucket));
            params.insert("Key".into(), json!(key));
            ("s3", "/inputs".to_string())
        }
        "ipfs" => {
            params.insert("CID".into(), json!(rest));
            ("ipfs", "/inputs".to_string())
        }
        other => bail!("invalid --input {text:?}: unknown scheme {other}://"),
    };
    Ok(bacalhau_models::InputSource {
        source: SpecConfig {
            r#type: kind.into(),
            params,
        },
        alias: String::new(),
        target: dst.unwrap_or(default_target),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_in_upstreams_short_and_long_forms() {
        let local = parse_input("file:///data/in:/inputs").unwrap();
        assert_eq!(local.source.r#type, "local");
        assert_eq!(local.source.param_str("SourcePath"), Some("/data/in"));
        assert_eq!(local.target, "/inputs");
        let url = parse_input("https://example.org:8080/files/a.csv").unwrap();
        assert_eq!(url.source.r#type, "urlDownload");
        assert_eq!(url.target, "/inputs/a.csv");
        let s3 = parse_input("src=s3://bucket/prefix/,dst=/data").unwrap();
        assert_eq!(s3.source.param_str("Bucket"), Some("bucket"));
        assert_eq!(s3.target, "/data");
        let rw = parse_input("src=file:///scratch,dst=/out,opt=rw").unwrap();
        assert_eq!(rw.source.param("ReadWrite"), Some(&json!(true)));
        assert!(parse_input("just-a-path").is_err());
        assert!(parse_input("ftp://x/y").is_err());
    }
}
