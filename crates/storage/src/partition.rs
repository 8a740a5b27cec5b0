//! Upstream's S3 partitioning: which of a listing's objects an execution processes when a job
//! runs `Count` executions. Every execution lists the same objects and keeps those whose
//! partition key hashes (32-bit FNV-1a, modulo `Count`) to its own `PartitionIndex`, so each
//! object is processed exactly once across the job with no coordination.
//!
//! `object` hashes the whole key; the other types match the key after the spec's key prefix
//! (and a `/`) is taken off. An object whose key
//! does not yield a partition key (no regex match, too short, no date) goes to partition 0.

use regex::Regex;

/// How objects are split across a job's executions (the s3 source's `Partition` param).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSpec {
    /// Every execution gets every object (`none`, or no `Partition`).
    None,
    /// By the whole key (`object`).
    Object,
    /// By the regex's capture groups joined by 0x1F, or its whole match (`regex`, `Pattern`).
    Regex(String),
    /// By the characters `StartIndex..EndIndex` of the key (`substring`).
    Substring {
        /// First character, counted from 0.
        start: usize,
        /// One past the last character.
        end: usize,
    },
    /// By the date at the start of the key, in Go's layout notation (`date`, `DateFormat`,
    /// such as `2006-01-02`); the numeric fields `2006 01 02 15 04 05` are understood.
    Date(String),
}

impl PartitionSpec {
    /// Reads the `Partition` param of an s3 source; `Ok(None)`-like `PartitionSpec::None` when
    /// absent.
    pub fn from_param(value: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::None);
        };
        let field = |name: &str| {
            value.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
        };
        let text = |name: &str| {
            field(name)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let index = |name: &str| -> Result<usize, String> {
            match field(name) {
                None => Ok(0),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| format!("Partition.{name} must be a non-negative integer")),
            }
        };
        let spec = match text("Type").as_str() {
            "" | "none" => Self::None,
            "object" => Self::Object,
            "regex" => {
                let pattern = text("Pattern");
                if pattern.is_empty() {
                    return Err("Partition.Pattern must be set for regex partitioning".into());
                }
                Regex::new(&pattern).map_err(|e| format!("Partition.Pattern: {e}"))?;
                Self::Regex(pattern)
            }
            "substring" => {
                let (start, end) = (index("StartIndex")?, index("EndIndex")?);
                if end <= start {
                    return Err("Partition.EndIndex must be greater than StartIndex".into());
                }
                Self::Substring { start, end }
            }
            "date" => {
                let format = text("DateFormat");
                if format.is_empty() {
                    return Err("Partition.DateFormat must be set for date partitioning".into());
                }
                Self::Date(format)
            }
            other => {
                return Err(format!(
                    "unknown Partition.Type {other:?} (known: none, object, regex, substring, date)"
                ));
            }
        };
        Ok(spec)
    }
}

fn fnv1a32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

fn bucket(key: &str, count: u64) -> u64 {
    u64::from(fnv1a32(key)) % count
}

/// A regex matching a Go date layout's numeric fields; other characters match themselves.
fn date_regex(layout: &str) -> Result<Regex, String> {
    let mut pattern = String::from("^");
    let mut rest = layout;
    while !rest.is_empty() {
        let (piece, len) = if rest.starts_with("2006") {
            (r"\d{4}", 4)
        } else if ["01", "02", "15", "04", "05"]
            .iter()
            .any(|t| rest.starts_with(t))
        {
            (r"\d{2}", 2)
        } else {
            let c = rest.chars().next().map_or(1, char::len_utf8);
            pattern.push_str(&regex::escape(&rest[..c]));
            rest = &rest[c..];
            continue;
        };
        pattern.push_str(piece);
        rest = &rest[len..];
    }
    Regex::new(&pattern).map_err(|e| format!("Partition.DateFormat: {e}"))
}

/// The objects (by key) that partition `index` of `count` processes; `prefix` is the spec's
/// key without a trailing `*`.
pub fn partition_objects(
    keys: Vec<String>,
    spec: &PartitionSpec,
    prefix: &str,
    index: u64,
    count: u64,
) -> Result<Vec<String>, String> {
    if count <= 1 || *spec == PartitionSpec::None {
        return Ok(keys);
    }
    if index >= count {
        return Err(format!(
            "partition index {index} is out of range for {count} partitions"
        ));
    }
    let relative = |key: &str| {
        key.strip_prefix(prefix)
            .unwrap_or(key)
            .trim_start_matches('/')
            .to_string()
    };
    let compiled = match spec {
        PartitionSpec::Regex(pattern) => Some(Regex::new(pattern).map_err(|e| e.to_string())?),
        PartitionSpec::Date(layout) => Some(date_regex(layout)?),
        _ => None,
    };
    let partition_of = |full_key: &str| -> u64 {
        let key = relative(full_key);
        match (spec, &compiled) {
            // Upstream hashes the whole key here, prefix and all.
            (PartitionSpec::Object, _) => bucket(full_key, count),
            (PartitionSpec::Regex(_), Some(re)) => match re.captures(&key) {
                Some(caps) if caps.get(0).is_some_and(|m| !m.as_str().is_empty()) => {
                    let groups: Vec<&str> = caps
                        .iter()
                        .skip(1)
                        .flatten()
                        .map(|m| m.as_str())
                        .filter(|g| !g.is_empty())
                        .collect();
                    if groups.is_empty() {
                        bucket(caps.get(0).map_or("", |m| m.as_str()), count)
                    } else {
                        bucket(&groups.join("\u{1f}"), count)
                    }
                }
                _ => 0,
            },
            (PartitionSpec::Substring { start, end }, _) => {
                let chars: Vec<char> = key.chars().collect();
                if chars.len() < *end {
                    0
                } else {
                    bucket(&chars[*start..*end].iter().collect::<String>(), count)
                }
            }
            (PartitionSpec::Date(_), Some(re)) => match re.find(&key) {
                Some(date) => bucket(date.as_str(), count),
                None => 0,
            },
            _ => 0,
        }
    };
    Ok(keys
        .into_iter()
        .filter(|key| partition_of(key) == index)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("data/file-{i:02}.csv")).collect()
    }

    fn split(spec: &PartitionSpec, keys: &[String], count: u64) -> Vec<Vec<String>> {
        (0..count)
            .map(|i| partition_objects(keys.to_vec(), spec, "data/", i, count).unwrap())
            .collect()
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn every_object_lands_in_exactly_one_partition() {
        let all = keys(10);
        for spec in [
            PartitionSpec::Object,
            PartitionSpec::Regex(r"file-(\d)".into()),
            PartitionSpec::Substring { start: 5, end: 7 },
        ] {
            let parts = split(&spec, &all, 3);
            let mut seen: Vec<String> = parts.concat();
            seen.sort();
            assert_eq!(seen, all, "{spec:?}");
        }
    }

    #[test]
    fn unmatched_keys_go_to_partition_zero() {
        let all = vec!["data/x.csv".to_string(), "data/2024-01-05.csv".to_string()];
        let spec = PartitionSpec::Date("2006-01-02".into());
        let parts = split(&spec, &all, 4);
        assert!(parts[0].contains(&"data/x.csv".to_string()));
        assert_eq!(parts.concat().len(), 2);
    }

    #[test]
    fn params_are_read_and_checked() {
        assert_eq!(
            PartitionSpec::from_param(None).unwrap(),
            PartitionSpec::None
        );
        assert_eq!(
            PartitionSpec::from_param(Some(&json!({"Type": "object"}))).unwrap(),
            PartitionSpec::Object
        );
        assert_eq!(
            PartitionSpec::from_param(Some(
                &json!({"type": "substring", "startIndex": 1, "EndIndex": 3})
            ))
            .unwrap(),
            PartitionSpec::Substring { start: 1, end: 3 }
        );
        assert!(PartitionSpec::from_param(Some(&json!({"Type": "regex"}))).is_err());
        assert!(
            PartitionSpec::from_param(Some(
                &json!({"Type": "substring", "StartIndex": 3, "EndIndex": 1})
            ))
            .is_err()
        );
        assert!(PartitionSpec::from_param(Some(&json!({"Type": "hash"}))).is_err());
    }

    #[test]
    fn one_partition_keeps_everything() {
        let all = keys(4);
        assert_eq!(
            partition_objects(all.clone(), &PartitionSpec::Object, "", 0, 1).unwrap(),
            all
        );
    }
}
