//! `bacalhau audit export|verify`: read the orchestrator's hash-chained audit log and check it
//! here, on the client, so a verification does not take the server's word for it.

use super::Global;
use anyhow::{Context, Result};
use bacalhau_client::ApiClient;
use bacalhau_models::JobHistory;
use bacalhau_models::history::{ChainBreak, ChainVerifier};
use clap::{Args, Subcommand};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write every event of the audit log as JSON Lines, oldest first.
    Export(ExportArgs),
    /// Recompute the hash chain of the whole log and report the first altered or missing
    /// event; exits 1 when the log does not verify.
    Verify,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (default: stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Events fetched per request.
const PAGE: usize = 1000;

/// Calls `each` with every event of the log in order, page by page.
pub async fn for_each_event(
    client: &ApiClient,
    mut each: impl FnMut(&JobHistory) -> Result<()>,
) -> Result<()> {
    let mut since = 0;
    loop {
        let page = client.audit_log(since, PAGE).await?;
        for event in &page.items {
            each(event)?;
        }
        match page.items.last() {
            Some(last) if !page.next_token.is_empty() => since = last.seq_num,
            _ => return Ok(()),
        }
    }
}

/// The result of walking the whole log.
pub struct Verification {
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
    /// Events that verified.
    pub checked: u64,
    /// Every event seen, verified or not.
    pub seen: u64,
}

/// Walks the whole log, calling `each` on every event, and recomputes its chain.
pub async fn verify_log(
    client: &ApiClient,
    mut each: impl FnMut(&JobHistory),
) -> Result<Verification> {
    let mut verifier = ChainVerifier::default();
    let mut broken = None;
    let mut seen = 0;
    for_each_event(client, |event| {
        seen += 1;
        each(event);
        if broken.is_none()
            && let Err(e) = verifier.check(event)
        {
            broken = Some(e);
        }
        Ok(())
    })
    .await?;
    Ok(Verification {
        broken,
        checked: verifier.checked(),
        seen,
    })
}

pub async fn run(global: &Global, command: AuditCommand) -> Result<ExitCode> {
    let client = global.client()?;
    match command {
        AuditCommand::Export(args) => {
            let mut out: Box<dyn std::io::Write> = match &args.output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut count = 0u64;
            for_each_event(&client, |event| {
                serde_json::to_writer(&mut out, event)?;
                out.write_all(b"\n")?;
                count += 1;
                Ok(())
            })
            .await?;
            out.flush()?;
            if let Some(path) = &args.output {
                eprintln!("wrote {count} events to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify => {
            let result = verify_log(&client, |_| {}).await?;
            match result.broken {
                None => {
                    println!(
                        "audit log verified: {} events, chain intact",
                        result.checked
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!(
                        "audit log BROKEN: {problem} ({} events before it verified, {} read)",
                        result.checked, result.seen
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
