//! `bacalhau config ...`: show the effective configuration, or set a key in the config file.

use super::Global;
use crate::config::{KEYS, Support, write_setting};
use crate::output::{self, Format};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List every configuration key with its effective value and what it does (keys this
    /// binary accepts but does not act on say so).
    List(ListArgs),
    /// Print the effective configuration: defaults, files, environment and flags merged.
    Show(ShowArgs),
    /// Set a key in the config file (the `--config` file, else ~/.bacalhau/config.yaml).
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Output format (the default is YAML).
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: output::TableOutput,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The key, e.g. `API.Port` or `Compute.Orchestrators`, or `KEY=VALUE`.
    key: String,
    /// The value; lists are comma-separated.
    value: Vec<String>,
}

pub fn run(global: &Global, command: ConfigCommand) -> Result<ExitCode> {
    match command {
        ConfigCommand::Show(args) => {
            let config = global.config()?;
            let format = if args.output == Format::Table {
                Format::Yaml
            } else {
                args.output
            };
            output::print_structured(&config.redacted(), format, args.pretty)?;
        }
        ConfigCommand::List(args) => {
            let config = global.config()?;
            if args.output.output == Format::Yaml {
                // As upstream: the whole effective configuration.
                output::print_structured(&config.redacted(), Format::Yaml, false)?;
                return Ok(ExitCode::SUCCESS);
            }
            let redacted = config.redacted();
            let mut keys: Vec<&crate::config::Key> = KEYS.iter().collect();
            keys.sort_by_key(|k| k.path.to_ascii_lowercase());
            let rows: Vec<KeyRow> = keys
                .iter()
                .map(|key| KeyRow {
                    key: key.path,
                    value: display_value(
                        crate::config::Config::value_in(&redacted, key.path)
                            .unwrap_or(&Value::Null),
                    ),
                    description: match key.support {
                        Support::Honoured => key.description.to_string(),
                        Support::Unused(why) => {
                            format!("{} (accepted, not used: {why})", key.description)
                        }
                    },
                })
                .collect();
            if !args.output.is_tabular() {
                output::print_structured(&rows, args.output.output, args.output.pretty)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = output::table(&["Key", "Value", "Description"]);
            for row in rows {
                table.add_row(vec![row.key.to_string(), row.value, row.description]);
            }
            args.output.print(&table);
        }
        ConfigCommand::Set(args) => {
            let config = global.config()?;
            // Upstream takes `KEY VALUE...` and `KEY=VALUE`.
            let (key, value) = match args.key.split_once('=') {
                Some((key, value)) if args.value.is_empty() => (key.to_string(), value.to_string()),
                _ if args.value.is_empty() => {
                    anyhow::bail!(
                        "config set {}: no value; use `KEY VALUE` or `KEY=VALUE`",
                        args.key
                    )
                }
                _ => (args.key.clone(), args.value.join(",")),
            };
            write_setting(&config.write_path, &key, &value)?;
            outln!("Set {key} in {}", config.write_path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `config list`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyRow {
    key: &'static str,
    value: String,
    description: String,
}

/// A value as `config list` shows it: strings bare, lists comma-separated, the rest as JSON.
fn display_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}
