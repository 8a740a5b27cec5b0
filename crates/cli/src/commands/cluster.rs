//! `bacalhau cluster ...` (ours): the orchestrator cluster (Raft group) as the member the
//! client talks to sees it, and changes to its membership.

use super::Global;
use crate::output::{self, TableOutput};
use anyhow::Result;
use bacalhau_client::apimodels::ClusterStatus;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Members, leader, term, applied index and how far each member lags.
    Status(StatusArgs),
    /// Add the orchestrator whose cluster listener is at ADDRESS (host:port) as a member.
    Join(JoinArgs),
    /// Remove a member (by name, ID or cluster address).
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    output: TableOutput,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The new member's cluster address (its Orchestrator.Cluster.Advertise), host:port.
    address: String,
    #[command(flatten)]
    output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The member's name, ID or cluster address.
    member: String,
    #[command(flatten)]
    output: TableOutput,
}

pub async fn run(global: &Global, command: ClusterCommand) -> Result<ExitCode> {
    let client = global.client()?;
    let (status, output) = match command {
        ClusterCommand::Status(args) => (client.cluster_status().await?, args.output),
        ClusterCommand::Join(args) => {
            (client.add_cluster_member(&args.address).await?, args.output)
        }
        ClusterCommand::Remove(args) => (
            client.remove_cluster_member(&args.member).await?,
            args.output,
        ),
    };
    print(&status, &output)?;
    Ok(ExitCode::SUCCESS)
}

fn print(status: &ClusterStatus, output: &TableOutput) -> Result<()> {
    if !output.is_tabular() {
        return output::print_structured(status, output.output, output.pretty);
    }
    let optional = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    outln!(
        "Cluster {}: leader {}, term {}, asked {} (applied {} of {})",
        status.name,
        status.leader.as_deref().unwrap_or("unknown"),
        status.term,
        status.this_member,
        optional(status.applied_index),
        optional(status.last_log_index),
    );
    let mut table = output::table(&["name", "role", "address", "api", "matched", "lag", "id"]);
    for member in &status.members {
        table.add_row(vec![
            member.name.clone(),
            member.role.clone(),
            member.address.clone(),
            member.api_address.clone(),
            optional(member.matched_index),
            optional(member.lag),
            member.id.clone(),
        ]);
    }
    output.print(&table);
    Ok(())
}
