//! Typed identifiers: `j-`, `e-`, `v-` and `n-` prefixed UUIDs, as upstream generates them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh random ID with upstream's prefix.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "-{}"), uuid::Uuid::new_v4()))
            }
            /// The ID as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Upstream's short form: the prefix and the first 8 hex digits of the UUID.
            pub fn short(&self) -> &str {
                short_id(&self.0)
            }
            /// Whether the ID is unset.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// A job's ID, `j-<uuid>`.
    JobId,
    "j"
);
id_type!(
    /// An execution's ID, `e-<uuid>`.
    ExecutionId,
    "e"
);
id_type!(
    /// An evaluation's ID, `v-<uuid>`.
    EvaluationId,
    "v"
);
id_type!(
    /// A node's ID: the operator's name or `n-<uuid>`.
    NodeId,
    "n"
);

/// Upstream's short form of an ID: `x-` plus 8 characters, or the whole ID when it is no UUID.
pub fn short_id(id: &str) -> &str {
    // A prefixed UUID is 2 + 36 characters; anything else (an operator's node name) stays whole.
    if id.len() == 38 && id.as_bytes().get(1) == Some(&b'-') {
        &id[..10]
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_prefix_and_shorten_to_ten_chars() {
        let id = JobId::generate();
        assert!(id.as_str().starts_with("j-"));
        assert_eq!(id.as_str().len(), 38);
        assert_eq!(id.short().len(), 10);
        assert!(id.as_str().starts_with(id.short()));
    }

    #[test]
    fn operator_names_are_not_shortened() {
        assert_eq!(short_id("node-1"), "node-1");
    }
}
