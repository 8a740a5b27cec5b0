//! Chooses nodes for a job: filters to available nodes, runs the feasibility checks, ranks the
//! rest, and counts rejections per reason for the "not enough nodes" message.

use super::{NodeView, feasible, rank};
use bacalhau_models::{Execution, Job, NodeId, Timestamp, node};
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of node selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Suitable nodes, best first.
    pub ranked: Vec<NodeId>,
    /// How many nodes are compute nodes, approved and connected.
    pub available: usize,
    /// Rejection reason → nodes rejected for it.
    pub rejections: BTreeMap<String, Vec<NodeId>>,
    /// When the last of the disconnected nodes that could run the job counts as lost, if any
    /// is still within its grace period: until then the job may wait for them.
    pub reconnecting_until: Option<Timestamp>,
}

impl Selection {
    /// Upstream's message when fewer suitable nodes exist than the job asks for.
    pub fn not_enough_nodes(&self, requested: usize) -> String {
        let mut message = format!(
            "not enough nodes to run job. requested: {requested}, available: {}, suitable: {}.",
            self.available,
            self.ranked.len()
        );
        for (reason, nodes) in &self.rejections {
            if nodes.len() == 1 {
                message.push_str(&format!("\n• Node {}: {reason}", nodes[0]));
            } else {
                message.push_str(&format!(
                    "\n• {} of {} nodes: {reason}",
                    nodes.len(),
                    self.available
                ));
            }
        }
        message
    }
}

/// How many nodes a placement asks for: `Some(n)` for a batch or service job that needs `n`
/// more executions, `None` for ops and daemon jobs, which want every suitable node.
pub type Wanted = Option<usize>;

/// How many feasible nodes are ranked when `wanted` are needed out of `available`: the
/// wanted ones plus `max(2, log2(available))` to choose among, as Nomad limits its batch
/// placements (the power of two choices). Ranking every node of a 10 000-node cluster for each
/// job costs milliseconds; a sample of this size keeps placement flat while still steering
/// jobs to the emptier of several nodes.
fn candidate_limit(wanted: usize, available: usize) -> usize {
    let spare = (usize::BITS - available.leading_zeros()).max(2) as usize;
    wanted + spare
}

/// Whether a job's placement depends on which node holds its inputs: then every node is
/// ranked, so the holder is never missed.
fn reads_located_data(job: &Job) -> bool {
    job.task().is_some_and(|task| {
        task.input_sources.iter().any(|input| {
            matches!(
                input.source.r#type.as_str(),
                "local" | "localDirectory" | "s3" | "ipfs"
            )
        })
    })
}

/// Where this job starts looking: a hash of its ID, so a burst of jobs spreads over the
/// cluster while one job's evaluations look in the same order.
fn start_offset(job: &Job, len: usize) -> usize {
    use std::hash::{DefaultHasher, Hash, Hasher};
    if len == 0 {
        return 0;
    }
    let mut hasher = DefaultHasher::new();
    job.id.hash(&mut hasher);
    (hasher.finish() % len as u64) as usize
}

/// Ranks the nodes that may run `job`, skipping those in `exclude` (already busy with it).
/// With `wanted` set, only a sample of the feasible nodes is ranked (see `candidate_limit`).
pub fn select_nodes(
    job: &Job,
    executions: &[Execution],
    nodes: &[NodeView],
    exclude: &BTreeSet<NodeId>,
    wanted: Wanted,
) -> Selection {
    let checks = feasible::pipeline();
    let rankers = rank::pipeline();
    let mut selection = Selection::default();
    // Only approved, connected compute nodes count as available, as upstream counts them.
    let is_available = |node: &NodeView| {
        node.state.info.node_type == node::NodeType::Compute
            && node.state.membership == node::Membership::Approved
            && node.connected
    };
    selection.available = nodes.iter().filter(|n| is_available(n)).count();
    let limit = match wanted {
        Some(wanted) if !reads_located_data(job) => candidate_limit(wanted, selection.available),
        _ => usize::MAX,
    };
    let offset = start_offset(job, nodes.len());
    let mut scored: Vec<(f64, &NodeId)> = Vec::new();
    for node in nodes[offset..].iter().chain(&nodes[..offset]) {
        if scored.len() >= limit {
            break;
        }
        if !is_available(node) {
            if let Some(until) = node.returns_by
                && node.state.info.node_type == node::NodeType::Compute
                && node.state.membership == node::Membership::Approved
                && !exclude.contains(node.id())
                && checks
                    .iter()
                    .all(|check| check.check(job, executions, node).is_ok())
            {
                selection.reconnecting_until = selection.reconnecting_until.max(Some(until));
            }
            continue;
        }
        if exclude.contains(node.id()) {
            selection
                .rejections
                .entry("already running this job".to_string())
                .or_default()
                .push(node.id().clone());
            continue;
        }
        let rejected = checks
            .iter()
            .find_map(|check| check.check(job, executions, node).err());
        if let Some(reason) = rejected {
            selection
                .rejections
                .entry(reason)
                .or_default()
                .push(node.id().clone());
            continue;
        }
        let score: f64 = rankers
            .iter()
            .map(|(ranker, weight)| weight * ranker.score(job, executions, node))
            .sum();
        scored.push((score, node.id()));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    selection.ranked = scored.into_iter().map(|(_, id)| id.clone()).collect();
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_grows_with_the_log_of_the_cluster() {
        assert_eq!(candidate_limit(1, 3), 3);
        assert_eq!(candidate_limit(1, 10_000), 15);
        assert_eq!(candidate_limit(3, 0), 5);
    }
}
