//! `bacalhau auth`: helpers for configuring API users.

use anyhow::{Result, bail};
use clap::Subcommand;
use std::io::BufRead as _;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Read a password on stdin and print its bcrypt hash, for `API.Auth.Users[].Password`.
    ///
    /// Example: `echo -n 'long secret phrase' | bacalhau auth hash-password`
    HashPassword,
}

pub fn run(command: AuthCommand) -> Result<ExitCode> {
    match command {
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
