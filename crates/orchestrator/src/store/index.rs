//! Secondary indexes of jobs, so a filtered listing reads the jobs it returns and not every
//! stored job: one table of `(index key, create time, job ID)` entries, each index in creation
//! order, and beside it the keys each job is indexed under, so a change of state or labels
//! removes exactly the old entries.

use bacalhau_models::{Job, JobStateType};
use std::collections::BTreeSet;

/// One index a job listing can walk instead of every job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobIndex {
    /// Jobs in a state, in every namespace.
    State(JobStateType),
    /// Jobs of a namespace, in any state.
    Namespace(String),
    /// Jobs of a namespace in a state.
    NamespaceState(String, JobStateType),
    /// Jobs carrying a label with this value.
    Label(String, String),
}

impl JobIndex {
    /// The index's key in the table. The parts are joined by `\0`, which neither a state nor a
    /// namespace nor a label key holds, so a key names one index only (a label value may hold
    /// anything: it comes last).
    pub fn key(&self) -> String {
        match self {
            Self::State(state) => format!("state\0{state}"),
            Self::Namespace(namespace) => format!("namespace\0{namespace}"),
            Self::NamespaceState(namespace, state) => format!("ns\0{namespace}\0{state}"),
            Self::Label(key, value) => format!("label\0{key}\0{value}"),
        }
    }

    /// Every index `job` belongs to, by key.
    pub fn keys_of(job: &Job) -> BTreeSet<String> {
        let state = job.state.state_type;
        let mut keys = BTreeSet::from([
            Self::State(state).key(),
            Self::Namespace(job.namespace.clone()).key(),
            Self::NamespaceState(job.namespace.clone(), state).key(),
        ]);
        keys.extend(
            job.labels
                .iter()
                .map(|(k, v)| Self::Label(k.clone(), v.clone()).key()),
        );
        keys
    }
}

/// The keys a job is indexed under, as `JOB_INDEXED` keeps them.
pub(super) fn listed(keys: &BTreeSet<String>) -> String {
    // A set of strings always serializes.
    serde_json::to_string(keys).unwrap_or_default()
}

/// The keys `JOB_INDEXED` lists; none when the text is not such a list (nothing to remove).
pub(super) fn parse_listed(text: &str) -> BTreeSet<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The first key past every entry of index `key`: `key` followed by the smallest character.
pub(super) fn end_of(key: &str) -> String {
    format!("{key}\0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No two different indexes share a key, whatever the names and values.
        #[test]
        fn keys_name_one_index(
            a in "[a-z0-9/.-]{0,8}", b in "[a-z0-9/.\\x00 -]{0,8}",
            c in "[a-z0-9/.-]{0,8}", d in "[a-z0-9/.\\x00 -]{0,8}",
        ) {
            let first = JobIndex::Label(a.clone(), b.clone());
            let second = JobIndex::Label(c.clone(), d.clone());
            prop_assert_eq!(first.key() == second.key(), first == second);
            let namespaced = JobIndex::NamespaceState(a.clone(), JobStateType::Running);
            prop_assert_ne!(namespaced.key(), second.key());
            prop_assert_ne!(namespaced.key(), JobIndex::Namespace(a).key());
        }
    }
}
