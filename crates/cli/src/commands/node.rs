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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
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
            let nodes = client.list_nodes().await?.nodes;
            if args.output == Format::Table {
                print_nodes(&nodes);
            } else {
                output::print_structured(&nodes, args.output, args.pretty)?;
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
    client: &bacalhau_api::ApiClient,
    args: &ActionArgs,
    action: &str,
    done: &str,
) -> Result<()> {
    client.update_node(&args.id, action, &args.message).await?;
    outln!("Node {} {done}.", args.id);
    Ok(())
}

fn print_nodes(nodes: &[NodeState]) {
    let mut table = output::table(&[
        "ID", "Type", "Approval", "Status", "Labels", "CPU", "Memory", "Disk", "GPU",
    ]);
    for node in nodes {
        let info = &node.info;
        let compute = &info.compute_node_info;
        let is_compute = info.node_type == "Compute";
        let pair = |free: String, max: String| {
            if is_compute {
                format!("{free} / {max}")
            } else {
                String::new()
            }
        };
        table.add_row(vec![
            info.node_id.to_string(),
            info.node_type.clone(),
            node.membership.clone(),
            node.connection_state.status.clone(),
            info.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
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
    output::print_table(&table);
}
