//! The orchestrator ↔ compute node protocol: frames on one long-lived connection.
//!
//! A compute node dials out and opens with [`Frame::Hello`]; the orchestrator answers
//! [`Frame::Welcome`] (or refuses). After that both sides send [`Frame::Message`]s, each with a
//! per-direction sequence number, written to the sender's durable outbox before it is sent.
//! The receiver applies a message and its effects in one transaction with the sequence number,
//! so a replayed message is recognised and skipped, then answers [`Frame::Ack`] with the
//! highest sequence it has durably applied; the sender trims its outbox up to there. A message
//! beyond the next one (one went missing) is not applied: the receiver drops the connection.
//! On reconnect each side's handshake says what it last applied, and the sender replays the
//! rest. `bacalhau-channel`'s `reliable` module holds these rules as code.
//! Heartbeats carry the node's free capacity. This crate defines the frames; it does no I/O.

pub mod trace;

use bacalhau_models::{
    Execution, ExecutionId, ExecutionStateType, JobId, NodeInfo, Resources, RunCommandResult,
    SpecConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The path of the node channel on the orchestrator's API port.
pub const CONNECT_PATH: &str = "/api/v1/compute/connect";

/// The protocol's name, advertised in `NodeInfo.SupportedProtocols`.
pub const PROTOCOL: &str = "bacalhau-ws/v1";

/// The longest a compute node waits between attempts to reach its orchestrator. A restarted
/// orchestrator waits at least twice this for its nodes to dial in before it counts them lost,
/// so a node that backed off while it was down is not given up on.
pub const MAX_RECONNECT_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// One frame on the node channel, JSON-encoded in a WebSocket text message.
///
/// Every variant holds at most 16 bytes (larger bodies are boxed), so a `Frame` is 24 bytes:
/// each node connection's frame channels allocate room for 32 frames at once, on the
/// orchestrator for every connected node, so the size of a `Frame` is memory per node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum Frame {
    /// Node → orchestrator, first frame: who the node is and what it last applied.
    Hello(Box<Hello>),
    /// Orchestrator → node: the handshake's answer.
    Welcome(Box<Welcome>),
    /// Node → orchestrator: the node is alive, with its current load.
    Heartbeat(Box<Heartbeat>),
    /// Either way: a reliable message.
    Message {
        /// The sender's sequence number for this direction, from 1.
        #[serde(rename = "Seq")]
        seq: u64,
        /// The message.
        #[serde(rename = "Body")]
        body: Box<Message>,
    },
    /// Either way: every message up to `seq` is durably applied.
    Ack {
        /// The highest applied sequence number.
        #[serde(rename = "Seq")]
        seq: u64,
    },
    /// Orchestrator → node: stream an execution's log. Log frames are not durable: a stream
    /// ends with its connection, and the reader asks again.
    LogRequest(Box<LogRequest>),
    /// Node → orchestrator: one piece of an execution's output.
    LogData(Box<LogData>),
    /// Node → orchestrator: the stream is over.
    LogEnd(Box<LogEnd>),
    /// Orchestrator → node: the reader went away; stop the stream.
    LogCancel {
        /// The stream.
        #[serde(rename = "StreamID")]
        stream_id: u64,
    },
    /// Orchestrator → node: fetch a CID (from the given peers and any connected one) and pin
    /// it (`bacalhau data add`). Not durable, like log frames: a request lost with its
    /// connection is answered with an error, and pinning again is harmless.
    PinRequest(Box<PinRequest>),
    /// Node → orchestrator: how a [`PinRequest`] ended.
    PinReply(Box<PinReply>),
}

/// One piece of an execution's output ([`Frame::LogData`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogData {
    /// The stream it belongs to.
    #[serde(rename = "StreamID")]
    pub stream_id: u64,
    /// 1 for stdout, 2 for stderr (upstream's `ExecutionLogType`).
    #[serde(rename = "Stream")]
    pub kind: u8,
    /// The text, normally one line with its newline.
    #[serde(rename = "Line")]
    pub line: String,
}

/// The end of a log stream ([`Frame::LogEnd`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEnd {
    /// The stream.
    #[serde(rename = "StreamID")]
    pub stream_id: u64,
    /// Why it failed, or empty.
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// A request to hold a CID on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinRequest {
    /// Chosen by the orchestrator; the reply carries it back.
    #[serde(rename = "RequestID")]
    pub request_id: u64,
    /// The root CID.
    #[serde(rename = "CID")]
    pub cid: String,
    /// IPFS nodes (multiaddrs) that hold the blocks.
    #[serde(rename = "Peers", default)]
    pub peers: Vec<String>,
    /// How long the node may take to bring every block, in milliseconds.
    #[serde(rename = "TimeoutMs")]
    pub timeout_ms: u64,
}

/// The answer to a [`PinRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinReply {
    /// The request answered.
    #[serde(rename = "RequestID")]
    pub request_id: u64,
    /// Bytes that came over the network (0 when the node held every block).
    #[serde(rename = "BytesFetched", default)]
    pub bytes_fetched: u64,
    /// Why it failed, or empty when the CID is pinned.
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// A request for an execution's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRequest {
    /// Chosen by the orchestrator; tags every frame of the stream.
    #[serde(rename = "StreamID")]
    pub stream_id: u64,
    /// The execution.
    #[serde(rename = "ExecutionID")]
    pub execution_id: ExecutionId,
    /// Only the last this many records of what is already written; all when absent.
    #[serde(rename = "Tail", default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<usize>,
    /// Keep streaming new output until the execution ends.
    #[serde(rename = "Follow", default)]
    pub follow: bool,
}

/// The node's opening frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Identity, labels, engines, capacity.
    #[serde(rename = "NodeInfo")]
    pub node_info: NodeInfo,
    /// The join token (`Compute.Auth.Token`); empty when none is configured.
    #[serde(rename = "Token", default)]
    pub token: String,
    /// The highest orchestrator → node sequence the node has applied.
    #[serde(rename = "LastAppliedFromOrchestrator")]
    pub last_applied: u64,
}

/// The orchestrator's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Whether the node may stay connected.
    #[serde(rename = "Accepted")]
    pub accepted: bool,
    /// Why not, or a note such as "node registered".
    #[serde(rename = "Reason", default)]
    pub reason: String,
    /// The highest node → orchestrator sequence the orchestrator has applied.
    #[serde(rename = "LastAppliedFromCompute")]
    pub last_applied: u64,
    /// How often the node must send heartbeats, in milliseconds.
    #[serde(rename = "HeartbeatIntervalMs")]
    pub heartbeat_interval_ms: u64,
    /// On a refusal: this orchestrator does not lead its cluster, so the node should try its
    /// next orchestrator address at once rather than back off.
    #[serde(rename = "NotLeader", default)]
    pub not_leader: bool,
}

/// A node's liveness report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Resources free now.
    #[serde(rename = "AvailableCapacity")]
    pub available: Resources,
    /// Resources taken by executions waiting on the node.
    #[serde(rename = "QueueUsedCapacity")]
    pub queued: Resources,
    /// Executions running.
    #[serde(rename = "RunningExecutions")]
    pub running: u64,
    /// Executions waiting.
    #[serde(rename = "EnqueuedExecutions")]
    pub enqueued: u64,
    /// The root CIDs the node holds, when they changed since it last said.
    #[serde(rename = "IPFSRoots", default, skip_serializing_if = "Option::is_none")]
    pub ipfs_roots: Option<Vec<String>>,
}

/// A reliable message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Kind")]
pub enum Message {
    /// Orchestrator → node: run this execution (it carries its job).
    RunExecution {
        /// The execution, with `Job` set.
        #[serde(rename = "Execution")]
        execution: Box<Execution>,
        /// IPFS nodes (multiaddrs) that hold the CIDs the job reads.
        #[serde(rename = "IPFSPeers", default, skip_serializing_if = "Vec::is_empty")]
        ipfs_peers: Vec<String>,
    },
    /// Orchestrator → node: stop this execution.
    CancelExecution {
        /// The execution.
        #[serde(rename = "ExecutionID")]
        execution_id: ExecutionId,
        /// Why.
        #[serde(rename = "Reason")]
        reason: String,
    },
    /// Node → orchestrator: an execution changed state.
    ExecutionUpdate(ExecutionUpdate),
}

/// A change of an execution's state on its node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionUpdate {
    /// The execution.
    #[serde(rename = "ExecutionID")]
    pub execution_id: ExecutionId,
    /// Its job.
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// The new state: BidAccepted, AskForBidRejected, Running, Publishing, Completed, Failed,
    /// Cancelled.
    #[serde(rename = "State")]
    pub state: ExecutionStateType,
    /// Why, for people.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// Output and exit code, once finished.
    #[serde(rename = "RunOutput", default, skip_serializing_if = "Option::is_none")]
    pub run_output: Option<RunCommandResult>,
    /// Where results went, once published.
    #[serde(
        rename = "PublishedResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub published_result: Option<SpecConfig>,
    /// Machine-readable details (bytes read per input, bytes published).
    #[serde(
        rename = "Details",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
    /// For a failure: whether another attempt could succeed (`false` for the job's own faults:
    /// a non-zero exit code, a timeout, a bad spec). Nodes of earlier versions sent it as a
    /// `Retryable` detail instead, which the orchestrator still reads.
    #[serde(rename = "Retryable", default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid frame: {0}")]
pub struct FrameError(String);

impl Frame {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        // Frames hold only strings, numbers and maps: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes a frame from JSON text.
    ///
    /// serde reads an internally tagged enum into a tree of owned values (every key and string
    /// allocated) before it builds the variant. Every node heartbeats every few seconds and
    /// every job's reports come as messages, so those kinds are read straight into their
    /// types: the tag first (the rest skipped without allocating), then the body from the same
    /// text, where the tag is an unknown field and ignored. Rarer kinds take serde's way.
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        let error = |e: serde_json::Error| FrameError(e.to_string());
        let tag: Tag<'_> = serde_json::from_str(text).map_err(error)?;
        match &*tag.kind {
            "Heartbeat" => serde_json::from_str(text)
                .map(|beat| Self::Heartbeat(Box::new(beat)))
                .map_err(error),
            "Ack" => serde_json::from_str::<AckFields>(text)
                .map(|ack| Self::Ack { seq: ack.seq })
                .map_err(error),
            "Message" => {
                let fields: MessageFields<'_> = serde_json::from_str(text).map_err(error)?;
                Ok(Self::Message {
                    seq: fields.seq,
                    body: Box::new(Message::decode(fields.body.get())?),
                })
            }
            _ => serde_json::from_str(text).map_err(error),
        }
    }
}

impl Message {
    /// Decodes a message from its JSON text, as [`Frame::decode`] does a frame: an execution's
    /// report straight into its type, the rest by serde's way.
    fn decode(text: &str) -> Result<Self, FrameError> {
        let error = |e: serde_json::Error| FrameError(e.to_string());
        let tag: KindTag<'_> = serde_json::from_str(text).map_err(error)?;
        match &*tag.kind {
            "ExecutionUpdate" => serde_json::from_str(text)
                .map(Self::ExecutionUpdate)
                .map_err(error),
            _ => serde_json::from_str(text).map_err(error),
        }
    }
}

/// A frame's tag alone ([`Frame::decode`]).
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "Type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// A message's tag alone.
#[derive(Deserialize)]
struct KindTag<'a> {
    #[serde(rename = "Kind", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// [`Frame::Ack`]'s fields, as [`Frame`]'s derive names them.
#[derive(Deserialize)]
struct AckFields {
    #[serde(rename = "Seq")]
    seq: u64,
}

/// [`Frame::Message`]'s fields, as [`Frame`]'s derive names them, the body left as text.
#[derive(Deserialize)]
struct MessageFields<'a> {
    #[serde(rename = "Seq")]
    seq: u64,
    #[serde(rename = "Body", borrow)]
    body: &'a serde_json::value::RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each node connection holds two channels of 32 frames on each side: a bigger `Frame` is
    /// memory per connected node (see `Frame`).
    #[test]
    fn a_frame_is_three_words() {
        assert_eq!(std::mem::size_of::<Frame>(), 24);
    }

    /// Boxing a log frame's fields keeps its JSON: its fields sit beside `Type`.
    #[test]
    fn log_frames_keep_their_wire_shape() {
        let data = Frame::LogData(Box::new(LogData {
            stream_id: 3,
            kind: 1,
            line: "hi\n".into(),
        }));
        assert_eq!(
            data.encode(),
            r#"{"Type":"LogData","StreamID":3,"Stream":1,"Line":"hi\n"}"#
        );
        let end = Frame::decode(r#"{"Type":"LogEnd","StreamID":3}"#).unwrap();
        assert_eq!(
            end,
            Frame::LogEnd(Box::new(LogEnd {
                stream_id: 3,
                error: String::new()
            }))
        );
    }

    #[test]
    fn frames_round_trip_through_json() {
        let frame = Frame::Message {
            seq: 7,
            body: Box::new(Message::CancelExecution {
                execution_id: ExecutionId::from("e-1"),
                reason: "job stopped".into(),
            }),
        };
        let text = frame.encode();
        assert!(text.contains("\"Type\":\"Message\""), "{text}");
        assert_eq!(Frame::decode(&text).unwrap(), frame);
        assert!(Frame::decode("{\"Type\":\"Bogus\"}").is_err());
    }

    /// The kinds read straight into their types decode as serde's derive does, and refuse
    /// what it refuses.
    #[test]
    fn frequent_frames_decode_as_the_derive_does() {
        let update = ExecutionUpdate {
            execution_id: ExecutionId::from("e-1"),
            job_id: JobId::from("j-1"),
            state: ExecutionStateType::Completed,
            message: "done \"quoted\"".into(),
            run_output: None,
            published_result: None,
            details: BTreeMap::from([("k".into(), "v".into())]),
            retryable: Some(false),
        };
        let frames = [
            Frame::Heartbeat(Box::new(Heartbeat {
                available: Resources {
                    cpu: 1.5,
                    memory: 1 << 30,
                    ..Default::default()
                },
                queued: Resources::default(),
                running: 2,
                enqueued: 1,
                ipfs_roots: Some(vec!["bafy".into()]),
            })),
            Frame::Ack { seq: 9 },
            Frame::Message {
                seq: 4,
                body: Box::new(Message::ExecutionUpdate(update)),
            },
        ];
        for frame in frames {
            let text = frame.encode();
            let derived: Frame = serde_json::from_str(&text).unwrap();
            assert_eq!(Frame::decode(&text).unwrap(), derived, "{text}");
            assert_eq!(derived, frame);
            // The tag need not come first: a JSON value's keys are written in order, and
            // every other key of these frames sorts before "Type".
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let reordered = value.to_string();
            assert!(!reordered.starts_with("{\"Type\""), "{reordered}");
            assert_eq!(Frame::decode(&reordered).unwrap(), frame, "{reordered}");
        }
        for bad in [
            r#"{"Type":"Heartbeat"}"#,
            r#"{"Type":"Ack","Seq":"x"}"#,
            r#"{"Type":"Message","Seq":1,"Body":{"Kind":"ExecutionUpdate"}}"#,
            r#"{"Type":"Message","Seq":1}"#,
            r#"{"Seq":1}"#,
            r#"{"Type":"Ack","Seq":1"#,
        ] {
            assert!(serde_json::from_str::<Frame>(bad).is_err(), "{bad}");
            assert!(Frame::decode(bad).is_err(), "{bad}");
        }
    }
}
