//! The command tree, as upstream's CLI lays it out: `serve`, `job`, `node`, `agent`,
//! `config`, `version`. A flat list of clap definitions; each group's logic is in its module.

mod agent;
mod config_cmd;
mod get;
mod job;
mod node;
mod run;
mod serve;

use crate::config::Config;
use anyhow::Result;
use bacalhau_api::ApiClient;
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

/// Compute over data: run Docker and WebAssembly jobs where the data is.
#[derive(Debug, Parser)]
#[command(name = "bacalhau", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether this is a long-running server command (it logs at info level by default).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_) | Command::Devstack(_))
    }
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The API host: for clients the server to talk to (env BACALHAU_API_HOST), for `serve`
    /// the address to listen on.
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
}

impl Global {
    /// The merged configuration, with the dedicated flags applied last.
    pub fn config(&self) -> Result<Config> {
        let mut config = Config::load(&self.config)?;
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

    /// A client of the configured API server.
    pub fn client(&self) -> Result<ApiClient> {
        let config = self.config()?;
        Ok(ApiClient::new(&api_url(
            &config.string("API.Host"),
            &config.string("API.Port"),
        ))?)
    }
}

/// The URL of the API server from a host (a name, an address or a URL) and a port.
pub fn api_url(host: &str, port: &str) -> String {
    let host = host.trim_end_matches('/');
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
    /// Print the client's and the server's versions.
    Version(agent::VersionArgs),
}

/// Runs the parsed command; the exit code says whether it (or the job it ran) succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let global = cli.global;
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
        Command::Version(args) => agent::version(&global, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_from_hosts_ports_and_urls() {
        assert_eq!(api_url("0.0.0.0", "1234"), "http://127.0.0.1:1234");
        assert_eq!(api_url("example.org", "80"), "http://example.org:80");
        assert_eq!(api_url("http://h:9/", "1234"), "http://h:9");
        assert_eq!(api_url("https://h", "1234"), "https://h:1234");
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
