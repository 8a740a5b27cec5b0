//! `bacalhau config ...`: show the effective configuration, or set a key in the config file.

use super::Global;
use crate::config::write_setting;
use crate::output::{self, Format};
use anyhow::Result;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
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
