//! `bacalhau agent ...` and `bacalhau version`: what the node the client talks to says of itself.

use super::Global;
use crate::output::{self, Format};
use anyhow::Result;
use bacalhau_models::node::BuildVersionInfo;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Check that the agent is up.
    Alive(FormatArgs),
    /// The agent's version.
    Version(FormatArgs),
    /// The agent's node identity and capabilities.
    Node(FormatArgs),
    /// The agent's effective configuration (secrets redacted).
    Config(FormatArgs),
    /// The agent's debug information.
    Debug(FormatArgs),
    /// The agent's figures (its `/metrics`): jobs by state, queue depth, nodes, executions,
    /// capacity, latencies. Histograms show their count and estimated p50/p99.
    Metrics(MetricsArgs),
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Only series whose name contains this (e.g. `jobs`, `compute_capacity`).
    #[arg(long)]
    filter: Option<String>,
    /// Print the Prometheus text as served.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    output: output::TableOutput,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format (the default is YAML).
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the client's version; do not ask the server.
    #[arg(long = "client", alias = "client-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    client_only: bool,
    #[command(flatten)]
    output: output::TableOutput,
}

/// The version this binary was built as.
pub fn client_version() -> BuildVersionInfo {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    BuildVersionInfo {
        major: parts.next().unwrap_or_default().to_string(),
        minor: parts.next().unwrap_or_default().to_string(),
        git_version: format!("v{version}"),
        git_commit: env!("BACALHAU_GIT_COMMIT").to_string(),
        build_date: String::new(),
        goos: std::env::consts::OS.to_string(),
        goarch: match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string(),
    }
}

pub async fn run(global: &Global, command: AgentCommand) -> Result<ExitCode> {
    let client = global.client()?;
    let (value, args) = match command {
        AgentCommand::Metrics(args) => return metrics(&client.metrics().await?, &args),
        AgentCommand::Alive(args) => (serde_json::to_value(client.alive().await?)?, args),
        AgentCommand::Version(args) => (serde_json::to_value(client.version().await?)?, args),
        AgentCommand::Node(args) => (serde_json::to_value(client.node_info().await?)?, args),
        AgentCommand::Config(args) => (client.config().await?, args),
        AgentCommand::Debug(args) => (serde_json::to_value(client.debug().await?)?, args),
    };
    let format = if args.output == Format::Table {
        Format::Yaml
    } else {
        args.output
    };
    output::print_structured(&value, format, args.pretty)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn version(global: &Global, args: VersionArgs) -> Result<ExitCode> {
    let client_version = client_version();
    let server_version = if args.client_only {
        None
    } else {
        match global.client()?.version().await {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("Warning: cannot get the server's version: {e}");
                None
            }
        }
    };
    if !args.output.is_tabular() {
        let value = serde_json::json!({
            "ClientVersion": client_version,
            "ServerVersion": server_version,
        });
        output::print_structured(&value, args.output.output, args.output.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["Client", "Server"]);
    table.add_row(vec![
        client_version.git_version,
        server_version.map(|v| v.git_version).unwrap_or_default(),
    ]);
    args.output.print(&table);
    Ok(ExitCode::SUCCESS)
}

fn metrics(text: &str, args: &MetricsArgs) -> Result<ExitCode> {
    if args.raw {
        out!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut figures = super::metrics_text::summarize(text);
    if let Some(filter) = &args.filter {
        figures.retain(|f| f.name.contains(filter.as_str()));
    }
    if !args.output.is_tabular() {
        output::print_structured(&figures, args.output.output, args.output.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["Name", "Labels", "Value"]);
    for figure in figures {
        table.add_row(vec![figure.name, figure.labels, figure.value]);
    }
    args.output.print(&table);
    Ok(ExitCode::SUCCESS)
}
