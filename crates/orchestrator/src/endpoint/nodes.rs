//! Nodes as the API sees them: listed, looked up by ID or prefix, approved, rejected or
//! deleted, and asked to pin data; the node manager does the work.

use super::{Orchestrator, not_found};
use crate::error::OrchestratorError;
use bacalhau_models::{NodeId, NodeState};

impl Orchestrator {
    /// Every node, by ID, optionally filtered by membership and connection status.
    pub fn nodes(
        &self,
        membership: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<NodeState>, OrchestratorError> {
        Ok(self
            .nodes
            .states()
            .into_iter()
            .filter(|n| membership.is_none_or(|m| n.membership.as_str().eq_ignore_ascii_case(m)))
            .filter(|n| {
                status.is_none_or(|s| n.connection_state.status.as_str().eq_ignore_ascii_case(s))
            })
            .collect())
    }

    /// A node by full ID or unique prefix.
    pub fn node(&self, id: &str) -> Result<NodeState, OrchestratorError> {
        let states = self.nodes.states();
        if let Some(exact) = states.iter().find(|n| n.info.node_id.as_str() == id) {
            return Ok(exact.clone());
        }
        let matches: Vec<NodeState> = states
            .into_iter()
            .filter(|n| n.info.node_id.as_str().starts_with(id))
            .collect();
        match matches.len() {
            0 => Err(not_found("node", id)),
            1 => Ok(matches
                .into_iter()
                .next()
                .ok_or_else(|| not_found("node", id))?),
            _ => Err(OrchestratorError::Ambiguous {
                prefix: id.to_string(),
                matches: matches
                    .iter()
                    .map(|n| n.info.node_id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Asks a compute node (full ID or unique prefix) to fetch `cid` from `peers` and pin it,
    /// within `timeout` (`bacalhau data add`); returns the node and the bytes it fetched.
    pub async fn pin(
        &self,
        node: &str,
        cid: &str,
        peers: Vec<String>,
        timeout: std::time::Duration,
    ) -> Result<(NodeId, u64), OrchestratorError> {
        let state = self.node(node)?;
        if state.info.node_type != bacalhau_models::node::NodeType::Compute {
            return Err(OrchestratorError::Invalid(format!(
                "node {} is not a compute node: only compute nodes hold data",
                state.info.node_id
            )));
        }
        let node_id = state.info.node_id;
        let bytes = self.nodes.pin(&node_id, cid, peers, timeout).await?;
        Ok((node_id, bytes))
    }

    /// Approves, rejects or deletes a node (`approve`, `reject`, `delete`).
    pub async fn update_node(
        &self,
        id: &str,
        action: &str,
        actor: &str,
    ) -> Result<(), OrchestratorError> {
        let action = bacalhau_models::node::NodeAction::parse(action).ok_or_else(|| {
            OrchestratorError::Invalid(format!(
                "unknown node action {action:?}: use approve, reject or delete"
            ))
        })?;
        let node_id: NodeId = self.node(id)?.info.node_id;
        self.nodes.update_membership(&node_id, action, actor).await
    }
}
