//! Label selectors (`Constraints`) as upstream writes them, Kubernetes' operators included.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A selector operator; a string on the wire (`=`, `in`, `exists`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// The key is absent.
    #[serde(rename = "!")]
    DoesNotExist,
    /// The value equals the single given value.
    #[serde(rename = "=")]
    Equals,
    /// Same as `=`.
    #[serde(rename = "==")]
    DoubleEquals,
    /// The value is one of the given values.
    #[serde(rename = "in")]
    In,
    /// The value differs from the single given value.
    #[serde(rename = "!=")]
    NotEquals,
    /// The value is none of the given values (or the key is absent).
    #[serde(rename = "notin")]
    NotIn,
    /// The key is present.
    #[serde(rename = "exists")]
    Exists,
    /// The value, as an integer, is greater than the given one.
    #[serde(rename = "gt")]
    GreaterThan,
    /// The value, as an integer, is less than the given one.
    #[serde(rename = "lt")]
    LessThan,
}

impl Operator {
    /// The operator as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DoesNotExist => "!",
            Self::Equals => "=",
            Self::DoubleEquals => "==",
            Self::In => "in",
            Self::NotEquals => "!=",
            Self::NotIn => "notin",
            Self::Exists => "exists",
            Self::GreaterThan => "gt",
            Self::LessThan => "lt",
        }
    }
}

/// One requirement on a node's labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// The label key the requirement applies to.
    #[serde(rename = "Key")]
    pub key: String,
    /// How the label's value is compared.
    #[serde(rename = "Operator")]
    pub operator: Operator,
    /// The values compared against.
    #[serde(rename = "Values", default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelectorRequirement {
    /// Checks the shape of the requirement: a key, and as many values as the operator takes.
    pub fn validate(&self) -> Result<(), String> {
        if self.key.trim().is_empty() {
            return Err("selector key cannot be blank".into());
        }
        validate_label_key(&self.key)?;
        match self.operator {
            Operator::In | Operator::NotIn if self.values.is_empty() => {
                Err("selector values cannot be empty for In or NotIn operators".into())
            }
            Operator::Exists | Operator::DoesNotExist if !self.values.is_empty() => {
                Err("selector values must be empty for Exists or DoesNotExist operators".into())
            }
            Operator::Equals
            | Operator::DoubleEquals
            | Operator::NotEquals
            | Operator::GreaterThan
            | Operator::LessThan
                if self.values.len() != 1 =>
            {
                Err("selector values must have exactly one value for other operators".into())
            }
            Operator::GreaterThan | Operator::LessThan
                if self.values[0].parse::<i64>().is_err() =>
            {
                Err(format!(
                    "selector value {:?} must be an integer for gt and lt",
                    self.values[0]
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether a node with these labels satisfies the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.iter().any(|w| w == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                value.is_none_or(|v| self.values.iter().all(|w| w != v))
            }
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl std::fmt::Display for LabelSelectorRequirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::In | Operator::NotIn => write!(
                f,
                "{} {} ({})",
                self.key,
                self.operator.as_str(),
                self.values.join(",")
            ),
            _ => write!(
                f,
                "{}{}{}",
                self.key,
                self.operator.as_str(),
                self.values.join(",")
            ),
        }
    }
}

/// Parses a selector expression as upstream's `--constraints`/`--selector` flags take it:
/// comma-separated `key=value`, `key!=value`, `key in (a,b)`, `key notin (a)`, `key`, `!key`,
/// `key>3`, `key<3`.
pub fn parse_selector(text: &str) -> Result<Vec<LabelSelectorRequirement>, String> {
    let mut requirements = Vec::new();
    for part in split_outside_parens(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let requirement = parse_one(part)?;
        requirement
            .validate()
            .map_err(|e| format!("{part:?}: {e}"))?;
        requirements.push(requirement);
    }
    Ok(requirements)
}

fn split_outside_parens(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_one(part: &str) -> Result<LabelSelectorRequirement, String> {
    let requirement = |key: &str, operator, values: Vec<String>| LabelSelectorRequirement {
        key: key.trim().to_string(),
        operator,
        values,
    };
    for (word, operator) in [(" notin ", Operator::NotIn), (" in ", Operator::In)] {
        if let Some((key, rest)) = part.split_once(word) {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("{part:?}: values must be in parentheses"))?;
            let values = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            return Ok(requirement(key, operator, values));
        }
    }
    for (symbol, operator) in [
        ("!=", Operator::NotEquals),
        ("==", Operator::DoubleEquals),
        ("=", Operator::Equals),
        (">", Operator::GreaterThan),
        ("<", Operator::LessThan),
    ] {
        if let Some((key, value)) = part.split_once(symbol) {
            return Ok(requirement(key, operator, vec![value.trim().to_string()]));
        }
    }
    match part.strip_prefix('!') {
        Some(key) => Ok(requirement(key, Operator::DoesNotExist, Vec::new())),
        None => Ok(requirement(part, Operator::Exists, Vec::new())),
    }
}

/// Checks a label key as Kubernetes (and so upstream's CLI) does: an optional DNS prefix and `/`,
/// then a name of at most 63 alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "invalid label key {key:?}: prefix must be a lowercase DNS subdomain"
            ));
        }
    }
    if !is_label_name(name, false) {
        return Err(format!(
            "invalid label key {key:?}: must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or like a key's name part.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if is_label_name(value, true) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be empty or up to 63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ))
    }
}

fn is_label_name(text: &str, allow_empty: bool) -> bool {
    if text.is_empty() {
        return allow_empty;
    }
    let bytes = text.as_bytes();
    text.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let parsed =
            parse_selector("zone=eu, tier!=gold, env in (a,b), gpu notin (x), ssd, !spot, cores>4")
                .unwrap();
        let ops: Vec<_> = parsed.iter().map(|r| r.operator).collect();
        assert_eq!(
            ops,
            vec![
                Operator::Equals,
                Operator::NotEquals,
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist,
                Operator::GreaterThan
            ]
        );
        assert_eq!(parsed[2].values, vec!["a", "b"]);
    }

    #[test]
    fn matches_labels() {
        let node = labels(&[("zone", "eu"), ("cores", "8")]);
        let all = parse_selector("zone in (eu,us), cores>4, !spot, tier!=gold").unwrap();
        assert!(all.iter().all(|r| r.matches(&node)));
        let miss = parse_selector("zone=us").unwrap();
        assert!(!miss[0].matches(&node));
    }

    #[test]
    fn rejects_bad_keys_and_shapes() {
        assert!(validate_label_key("-bad").is_err());
        assert!(validate_label_key("has space").is_err());
        assert!(validate_label_key("example.com/ok-key").is_ok());
        assert!(parse_selector("zone in ()").is_err());
        let in_without_values = LabelSelectorRequirement {
            key: "k".into(),
            operator: Operator::In,
            values: vec![],
        };
        assert!(in_without_values.validate().is_err());
    }
}
