//! `bacalhau docker run` and `bacalhau wasm run`: build a one-task job from flags, as
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
    /// How many nodes run the job (`--concurrency` is upstream's old name).
    #[arg(long, alias = "concurrency", default_value_t = 1)]
    count: i64,
    /// `any`: run on as many matching nodes as `--count` (a batch job); `all`: run on every
    /// matching node (an ops job).
    #[arg(long, default_value = "any", value_parser = ["any", "all"])]
    target: String,
    /// Node label requirements, e.g. `zone=eu,gpu in (a100)` (`-s/--selector` is upstream's
    /// old name).
    #[arg(long = "constraints", alias = "selector", short = 's')]
    selector: Option<String>,
    /// The name of the job's task.
    #[arg(long, default_value = "main")]
    task_name: String,
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
    /// A domain an `--network=http` job may reach (`example.org`, `.example.org` for its
    /// subdomains too). Repeatable or comma-separated.
    #[arg(long = "domain", value_delimiter = ',')]
    domains: Vec<String>,
    /// An input, as upstream writes it: `URI[:DST]` or `src=URI,dst=DST[,opt=rw]`, where URI is
    /// `file:///host/path` (a path the node allow-lists), `https://...`, `s3://bucket/key` or
    /// `ipfs://CID`. Repeatable.
    #[arg(short = 'i', long = "input")]
    inputs: Vec<String>,
    /// A result path, `NAME:PATH`: what the task writes under PATH is published as NAME.
    /// Repeatable; needs a publisher.
    #[arg(short = 'o', long = "output")]
    outputs: Vec<String>,
    /// Where results go: `local` (kept on the node, fetched with `bacalhau job get`), `noop`,
    /// or `s3://bucket/key[,opt=region=...,opt=endpoint=...,opt=encoding=plain]`.
    #[arg(short = 'p', long = "publisher")]
    publisher: Option<String>,
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
    /// Modules the entry module imports from: the target of an `--input`, or a local file as
    /// `FILE:TARGET` (sent inline); each is linked under its target. Repeatable or
    /// comma-separated.
    #[arg(short = 'I', long = "import-modules", value_delimiter = ',')]
    import_modules: Vec<String>,
    #[command(flatten)]
    job: JobFlags,
    /// The module: a local `.wasm` file (or `.wat` text, compiled here), sent inline with the
    /// job, an `http(s)://` URL the node downloads, or `ipfs://CID`.
    module: String,
    /// The module's arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Largest module `wasm run` sends inline.
const MAX_INLINE_MODULE: u64 = 16 * 1024 * 1024;

pub async fn wasm(global: &Global, command: WasmCommand) -> Result<ExitCode> {
    let WasmCommand::Run(args) = command;
    let (module, entry_module) = if ["http://", "https://", "ipfs://"]
        .iter()
        .any(|scheme| args.module.starts_with(scheme))
    {
        // The node fetches it into /module; a lone file there is the entry module.
        let mut input = parse_input(&args.module)?;
        input.target = "/module".into();
        (input, "/module".to_string())
    } else {
        inline_module(std::path::Path::new(&args.module))?
    };
    let mut params = serde_json::Map::new();
    params.insert("EntryModule".into(), json!(entry_module));
    params.insert("Entrypoint".into(), json!(args.entry_point));
    if !args.args.is_empty() {
        params.insert("Parameters".into(), json!(args.args));
    }
    let mut imports = Vec::new();
    let mut import_inputs = Vec::new();
    for import in &args.import_modules {
        match import.rsplit_once(':') {
            Some((file, target)) if std::path::Path::new(file).is_file() => {
                let (mut input, _) = inline_module(std::path::Path::new(file))?;
                input.target = target.to_string();
                import_inputs.push(input);
                imports.push(target.to_string());
            }
            _ => imports.push(import.clone()),
        }
    }
    if !imports.is_empty() {
        params.insert("ImportModules".into(), json!(imports));
    }
    let mut job = build_job(&args.job, "wasm", params)?;
    if let Some(task) = job.tasks.first_mut() {
        task.input_sources.push(module);
        task.input_sources.extend(import_inputs);
    }
    submit(global, &job, &args.job.run).await
}

/// A local module as an inline input at `/<file name>`, and that path.
fn inline_module(path: &std::path::Path) -> Result<(bacalhau_models::InputSource, String)> {
    use base64::Engine as _;
    let size = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read module {}: {e}", path.display()))?
        .len();
    if size > MAX_INLINE_MODULE {
        bail!(
            "module {} is {size} bytes; modules sent inline may be at most {MAX_INLINE_MODULE}; serve it over http and pass the URL",
            path.display()
        );
    }
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read module {}: {e}", path.display()))?;
    // WebAssembly text is compiled here, so the node (ours or upstream's) gets a binary module;
    // a binary module passes through unchanged.
    let bytes = wat::Parser::new()
        .parse_bytes(Some(path), &bytes)
        .map_err(|e| anyhow::anyhow!("module {} is not WebAssembly: {e}", path.display()))?
        .into_owned();
    let is_text = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("wat"));
    let file_name = if is_text {
        path.with_extension("wasm")
            .file_name()
            .map(ToOwned::to_owned)
    } else {
        path.file_name().map(ToOwned::to_owned)
    };
    let name = file_name
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "main.wasm".into());
    let url = format!(
        "data:application/wasm;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    let input = bacalhau_models::InputSource {
        source: SpecConfig {
            r#type: "inline".into(),
            params: serde_json::Map::from_iter([("URL".to_string(), Value::String(url))]),
        },
        alias: String::new(),
        target: format!("/{name}"),
    };
    Ok((input, name))
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
    let result_paths = flags
        .outputs
        .iter()
        .map(|o| parse_output(o))
        .collect::<Result<Vec<_>>>()?;
    let publisher = match &flags.publisher {
        Some(text) => parse_publisher(text)?,
        None => SpecConfig::default(),
    };
    if flags.task_name.trim().is_empty() {
        bail!("--task-name cannot be empty");
    }
    Ok(Job {
        name: flags.name.clone().unwrap_or_default(),
        namespace: flags.namespace.clone().unwrap_or_default(),
        r#type: if flags.target == "all" {
            "ops"
        } else {
            "batch"
        }
        .into(),
        priority: flags.priority,
        count: flags.count,
        constraints,
        labels,
        tasks: vec![Task {
            name: flags.task_name.clone(),
            engine: SpecConfig {
                r#type: engine.into(),
                params,
            },
            env,
            input_sources,
            result_paths,
            publisher,
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
                domains: flags.domains.clone(),
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

fn canonical_network(text: &str) -> Result<bacalhau_models::task::NetworkType> {
    bacalhau_models::task::NetworkType::parse(text).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --network {text:?}: use one of {}",
            bacalhau_models::task::NetworkType::names()
        )
    })
}

/// `(key, value)` pairs of a flag value; a bare field has an empty key.
type Fields = Vec<(String, String)>;

/// Splits a long-form flag value, `key=value,...`, into its fields; `opt=k=v` fields become
/// options.
fn long_form(text: &str, flag: &str) -> Result<(Fields, Fields)> {
    let mut fields = Vec::new();
    let mut options = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // A URI may itself hold `=` (a query string): it is a bare field.
        let Some((key, value)) = part.split_once('=').filter(|(key, _)| !key.contains('/')) else {
            fields.push((String::new(), part.to_string()));
            continue;
        };
        match key.to_ascii_lowercase().as_str() {
            "opt" | "option" | "options" => {
                let (name, value) = value.split_once('=').unwrap_or((value, "true"));
                options.push((name.to_ascii_lowercase(), value.to_string()));
            }
            other => fields.push((other.to_string(), value.to_string())),
        }
    }
    if fields.is_empty() {
        bail!("invalid {flag} {text:?}: no URI");
    }
    Ok((fields, options))
}

/// Parses `-i`: `URI[:DST]` or `src=URI,dst=DST[,opt=k=v...]`, as upstream: `file:///path`
/// (an allow-listed host path; `opt=rw=true` to write), `http(s)://...`, `s3://bucket/key`
/// (`opt=region=`, `opt=endpoint=`, `opt=filter=`, `opt=version-id=`, `opt=checksum-256=`)
/// and `ipfs://CID`. The target defaults to `/inputs`.
fn parse_input(text: &str) -> Result<bacalhau_models::InputSource> {
    let (fields, options) = long_form(text, "--input")?;
    let mut uri = None;
    let mut dst = None;
    for (key, value) in fields {
        match key.as_str() {
            "" | "src" | "source" => {
                // `URI:DST`: the destination is what follows the last `:` after the scheme.
                let after_scheme = value.split_once("://").map_or(0, |(s, _)| s.len() + 3);
                match value[after_scheme..].rsplit_once(':') {
                    Some((_, path)) if key.is_empty() && path.starts_with('/') => {
                        let cut = value.len() - path.len() - 1;
                        dst = Some(path.to_string());
                        uri = Some(value[..cut].to_string());
                    }
                    _ => uri = Some(value),
                }
            }
            "dst" | "target" | "destination" => dst = Some(value),
            other => bail!("invalid --input {text:?}: unexpected key {other:?}"),
        }
    }
    let uri = uri.ok_or_else(|| anyhow::anyhow!("invalid --input {text:?}: no src="))?;
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        anyhow::anyhow!("invalid --input {text:?}: expected a URI such as file:///data")
    })?;
    let mut params = serde_json::Map::new();
    let option = |names: &[&str]| {
        options
            .iter()
            .find(|(name, _)| names.contains(&name.as_str()))
            .map(|(_, value)| value.clone())
    };
    let allowed: &[&str] = match scheme {
        "file" => &["rw", "read-write", "read_write", "readwrite"],
        "s3" => &[
            "endpoint",
            "region",
            "filter",
            "versionid",
            "version-id",
            "version_id",
            "checksum-256",
            "checksum256",
            "checksum_256",
        ],
        _ => &[],
    };
    if let Some((name, _)) = options.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
        bail!("invalid --input {text:?}: option {name:?} does not apply to {scheme}:// inputs");
    }
    let kind = match scheme {
        "file" => {
            params.insert("SourcePath".into(), json!(rest));
            let rw =
                option(allowed).is_some_and(|v| v.eq_ignore_ascii_case("true") || v.is_empty());
            if rw {
                params.insert("ReadWrite".into(), json!(true));
            }
            "local"
        }
        "http" | "https" => {
            params.insert("URL".into(), json!(uri));
            "urlDownload"
        }
        "s3" => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            params.insert("Bucket".into(), json!(bucket));
            params.insert("Key".into(), json!(key));
            for (param, names) in [
                ("Endpoint", &["endpoint"][..]),
                ("Region", &["region"][..]),
                ("Filter", &["filter"][..]),
                ("VersionID", &["versionid", "version-id", "version_id"][..]),
                (
                    "ChecksumSHA256",
                    &["checksum-256", "checksum256", "checksum_256"][..],
                ),
            ] {
                if let Some(value) = option(names) {
                    params.insert(param.into(), json!(value));
                }
            }
            "s3"
        }
        "ipfs" => {
            params.insert("CID".into(), json!(rest));
            "ipfs"
        }
        other => bail!("invalid --input {text:?}: unknown scheme {other}://"),
    };
    Ok(bacalhau_models::InputSource {
        source: SpecConfig {
            r#type: kind.into(),
            params,
        },
        alias: uri.clone(),
        target: dst.unwrap_or_else(|| "/inputs".into()),
    })
}

/// Parses `-o NAME:PATH`.
fn parse_output(text: &str) -> Result<bacalhau_models::task::ResultPath> {
    match text.split_once(':') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() && !path.contains(':') => {
            Ok(bacalhau_models::task::ResultPath {
                name: name.to_string(),
                path: path.to_string(),
            })
        }
        _ => bail!("invalid --output {text:?}: use NAME:PATH, e.g. outputs:/outputs"),
    }
}

/// Parses `-p`: a type (`local`, `noop`) or `s3://bucket/key` with `opt=k=v` params.
fn parse_publisher(text: &str) -> Result<SpecConfig> {
    let (fields, options) = long_form(text, "--publisher")?;
    let mut uri = None;
    for (key, value) in fields {
        match key.as_str() {
            "" | "target" | "dst" | "destination" => uri = Some(value),
            other => bail!("invalid --publisher {text:?}: unexpected key {other:?}"),
        }
    }
    let uri = uri.unwrap_or_default();
    let mut spec = match uri.split_once("://") {
        None => SpecConfig::of_type(&uri),
        Some(("s3", rest)) => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            let mut spec = SpecConfig::of_type("s3");
            spec.params.insert("Bucket".into(), json!(bucket));
            spec.params.insert("Key".into(), json!(key));
            spec
        }
        Some((other, _)) => bail!("invalid --publisher {text:?}: unknown scheme {other}://"),
    };
    for (name, value) in options {
        let canonical = ["Bucket", "Key", "Endpoint", "Region", "Encoding"]
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&name))
            .map_or(name.clone(), |k| k.to_string());
        spec.params.insert(canonical, json!(value));
    }
    Ok(spec)
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
        let url = parse_input("https://example.org/files/a.csv").unwrap();
        assert_eq!(url.source.r#type, "urlDownload");
        assert_eq!(
            url.source.param_str("URL"),
            Some("https://example.org/files/a.csv")
        );
        assert_eq!(url.target, "/inputs");
        let s3 = parse_input("s3://bucket/data/*:/data,opt=region=eu-west-1").unwrap();
        assert_eq!(s3.source.param_str("Key"), Some("data/*"));
        assert_eq!(s3.source.param_str("Region"), Some("eu-west-1"));
        assert_eq!(s3.target, "/data");
        assert!(parse_input("s3://b/k,opt=colour=red").is_err());
        let s3 = parse_input("src=s3://bucket/prefix/,dst=/data").unwrap();
        assert_eq!(s3.source.param_str("Bucket"), Some("bucket"));
        assert_eq!(s3.target, "/data");
        let rw = parse_input("src=file:///scratch,dst=/out,opt=rw=true").unwrap();
        assert_eq!(rw.source.param("ReadWrite"), Some(&json!(true)));
        assert!(parse_input("just-a-path").is_err());
        assert!(parse_input("ftp://x/y").is_err());
    }

    #[test]
    fn outputs_and_publishers() {
        let output = parse_output("outputs:/outputs").unwrap();
        assert_eq!(
            (output.name.as_str(), output.path.as_str()),
            ("outputs", "/outputs")
        );
        assert!(parse_output("/outputs").is_err());
        assert_eq!(
            parse_publisher("local").unwrap(),
            SpecConfig::of_type("local")
        );
        let s3 = parse_publisher(
            "s3://bucket/out/{jobID},opt=encoding=plain,opt=endpoint=http://h:9000",
        )
        .unwrap();
        assert_eq!(s3.r#type, "s3");
        assert_eq!(s3.param_str("Key"), Some("out/{jobID}"));
        assert_eq!(s3.param_str("Encoding"), Some("plain"));
        assert_eq!(s3.param_str("Endpoint"), Some("http://h:9000"));
    }
}
