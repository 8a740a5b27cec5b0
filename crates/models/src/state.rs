//! State enums and the `State` wrapper, encoded on the wire as upstream's server does.
//!
//! Job states travel as strings, execution states as integers; both forms are accepted on input.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// How an enum is written on the wire.
enum WireForm {
    Text,
    Number,
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $form:expr, { $($(#[$vdoc:meta])* $variant:ident = $num:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum $name {
            #[default]
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in wire-number order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The upstream name of the value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }

            /// The upstream wire number of the value.
            pub fn as_number(self) -> i64 {
                match self { $($name::$variant => $num),+ }
            }

            /// Parses a name case-insensitively.
            pub fn parse_name(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text))
            }

            /// Looks a wire number up.
            pub fn from_number(n: i64) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_number() == n)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match $form {
                    WireForm::Text => s.serialize_str(self.as_str()),
                    WireForm::Number => s.serialize_i64(self.as_number()),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(d)?;
                let parsed = match &value {
                    serde_json::Value::String(s) => Self::parse_name(s),
                    serde_json::Value::Number(n) => n.as_i64().and_then(Self::from_number),
                    serde_json::Value::Null => Some(Self::default()),
                    _ => None,
                };
                parsed.ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " {}"),
                        value
                    ))
                })
            }
        }
    };
}

wire_enum!(
    /// A job's state; a string on the wire.
    JobStateType, WireForm::Text, {
    Undefined = 0,
    Pending = 1,
    Queued = 2,
    Running = 3,
    Completed = 4,
    Failed = 5,
    Stopped = 6,
});

impl JobStateType {
    /// Completed, Failed and Stopped jobs never change state again (except by rerun).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Stopped)
    }
}

wire_enum!(
    /// An execution's state as the compute node reports it; an integer on the wire.
    ExecutionStateType, WireForm::Number, {
    Undefined = 0,
    New = 1,
    AskForBid = 2,
    AskForBidAccepted = 3,
    AskForBidRejected = 4,
    BidAccepted = 5,
    Running = 6,
    Publishing = 7,
    BidRejected = 8,
    Completed = 9,
    Failed = 10,
    Cancelled = 11,
});

impl ExecutionStateType {
    /// States an execution never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::AskForBidRejected
                | Self::BidRejected
                | Self::Completed
                | Self::Failed
                | Self::Cancelled
        )
    }

    /// Terminal states that produced no result: the partition still needs running.
    pub fn is_discarded(self) -> bool {
        self.is_terminal() && self != Self::Completed
    }
}

wire_enum!(
    /// What the orchestrator wants of an execution; an integer on the wire.
    ExecutionDesiredStateType, WireForm::Number, {
    Pending = 0,
    Running = 1,
    Stopped = 2,
});

/// A state with an optional human message and details, as upstream's `State[T]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State<T> {
    /// The state itself.
    #[serde(rename = "StateType", default)]
    pub state_type: T,
    /// Why the object is in this state, for people.
    #[serde(rename = "Message", default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Machine-readable details of the state.
    #[serde(
        rename = "Details",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
}

impl<T> State<T> {
    /// A state with no message.
    pub fn new(state_type: T) -> Self {
        Self {
            state_type,
            message: String::new(),
            details: BTreeMap::new(),
        }
    }

    /// A state with a message.
    pub fn with_message(state_type: T, message: impl Into<String>) -> Self {
        Self {
            state_type,
            message: message.into(),
            details: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_state_is_a_string_and_accepts_numbers() {
        assert_eq!(
            serde_json::to_string(&JobStateType::Queued).unwrap(),
            "\"Queued\""
        );
        let from_num: JobStateType = serde_json::from_str("3").unwrap();
        assert_eq!(from_num, JobStateType::Running);
        let from_lower: JobStateType = serde_json::from_str("\"completed\"").unwrap();
        assert_eq!(from_lower, JobStateType::Completed);
    }

    #[test]
    fn execution_state_is_a_number_and_accepts_names() {
        assert_eq!(
            serde_json::to_string(&ExecutionStateType::Completed).unwrap(),
            "9"
        );
        let parsed: ExecutionStateType = serde_json::from_str("\"BidAccepted\"").unwrap();
        assert_eq!(parsed, ExecutionStateType::BidAccepted);
        assert!(serde_json::from_str::<ExecutionStateType>("42").is_err());
    }

    #[test]
    fn discarded_states_are_terminal_failures() {
        assert!(ExecutionStateType::Failed.is_discarded());
        assert!(!ExecutionStateType::Completed.is_discarded());
        assert!(!ExecutionStateType::Running.is_terminal());
    }
}
