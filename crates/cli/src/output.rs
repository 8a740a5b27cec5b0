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
    /// Comma-separated values: the table's rows for spreadsheets and scripts.
    Csv,
}

/// The output flags of commands that print tables, as upstream's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TableOutput {
    /// Output format: table, csv, json or yaml.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Pretty-print JSON.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    pub pretty: bool,
    /// Leave out the header row of tables and CSV.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    pub hide_header: bool,
    /// Plain text, without styling (our tables have neither colours nor borders).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    pub no_style: bool,
    /// Full IDs and values, never shortened.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    pub wide: bool,
}

impl TableOutput {
    /// Whether the command prints its table (or CSV) rather than JSON or YAML.
    pub fn is_tabular(&self) -> bool {
        matches!(self.output, Format::Table | Format::Csv)
    }

    /// Prints `table` as a table or as CSV, with or without its header.
    pub fn print(&self, table: &Table) {
        let header: Vec<String> = table
            .header()
            .map(|row| row.cell_iter().map(|c| c.content()).collect())
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = table
            .row_iter()
            .map(|row| row.cell_iter().map(|c| c.content()).collect())
            .collect();
        if self.output == Format::Csv {
            if !self.hide_header {
                outln!("{}", csv_line(&header));
            }
            for row in &rows {
                outln!("{}", csv_line(row));
            }
            return;
        }
        let mut plain = self::table(&[]);
        if !self.hide_header {
            plain.set_header(header);
        }
        for row in rows {
            plain.add_row(row);
        }
        print_table(&plain);
    }
}

/// One CSV record (RFC 4180 quoting).
fn csv_line(cells: &[String]) -> String {
    cells
        .iter()
        .map(|cell| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints `value` as JSON or YAML.
pub fn print_structured<T: Serialize>(value: &T, format: Format, pretty: bool) -> Result<()> {
    match format {
        Format::Csv => anyhow::bail!("--output csv is for tables; use json or yaml here"),
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
        .set_content_arrangement(ContentArrangement::Disabled);
    if !headers.is_empty() {
        table.set_header(headers.iter().map(|h| h.to_uppercase()));
    }
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
    fn csv_quotes_what_needs_it() {
        let cells = ["a".to_string(), "b,c".into(), "say \"hi\"".into()];
        assert_eq!(csv_line(&cells), "a,\"b,c\",\"say \"\"hi\"\"\"");
    }

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
