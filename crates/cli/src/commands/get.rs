//! `bacalhau job get` (and the legacy `bacalhau get`): downloads a job's published results,
//! checks, unpacks and merges them into one directory, with a progress bar on a terminal.

use super::Global;
use anyhow::{Context, Result};
use bacalhau_publishers::fetch;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The job's ID (or its short ID, or its name).
    job: String,
    /// Where the results go; default `./job-<id>`.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Keep the downloaded archives as they are, under `<output-dir>/raw`, without unpacking.
    #[arg(long)]
    raw: bool,
    /// How long the whole download may take, e.g. `5m` or `300s` (default
    /// `ResultDownloaders.Timeout`, else 5m).
    #[arg(long, value_parser = parse_timeout)]
    download_timeout_secs: Option<Duration>,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
}

/// Accepts upstream's duration (`5m0s`, `300s`) or a bare number of seconds.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(&text.replace("m0s", "m"))
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
}

pub async fn get(global: &Global, args: GetArgs) -> Result<ExitCode> {
    let client = global.client()?;
    let results = client.job_results(&args.job).await?.items;
    if results.is_empty() {
        outln!(
            "No results found for job {}. Its output may be in `bacalhau job logs {}`.",
            args.job,
            args.job
        );
        return Ok(ExitCode::SUCCESS);
    }
    let output_dir = match &args.output_dir {
        Some(dir) => dir.clone(),
        None => match args.namespace.as_deref() {
            Some(ns) if !ns.is_empty() && ns != "default" => {
                PathBuf::from(format!("job-{ns}-{}", args.job))
            }
            _ => PathBuf::from(format!("job-{}", args.job)),
        },
    };
    std::fs::create_dir_all(&output_dir)
        .with_context(|| format!("cannot create {}", output_dir.display()))?;
    let raw_dir = output_dir.join("raw");
    std::fs::create_dir_all(&raw_dir)
        .with_context(|| format!("cannot create {}", raw_dir.display()))?;
    let http = reqwest::Client::new();
    // `ipfs` results are fetched from the node that holds them: its results server.
    let mut holders = std::collections::HashMap::new();
    if results.iter().any(|r| r.r#type == "ipfs") {
        for execution in client.job_executions(&args.job).await?.items {
            let Some(cid) = execution
                .published_result
                .as_ref()
                .and_then(|r| r.param_str("CID"))
                .map(str::to_string)
            else {
                continue;
            };
            let node = client.get_node(execution.node_id.as_str()).await?.node;
            holders.insert(cid, node.info.compute_node_info.address);
        }
    }
    let stream = !args.raw && results.iter().all(fetch::streamable);
    let download = async {
        let mut downloads = Vec::with_capacity(results.len());
        for (i, result) in results.iter().enumerate() {
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(result.r#type.clone());
            let progress = |done: u64, total: Option<u64>| {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
            };
            let downloaded = if result.r#type == "ipfs" {
                let cid = result.param_str("CID").unwrap_or_default();
                match holders.get(cid).filter(|url| !url.is_empty()) {
                    Some(url) => fetch::fetch_ipfs(&http, result, url, &raw_dir, &progress).await,
                    None => Err(fetch::FetchError::Unsupported(format!(
                        "no node that ran this job serves {cid}"
                    ))),
                }
            } else if stream {
                // Archives over HTTP are unpacked as they arrive: no second copy on disk.
                let dir = raw_dir.join(format!("result-{i}"));
                std::fs::create_dir_all(&dir).map_err(|e| {
                    fetch::FetchError::Io(format!("cannot create {}: {e}", dir.display()))
                })?;
                fetch::fetch_unpacked(&http, result, &dir, &progress)
                    .await
                    .map(|()| dir)
            } else {
                fetch::fetch(&http, result, &raw_dir, &progress).await
            };
            bar.finish_and_clear();
            downloads.push(downloaded?);
        }
        Ok::<_, fetch::FetchError>(downloads)
    };
    let configured = global.config()?.string("ResultDownloaders.Timeout");
    let timeout = match args.download_timeout_secs {
        Some(timeout) => timeout,
        None if !configured.trim().is_empty() => crate::config::parse_duration(&configured)?,
        None => Duration::from_secs(300),
    };
    let downloaded = tokio::time::timeout(timeout, download)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the download took longer than {}; raise --download-timeout-secs",
                humantime::format_duration(timeout)
            )
        })
        .and_then(|result| result.map_err(anyhow::Error::from));
    let downloads = match downloaded {
        Ok(downloads) => downloads,
        Err(e) => {
            // Nothing half-fetched stays behind: the partial downloads go, and the output
            // folder too when this command made it empty.
            let _ = std::fs::remove_dir_all(&raw_dir);
            let _ = std::fs::remove_dir(&output_dir);
            return Err(e);
        }
    };
    if !args.raw {
        let unpacked = tokio::task::spawn_blocking(move || -> Result<()> {
            // Streamed results are directories already; the rest are unpacked here.
            let dirs = fetch::unpack_all(&downloads)?;
            fetch::merge(&dirs, &output_dir)?;
            Ok(())
        });
        unpacked.await.context("unpacking stopped")??;
        std::fs::remove_dir_all(&raw_dir)
            .with_context(|| format!("cannot remove {}", raw_dir.display()))?;
    }
    let shown = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("job-{}", args.job)));
    let shown = std::fs::canonicalize(&shown).unwrap_or(shown);
    outln!(
        "Results for job '{}' have been written to...\n{}",
        args.job,
        shown.display()
    );
    Ok(ExitCode::SUCCESS)
}
