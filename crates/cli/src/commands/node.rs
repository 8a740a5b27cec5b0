//! `bacalhau node ...`: list, describe, approve, reject, delete.

use super::Global;
use crate::output::{self, Format};
use anyhow::Result;
use bacalhau_models::NodeState;
use bacalhau_models::resources::format_bytes;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the cluster's nodes.
    List(ListArgs),
    /// Show one node.
    Describe(DescribeArgs),
    /// Let a pending node receive work.
    Approve(ActionArgs),
    /// Refuse a node; it will not be able to rejoin.
    Reject(ActionArgs),
    /// Forget a node.
    Delete(ActionArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Column groups to show besides ID, type, approval and status: labels, version,
    /// features, capacity (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "labels,capacity")]
    show: Vec<String>,
    /// Only nodes whose labels match this selector, e.g. `zone=eu,gpu in (a100)`.
    #[arg(long)]
    labels: Option<String>,
    /// Only nodes with this approval: approved, pending or rejected.
    #[arg(long)]
    filter_approval: Option<String>,
    /// Only nodes with this connection status: connected or disconnected.
    #[arg(long)]
    filter_status: Option<String>,
    /// How many nodes per page (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Continue a previous listing.
    #[arg(long)]
    next_token: Option<String>,
    /// Sort by id, type, available_cpu, available_memory, available_disk, available_gpu or
    /// status.
    #[arg(long)]
    order_by: Option<String>,
    /// Reverse the order.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    order_reversed: bool,
    #[command(flatten)]
    output: output::TableOutput,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The node's ID or a unique prefix.
    id: String,
    /// Output format (the default is YAML).
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// The node's ID or a unique prefix.
    id: String,
    /// Why (kept with the decision).
    #[arg(short, long, default_value = "")]
    message: String,
}

pub async fn run(global: &Global, command: NodeCommand) -> Result<ExitCode> {
    let client = global.client()?;
    match command {
        NodeCommand::List(args) => {
            let mut query = bacalhau_client::client::ListQuery {
                limit: args.limit,
                next_token: args.next_token.clone().unwrap_or_default(),
                order_by: args.order_by.clone().unwrap_or_default(),
                reverse: args.order_reversed,
                ..Default::default()
            };
            for (name, value, allowed) in [
                (
                    "filter-approval",
                    &args.filter_approval,
                    &["approved", "pending", "rejected"][..],
                ),
                (
                    "filter-status",
                    &args.filter_status,
                    &["connected", "disconnected"][..],
                ),
            ] {
                if let Some(value) = value {
                    if !allowed.contains(&value.to_ascii_lowercase().as_str()) {
                        anyhow::bail!(
                            "invalid --{name} {value:?}: use one of {}",
                            allowed.join(", ")
                        );
                    }
                    query
                        .filters
                        .push((name.to_string(), value.to_ascii_lowercase()));
                }
            }
            if let Some(labels) = &args.labels {
                query.filters.push(("labels".into(), labels.clone()));
            }
            let page = client.list_nodes_with(&query).await?;
            if args.output.is_tabular() {
                args.output.print(&nodes_table(&page.nodes, &args.show));
                if !page.next_token.is_empty() && args.output.output == Format::Table {
                    outln!(
                        "\nTo fetch more records use: --next-token {}",
                        page.next_token
                    );
                }
            } else {
                output::print_structured(&page.nodes, args.output.output, args.output.pretty)?;
            }
        }
        NodeCommand::Describe(args) => {
            let node = client.get_node(&args.id).await?.node;
            let format = if args.output == Format::Table {
                Format::Yaml
            } else {
                args.output
            };
            output::print_structured(&node, format, args.pretty)?;
        }
        NodeCommand::Approve(args) => act(&client, &args, "approve", "approved").await?,
        NodeCommand::Reject(args) => act(&client, &args, "reject", "rejected").await?,
        NodeCommand::Delete(args) => act(&client, &args, "delete", "deleted").await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn act(
    client: &bacalhau_client::ApiClient,
    args: &ActionArgs,
    action: &str,
    done: &str,
) -> Result<()> {
    client.update_node(&args.id, action, &args.message).await?;
    outln!("Node {} {done}.", args.id);
    Ok(())
}

/// Upstream's node table: ID, type, approval and status, then the `--show` groups.
fn nodes_table(nodes: &[NodeState], show: &[String]) -> comfy_table::Table {
    let shows = |group: &str| show.iter().any(|s| s.eq_ignore_ascii_case(group));
    let mut headers = vec!["ID", "Type", "Approval", "Status"];
    if shows("labels") {
        headers.push("Labels");
    }
    if shows("version") {
        headers.extend(["Version", "Architecture", "OS"]);
    }
    if shows("features") {
        headers.extend(["Engines", "Inputs From", "Outputs"]);
    }
    if shows("capacity") {
        headers.extend(["CPU", "Memory", "Disk", "GPU"]);
    }
    let mut table = output::table(&headers);
    for node in nodes {
        let info = &node.info;
        let compute = &info.compute_node_info;
        let is_compute = info.node_type == bacalhau_models::node::NodeType::Compute;
        let pair = |free: String, max: String| {
            if is_compute {
                format!("{free} / {max}")
            } else {
                String::new()
            }
        };
        let mut row = vec![
            info.node_id.to_string(),
            info.node_type.to_string(),
            node.membership.to_string(),
            node.connection_state.status.to_string(),
        ];
        if shows("labels") {
            row.push(
                info.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if shows("version") {
            let version = &info.bacalhau_version;
            row.extend([
                version.git_version.clone(),
                version.goarch.clone(),
                version.goos.clone(),
            ]);
        }
        if shows("features") {
            row.extend([
                compute.execution_engines.join(" "),
                compute.storage_sources.join(" "),
                compute.publishers.join(" "),
            ]);
        }
        if shows("capacity") {
            row.extend([
                pair(
                    format!("{:.1}", compute.available_capacity.cpu),
                    format!("{:.1}", compute.max_capacity.cpu),
                ),
                pair(
                    format_bytes(compute.available_capacity.memory),
                    format_bytes(compute.max_capacity.memory),
                ),
                pair(
                    format_bytes(compute.available_capacity.disk),
                    format_bytes(compute.max_capacity.disk),
                ),
                pair(
                    compute.available_capacity.gpu.to_string(),
                    compute.max_capacity.gpu.to_string(),
                ),
            ]);
        }
        table.add_row(row);
    }
    table
}
