//! Job history: one event per change of a job or one of its executions.

use crate::ids::{ExecutionId, JobId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Whether an event concerns the job or one execution; a string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobHistoryType {
    /// Unknown.
    #[serde(rename = "Undefined", alias = "undefined")]
    Undefined,
    /// About the job as a whole.
    #[serde(rename = "JobLevel", alias = "job")]
    JobLevel,
    /// About one execution.
    #[serde(rename = "ExecutionLevel", alias = "execution")]
    ExecutionLevel,
    /// About a node (approval, rejection, a refused join); in the audit log only.
    #[serde(rename = "NodeLevel", alias = "node")]
    NodeLevel,
}

/// What happened, for people and machines.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    /// A readable message.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// The area: `Submission`, `State Update`, `Scheduling`, `Queueing`...
    #[serde(rename = "Topic", default)]
    pub topic: Topic,
    /// When, as RFC 3339.
    #[serde(rename = "Timestamp", default)]
    pub timestamp: String,
    /// Machine-readable details.
    #[serde(
        rename = "Details",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
}

/// One event in a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHistory {
    /// Position in the store's global event log; increases with every event.
    #[serde(rename = "SeqNum")]
    pub seq_num: u64,
    /// Job- or execution-level.
    #[serde(rename = "Type")]
    pub r#type: JobHistoryType,
    /// The job.
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// The job version current when it happened.
    #[serde(rename = "JobVersion")]
    pub job_version: u64,
    /// The execution, for execution-level events.
    #[serde(
        rename = "ExecutionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub execution_id: Option<ExecutionId>,
    /// What happened.
    #[serde(rename = "Event")]
    pub event: Event,
    /// When, as RFC 3339.
    #[serde(rename = "Time")]
    pub time: String,
    /// Who caused it: a user's name, `anonymous`, `system` (the scheduler) or `node:<id>`.
    #[serde(rename = "Actor", default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// The SHA-256 (hex) of the previous event of the store's log; empty for the first.
    #[serde(rename = "PrevHash", default, skip_serializing_if = "String::is_empty")]
    pub prev_hash: String,
    /// The SHA-256 (hex) of this event as JSON with `Hash` left out.
    #[serde(rename = "Hash", default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// The actor of events the scheduler and the orchestrator itself cause.
pub const SYSTEM_ACTOR: &str = "system";

impl JobHistory {
    /// A node-level event of the audit log: `message` about `node` (its ID in `Details`).
    pub fn node_event(
        node: &str,
        topic: Topic,
        message: impl Into<String>,
        actor: impl Into<String>,
        time: String,
    ) -> Self {
        let mut details = BTreeMap::new();
        details.insert("NodeID".to_string(), node.to_string());
        Self {
            seq_num: 0,
            r#type: JobHistoryType::NodeLevel,
            job_id: JobId::from(""),
            job_version: 0,
            execution_id: None,
            event: Event {
                message: message.into(),
                topic,
                timestamp: time.clone(),
                details,
            },
            time,
            actor: actor.into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The same event, caused by `actor`.
    pub fn by(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The hash this event should carry: SHA-256 over its JSON with `Hash` empty, which
    /// includes its sequence number and the previous event's hash.
    pub fn chain_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        // Serializing a struct of strings, numbers and a BTreeMap cannot fail.
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }

    /// Gives the event its hash ([`JobHistory::chain_hash`]) and answers its JSON with that
    /// hash, serializing it once instead of twice (the store seals every event it appends):
    /// `Hash` is the last field, so the JSON with the hash is the hashed JSON with
    /// `,"Hash":"…"` before its closing brace.
    pub fn seal(&mut self) -> Vec<u8> {
        self.hash.clear();
        // Serializing a struct of strings, numbers and a BTreeMap cannot fail.
        let mut bytes = serde_json::to_vec(&*self).unwrap_or_default();
        self.hash = hex(&Sha256::digest(&bytes));
        if bytes.pop() == Some(b'}') {
            bytes.extend_from_slice(b",\"Hash\":\"");
            bytes.extend_from_slice(self.hash.as_bytes());
            bytes.extend_from_slice(b"\"}");
            bytes
        } else {
            serde_json::to_vec(&*self).unwrap_or_default()
        }
    }
}

/// The first problem found walking the audit log in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// Sequence numbers jump: events between were deleted.
    Missing {
        /// The first missing sequence number.
        seq: u64,
    },
    /// An event's content does not match its own hash: it was edited.
    Altered {
        /// The edited event.
        seq: u64,
    },
    /// An event does not point at its predecessor's hash: events were reordered, replaced or
    /// the predecessor was edited together with its hash.
    Unlinked {
        /// The event whose link is wrong.
        seq: u64,
    },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { seq } => write!(f, "event {seq} is missing"),
            Self::Altered { seq } => {
                write!(
                    f,
                    "event {seq} was altered: its content does not match its hash"
                )
            }
            Self::Unlinked { seq } => write!(
                f,
                "event {seq} does not follow the event before it: its PrevHash does not match"
            ),
        }
    }
}

/// Walks events in sequence order, carrying what the next event must link to; feed it every
/// event of the log (in pages if need be) and it reports the first break.
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    last_seq: u64,
    last_hash: String,
    checked: u64,
}

impl ChainVerifier {
    /// Checks the next event.
    pub fn check(&mut self, event: &JobHistory) -> Result<(), ChainBreak> {
        let seq = event.seq_num;
        if seq != self.last_seq + 1 {
            return Err(ChainBreak::Missing {
                seq: self.last_seq + 1,
            });
        }
        if event.hash != event.chain_hash() {
            return Err(ChainBreak::Altered { seq });
        }
        if event.prev_hash != self.last_hash {
            return Err(ChainBreak::Unlinked { seq });
        }
        self.last_seq = seq;
        self.last_hash = event.hash.clone();
        self.checked += 1;
        Ok(())
    }

    /// How many events checked out so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The sequence number of the last good event.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The area an event belongs to: upstream's topics, on the wire as its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Topic {
    /// Submission, update and rerun of a job.
    #[default]
    #[serde(rename = "Submission")]
    Submission,
    /// A state change.
    #[serde(rename = "State Update")]
    StateUpdate,
    /// Placement decisions.
    #[serde(rename = "Scheduling")]
    Scheduling,
    /// A job waiting for nodes.
    #[serde(rename = "Queueing")]
    Queueing,
    /// A job's total timeout.
    #[serde(rename = "Job Timeout")]
    JobTimeout,
    /// An execution's timeout.
    #[serde(rename = "Exec Timeout")]
    ExecTimeout,
    /// An execution's own progress.
    #[serde(rename = "Execution")]
    Execution,
    /// Node membership: approval, rejection, deletion, refused joins.
    #[serde(rename = "Node Membership")]
    NodeMembership,
    /// What a finished execution read and produced, by content (ours: lineage in the audit
    /// log).
    #[serde(rename = "Lineage")]
    Lineage,
    /// A job served from the result cache, or a cache entry dropped (ours).
    #[serde(rename = "Cache")]
    Cache,
    /// Verified re-execution: the replicas' results agreed or not (ours).
    #[serde(rename = "Verification")]
    Verification,
    /// A job's record dropped after it ended, its history kept (ours).
    #[serde(rename = "Retention")]
    Retention,
}

impl Topic {
    /// Upstream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submission => "Submission",
            Self::StateUpdate => "State Update",
            Self::Scheduling => "Scheduling",
            Self::Queueing => "Queueing",
            Self::JobTimeout => "Job Timeout",
            Self::ExecTimeout => "Exec Timeout",
            Self::Execution => "Execution",
            Self::NodeMembership => "Node Membership",
            Self::Lineage => "Lineage",
            Self::Cache => "Cache",
            Self::Verification => "Verification",
            Self::Retention => "Retention",
        }
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typed topics serialize as the strings events were stored and hashed with.
    #[test]
    fn topics_keep_upstreams_strings_on_the_wire() {
        for (topic, wire) in [
            (Topic::StateUpdate, "State Update"),
            (Topic::NodeMembership, "Node Membership"),
            (Topic::ExecTimeout, "Exec Timeout"),
        ] {
            assert_eq!(serde_json::to_value(topic).unwrap(), wire);
            assert_eq!(topic.as_str(), wire);
            let back: Topic = serde_json::from_value(wire.into()).unwrap();
            assert_eq!(back, topic);
        }
    }

    fn chain(n: u64) -> Vec<JobHistory> {
        let mut prev = String::new();
        (1..=n)
            .map(|seq| {
                let mut event = JobHistory {
                    seq_num: seq,
                    r#type: JobHistoryType::JobLevel,
                    job_id: JobId::from("j-1"),
                    job_version: 1,
                    execution_id: None,
                    event: Event {
                        message: format!("event {seq}"),
                        ..Default::default()
                    },
                    time: String::new(),
                    actor: "alice".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                event.hash = event.chain_hash();
                prev = event.hash.clone();
                event
            })
            .collect()
    }

    proptest::proptest! {
        /// A sealed event's JSON is the event's own JSON, and its hash the chain hash.
        #[test]
        fn a_sealed_event_is_its_own_json_with_its_chain_hash(
            message in ".{0,12}", actor in "[a-z]{0,6}", prev in "[0-9a-f]{0,8}",
            execution in proptest::option::of("[a-z0-9-]{1,8}"),
            details in proptest::collection::btree_map("[A-Za-z]{1,6}", ".{0,6}", 0..3),
            seq in 0u64..1_000_000,
        ) {
            let mut event = JobHistory {
                seq_num: seq,
                r#type: JobHistoryType::ExecutionLevel,
                job_id: JobId::from("j-1"),
                job_version: 2,
                execution_id: execution.map(|e| ExecutionId::from(e.as_str())),
                event: Event { message, details, ..Default::default() },
                time: "2026-12-06T09:00:00Z".into(),
                actor,
                prev_hash: prev,
                hash: "stale".into(),
            };
            let sealed = event.seal();
            proptest::prop_assert_eq!(&event.hash, &event.chain_hash());
            proptest::prop_assert_eq!(sealed, serde_json::to_vec(&event).unwrap());
        }
    }

    fn verify(events: &[JobHistory]) -> Result<u64, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        for event in events {
            verifier.check(event)?;
        }
        Ok(verifier.checked())
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn each_kind_of_tampering_names_its_event() {
        let mut edited = chain(5);
        edited[2].event.message = "nothing happened".into();
        assert_eq!(verify(&edited), Err(ChainBreak::Altered { seq: 3 }));

        let mut rehashed = chain(5);
        rehashed[2].actor = "mallory".into();
        rehashed[2].hash = rehashed[2].chain_hash();
        assert_eq!(verify(&rehashed), Err(ChainBreak::Unlinked { seq: 4 }));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify(&deleted), Err(ChainBreak::Missing { seq: 2 }));

        let mut truncated_head = chain(5);
        truncated_head.remove(0);
        assert_eq!(verify(&truncated_head), Err(ChainBreak::Missing { seq: 1 }));
    }
}
