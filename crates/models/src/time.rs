//! Time as upstream sends it: integer nanoseconds since the epoch, RFC 3339 in history events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, the wire form of `CreateTime` and `ModifyTime`.
pub type Timestamp = i64;

/// Converts a wall-clock time to wire nanoseconds; times before the epoch become 0.
pub fn to_nanos(t: SystemTime) -> Timestamp {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Converts wire nanoseconds back to a wall-clock time.
pub fn from_nanos(ns: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// Formats wire nanoseconds as RFC 3339 with nanoseconds, as Go's `time.Time` marshals.
pub fn rfc3339(ns: Timestamp) -> String {
    humantime::format_rfc3339_nanos(from_nanos(ns)).to_string()
}

/// Parses an RFC 3339 time into wire nanoseconds.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    humantime::parse_rfc3339_weak(text).ok().map(to_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let ns = 1_700_000_000_123_456_789;
        let text = rfc3339(ns);
        assert_eq!(text, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339(&text), Some(ns));
    }
}
