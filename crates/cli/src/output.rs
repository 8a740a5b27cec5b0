//! Output formats shared by every command: tables for people, JSON and YAML for programs.

use anyhow::Result;
use bacalhau_models::{Timestamp, time};
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use std::time::SystemTime;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A table for people.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Prints `value` as JSON or YAML.
pub fn print_structured<T: Serialize>(value: &T, format: Format, pretty: bool) -> Result<()> {
    match format {
        Format::Yaml => out!("{}", serde_yaml_ng::to_string(value)?),
        Format::Json if pretty => outln!("{}", serde_json::to_string_pretty(value)?),
        _ => outln!("{}", serde_json::to_string(value)?),
    }
    Ok(())
}

/// A table in upstream's borderless style.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    table
}

/// Prints a table flush left, as upstream's, without trailing spaces.
pub fn print_table(table: &Table) {
    let mut table = table.clone();
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for line in table.to_string().lines() {
        outln!("{}", line.trim_end());
    }
}

/// Wire nanoseconds as `2006-01-02 15:04:05` (UTC), as upstream's tables show times.
pub fn date_time(ns: Timestamp) -> String {
    if ns <= 0 {
        return String::new();
    }
    let text = time::rfc3339(ns);
    // RFC 3339 is `YYYY-MM-DDTHH:MM:SS.nnnZ`; keep date and whole seconds.
    let seconds = text.get(..19).unwrap_or(&text);
    seconds.replacen('T', " ", 1)
}

/// How long ago `ns` was: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(ns: Timestamp) -> String {
    if ns <= 0 {
        return String::new();
    }
    let now = time::to_nanos(SystemTime::now());
    let secs = (now.saturating_sub(ns) / 1_000_000_000).max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// Prints `label: value` pairs aligned, as upstream's describe header.
pub fn key_values(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in pairs {
        if value.is_empty() {
            outln!("{key:<width$} =");
        } else {
            outln!("{key:<width$} = {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_is_upstreams_layout() {
        assert_eq!(date_time(1_700_000_000_123_456_789), "2023-11-14 22:13:20");
        assert_eq!(date_time(0), "");
    }

    #[test]
    fn ago_uses_the_largest_unit() {
        let now = time::to_nanos(SystemTime::now());
        assert_eq!(ago(now - 90 * 1_000_000_000), "1m ago");
        assert_eq!(ago(now - 2 * 86_400 * 1_000_000_000), "2d ago");
    }
}
