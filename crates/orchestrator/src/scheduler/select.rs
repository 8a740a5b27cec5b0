//! Chooses nodes for a job: filters to available nodes, runs the feasibility checks, ranks the
//! rest, and counts rejections per reason for the "not enough nodes" message.

use super::{NodeView, feasible, rank};
use bacalhau_models::{Execution, Job, NodeId, node};
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

/// Ranks the nodes that may run `job`, skipping those in `exclude` (already busy with it).
pub fn select_nodes(
    job: &Job,
    executions: &[Execution],
    nodes: &[NodeView],
    exclude: &BTreeSet<NodeId>,
) -> Selection {
    let checks = feasible::pipeline();
    let rankers = rank::pipeline();
    let mut selection = Selection::default();
    let mut scored: Vec<(f64, &NodeId)> = Vec::new();
    for node in nodes {
        let info = &node.state.info;
        // Only approved, connected compute nodes count as available, as upstream counts them.
        if info.node_type != "Compute"
            || node.state.membership != node::membership::APPROVED
            || !node.connected
        {
            continue;
        }
        selection.available += 1;
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
