//! The command tree, as upstream's CLI lays it out: `serve`, `job`, `node`, `agent`,
//! `config`, `version`. A flat list of clap definitions; each group's logic is in its module.

mod agent;
mod audit;
mod auth;
mod cluster;
mod config_cmd;
mod data;
mod examples;
mod get;
mod job;
mod metrics_text;
mod node;
mod run;
mod serve;

use crate::config::Config;
use anyhow::{Result, bail};
use bacalhau_client::{ApiClient, ClientOptions, Credentials};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

/// Compute over data: run Docker and WebAssembly jobs where the data is.
#[derive(Debug, Parser)]
#[command(
    name = "bacalhau",
    version = env!("BACALHAU_LONG_VERSION"),
    about,
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Records the `-c` values given before the subcommand (see [`leading_config`]).
    pub fn set_leading_config(&mut self, values: Vec<String>) {
        self.global.leading_config = values;
    }

    /// Whether this is a long-running server command (it logs at info level by default).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_) | Command::Devstack(_))
    }

    /// How to log: `Logging.Level` (or the deprecated `--log-level`) and `Logging.Mode`.
    /// Servers use the configured level; other commands only one set explicitly, else warn.
    pub fn logging(&self) -> Logging {
        let config = self.global.config().ok();
        let explicit = |key: &str| {
            config
                .as_ref()
                .filter(|c| c.set_keys.contains(key) || self.is_serve())
                .map(|c| c.string(key))
                .filter(|v| !v.is_empty())
        };
        let level = self
            .global
            .log_level
            .clone()
            .or_else(|| explicit("Logging.Level"))
            .unwrap_or_else(|| if self.is_serve() { "info" } else { "warn" }.into());
        let mode = config
            .as_ref()
            .map(|c| c.string("Logging.Mode"))
            .unwrap_or_default();
        Logging { level, mode }
    }
}

/// The log level and format, as upstream names them.
pub struct Logging {
    /// trace, debug, info, warn, error, fatal, panic, disabled, or zerolog's numbers.
    pub level: String,
    /// default, json or cmd.
    pub mode: String,
}

impl Logging {
    /// The level as a `tracing` filter directive.
    pub fn directive(&self) -> &'static str {
        match self.level.trim().to_ascii_lowercase().as_str() {
            "trace" | "-1" => "trace",
            "debug" | "0" => "debug",
            "warn" | "2" => "warn",
            "error" | "fatal" | "panic" | "3" | "4" | "5" => "error",
            "disabled" | "7" => "off",
            _ => "info",
        }
    }
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The API host: for clients the server to talk to (env BACALHAU_API_HOST), for `serve`
    /// the address to listen on. Clients take several, comma-separated (`h1,h2:1235`: the
    /// orchestrators of a cluster), tried in turn when one cannot be reached.
    #[arg(long, global = true, value_name = "HOST")]
    pub api_host: Option<String>,
    /// The API port (env BACALHAU_API_PORT; default 1234).
    #[arg(long, global = true, value_name = "PORT")]
    pub api_port: Option<u16>,
    /// A config file, or a `Key.Path=value` override (repeatable), e.g.
    /// `-c Compute.Orchestrators=host:1234` or `-c config.yaml`.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        value_name = "FILE|KEY=VALUE"
    )]
    pub config: Vec<String>,
    /// The data directory (env BACALHAU_DIR; default ~/.bacalhau).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Deprecated upstream in favour of `-c Logging.Level=...`; kept for old scripts.
    #[arg(long, global = true, hide = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// `-c` values given before the subcommand: clap keeps only those after it when both are
    /// given, and `bacalhau -c file.yaml serve -c Key=value` means both.
    #[arg(skip)]
    pub leading_config: Vec<String>,
}

/// The `-c/--config` values among the global options before the subcommand's name.
pub fn leading_config(args: impl IntoIterator<Item = String>) -> Vec<String> {
    const WITH_VALUE: &[&str] = &["--api-host", "--api-port", "--data-dir", "--log-level"];
    let mut found = Vec::new();
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-c" || arg == "--config" {
            found.extend(args.next());
        } else if let Some(value) = arg.strip_prefix("--config=") {
            found.push(value.to_string());
        } else if let Some(value) = arg.strip_prefix("-c").filter(|_| !arg.starts_with("--")) {
            found.push(value.trim_start_matches('=').to_string());
        } else if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            // The subcommand: what follows is its own.
            break;
        }
    }
    found
}

impl Global {
    /// The merged configuration, with the dedicated flags applied last.
    pub fn config(&self) -> Result<Config> {
        // Clap keeps the values before the subcommand only when none follow it.
        let sources = if self.config.starts_with(&self.leading_config) {
            self.config.clone()
        } else {
            let mut sources = self.leading_config.clone();
            sources.extend(self.config.iter().cloned());
            sources
        };
        let mut config = Config::load(&sources)?;
        if let Some(host) = &self.api_host {
            crate::config::set_path(&mut config.tree, "API.Host", host)?;
        }
        if let Some(port) = self.api_port {
            crate::config::set_path(&mut config.tree, "API.Port", &port.to_string())?;
        }
        if let Some(dir) = &self.data_dir {
            crate::config::set_path(&mut config.tree, "DataDir", &dir.to_string_lossy())?;
        }
        Ok(config)
    }

    /// A client of the configured API server, with the configured credentials and TLS.
    pub fn client(&self) -> Result<ApiClient> {
        let config = self.config()?;
        let ca_file = config.string("API.TLS.CAFile");
        let use_tls = config.flag("API.TLS.UseTLS") || !ca_file.is_empty();
        // Ours: several hosts, comma-separated (the orchestrators of a cluster), each tried
        // in turn when the one before cannot be reached.
        let port = config.string("API.Port");
        let mut urls: Vec<String> = config
            .string("API.Host")
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(|host| api_url(host, &port))
            .collect();
        if urls.is_empty() {
            urls.push(api_url("", &port));
        }
        if use_tls {
            for url in &mut urls {
                if let Some(rest) = url.strip_prefix("http://") {
                    *url = format!("https://{rest}");
                }
            }
        }
        let url = urls.remove(0);
        if !ca_file.is_empty() && !std::path::Path::new(&ca_file).is_file() {
            bail!("CA certificate file {ca_file:?} does not exist");
        }
        let options = ClientOptions {
            credentials: credentials(&config)?,
            ca_file: (!ca_file.is_empty()).then(|| ca_file.into()),
            insecure: config.flag("API.TLS.Insecure"),
        };
        Ok(ApiClient::with_options(&url, &options)?.with_alternatives(&urls)?)
    }
}

/// `host:port` with an address that means every interface turned into this machine's.
fn client_host(host_port: &str) -> String {
    match host_port.split_once(':') {
        Some(("" | "0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        _ => host_port.to_string(),
    }
}

/// The client's credentials: upstream's environment variables, else the config keys
/// `API.Auth.APIKey` or `API.Auth.Username` + `API.Auth.Password`; errors as upstream when only
/// half a pair or both kinds are given.
fn credentials(config: &Config) -> Result<Option<Credentials>> {
    let pick = |env: &str, key: &str| {
        std::env::var(env)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| config.string(key))
    };
    let api_key = pick("BACALHAU_API_KEY", "API.Auth.APIKey");
    let username = pick("BACALHAU_API_USERNAME", "API.Auth.Username");
    let password = pick("BACALHAU_API_PASSWORD", "API.Auth.Password");
    match (api_key.is_empty(), username.is_empty(), password.is_empty()) {
        (true, true, true) => Ok(None),
        (false, true, true) => Ok(Some(Credentials::ApiKey(api_key))),
        (true, false, false) => Ok(Some(Credentials::Basic { username, password })),
        (false, _, _) => bail!(
            "authentication error: can't use both BACALHAU_API_KEY and BACALHAU_API_USERNAME/BACALHAU_API_PASSWORD simultaneously"
        ),
        (true, false, true) => {
            bail!(
                "authentication error: BACALHAU_API_USERNAME provided but not BACALHAU_API_PASSWORD"
            )
        }
        (true, true, false) => {
            bail!(
                "authentication error: BACALHAU_API_PASSWORD provided but not BACALHAU_API_USERNAME"
            )
        }
    }
}

/// The URL of the API server from a host (a name, an address or a URL) and a port.
pub fn api_url(host: &str, port: &str) -> String {
    let host = host.trim_end_matches('/');
    // `host:port` (ours, for one of several hosts): the port given wins.
    if !host.contains("://") && host.matches(':').count() == 1 {
        return format!("http://{}", client_host(host));
    }
    if host.contains("://") {
        let after_scheme = host.split_once("://").map_or("", |(_, rest)| rest);
        return if after_scheme.contains(':') {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
    }
    // Listening on every interface means "this machine" to a client.
    let host = match host {
        "" | "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        other => other,
    };
    format!("http://{host}:{port}")
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a Bacalhau node: an orchestrator, a compute node, or both.
    Serve(serve::ServeArgs),
    /// Start an orchestrator and N compute nodes in one process, for demos and tests.
    Devstack(serve::DevstackArgs),
    /// Run Docker containers as jobs.
    #[command(subcommand)]
    Docker(run::DockerCommand),
    /// Run WebAssembly modules as jobs.
    #[command(subcommand)]
    Wasm(run::WasmCommand),
    /// Submit and manage jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Download a job's published results (as `job get`).
    Get(get::GetArgs),
    /// List and manage the cluster's nodes.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Ask the node the client talks to about itself.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Show or change the configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// How the server authenticates, and helpers for API users (hash a password).
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Add local files to the cluster, known by their CID (ours).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Export or verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The orchestrator cluster (ours): members and leader, joining and removing members.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Print the client's and the server's versions.
    Version(agent::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
struct CompletionArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// The command tree as `main` parses it: clap's derive plus each command's examples.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    examples::with_examples(Cli::command())
}

/// Runs the parsed command; the exit code says whether it (or the job it ran) succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let global = cli.global;
    // What loading the configuration skipped is said once, whatever the command.
    if let Ok(config) = global.config() {
        for warning in &config.warnings {
            eprintln!("Warning: {warning}");
        }
    }
    match cli.command {
        Command::Serve(args) => serve::run(&global, args).await,
        Command::Devstack(args) => serve::devstack(&global, args).await,
        Command::Job(command) => job::run(&global, command).await,
        Command::Get(args) => get::get(&global, args).await,
        Command::Docker(command) => run::docker(&global, command).await,
        Command::Wasm(command) => run::wasm(&global, command).await,
        Command::Node(command) => node::run(&global, command).await,
        Command::Agent(command) => agent::run(&global, command).await,
        Command::Config(command) => config_cmd::run(&global, command),
        Command::Auth(command) => auth::run(&global, command).await,
        Command::Audit(command) => audit::run(&global, command).await,
        Command::Cluster(command) => cluster::run(&global, command).await,
        Command::Data(command) => data::run(&global, command).await,
        Command::Version(args) => agent::version(&global, args).await,
        Command::Completion(args) => {
            // Written whole, so a closed pipe (`| head`) ends the output, not the process.
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command(), "bacalhau", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_before_the_subcommand_are_found() {
        let args = |line: &str| line.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            leading_config(args(
                "bacalhau -c a.yaml --api-port 9 --config=B=1 -cC=2 serve -c D=3"
            )),
            vec!["a.yaml", "B=1", "C=2"]
        );
        assert_eq!(
            leading_config(args("bacalhau --data-dir -c docker run busybox -- sh -c x")),
            Vec::<String>::new()
        );
        assert!(leading_config(args("bacalhau job list")).is_empty());
    }

    #[test]
    fn api_urls_from_hosts_ports_and_urls() {
        assert_eq!(api_url("0.0.0.0", "1234"), "http://127.0.0.1:1234");
        assert_eq!(api_url("example.org", "80"), "http://example.org:80");
        assert_eq!(api_url("http://h:9/", "1234"), "http://h:9");
        assert_eq!(api_url("https://h", "1234"), "https://h:1234");
        assert_eq!(api_url("10.0.0.2:4000", "1234"), "http://10.0.0.2:4000");
        assert_eq!(api_url("0.0.0.0:4000", "1234"), "http://127.0.0.1:4000");
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
