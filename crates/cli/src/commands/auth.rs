//! `bacalhau auth`: what the server accepts, and helpers for configuring API users.

use super::Global;
use crate::output::{self, Format};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::io::BufRead as _;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Read a password on stdin and print its bcrypt hash, for `API.Auth.Users[].Password`.
    ///
    /// Example: `echo -n 'long secret phrase' | bacalhau auth hash-password`
    HashPassword,
    /// Show how the server authenticates clients (its `/api/v1/agent/authconfig`).
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format: json or yaml.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    pretty: bool,
}

pub async fn run(global: &Global, command: AuthCommand) -> Result<ExitCode> {
    match command {
        AuthCommand::Info(args) => {
            let config = global.client()?.auth_config().await?;
            output::print_structured(&config, args.output, args.pretty)?;
            if config
                .pointer("/Config/Providers")
                .is_none_or(|p| p.is_null())
            {
                eprintln!(
                    "\nThis server has no single sign-on: send an API key (BACALHAU_API_KEY) or a user name and password (BACALHAU_API_USERNAME, BACALHAU_API_PASSWORD) when it has API users."
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::HashPassword => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!(
                    "no password on stdin: pipe one in, e.g. `echo -n SECRET | bacalhau auth hash-password`"
                );
            }
            if password.len() < 10 {
                bail!("a password must have at least 10 characters");
            }
            let hash = bacalhau_api::server::auth::hash_password(password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
