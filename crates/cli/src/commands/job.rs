//! `bacalhau job ...`: run, describe, list, stop, history, executions, versions, rerun.

use super::Global;
use crate::output::{self, Format};
use anyhow::{Context, Result, bail};
use bacalhau_client::client::ListJobsOptions;
use bacalhau_client::{ApiClient, ClientError};
use bacalhau_models::ids::short_id;
use bacalhau_models::{Execution, Job, JobHistory, JobHistoryType, JobStateType, parse_job_spec};
use clap::{Args, Subcommand};
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job spec (YAML or JSON) from a file, or `-` for standard input.
    Run(RunArgs),
    /// Check a job spec (YAML or JSON) without submitting it.
    Validate(ValidateArgs),
    /// Show a job: its spec summary, executions, history and output.
    Describe(DescribeArgs),
    /// List jobs.
    List(ListArgs),
    /// Stop a running or queued job.
    Stop(StopArgs),
    /// Show a job's history of state changes and events.
    History(HistoryArgs),
    /// List a job's executions.
    Executions(ExecutionsArgs),
    /// List the versions of a job's spec.
    Versions(VersionsArgs),
    /// Run a finished job again, as a new version.
    Rerun(RerunArgs),
    /// Show (or follow) the output of a job's execution.
    Logs(LogsArgs),
    /// Download a job's published results.
    Get(super::get::GetArgs),
    /// Show a job's lineage (ours): the jobs that produced the data it read (upstream) and the
    /// jobs that read its result (downstream), linked by content identity (CIDs, SHA-256).
    Lineage(LineageArgs),
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// How many steps to follow up and down.
    #[arg(long, default_value_t = 10)]
    depth: u64,
    /// Print the tree as JSON or YAML.
    #[arg(long, value_enum)]
    output: Option<Format>,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job spec file; `-` or none reads standard input.
    file: Option<String>,
    #[command(flatten)]
    template: TemplateFlags,
    /// Do not print the server's warnings about the spec.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    hide_warnings: bool,
    #[command(flatten)]
    flags: RunFlags,
}

/// Job specs are Go text/templates, as upstream's: `{{.name}}` takes a variable's value.
#[derive(Debug, Args)]
pub struct TemplateFlags {
    /// A template variable, `NAME=VALUE` (repeatable or comma-separated): `{{.NAME}}` in the
    /// spec becomes VALUE.
    #[arg(
        short = 'V',
        long = "template-vars",
        value_delimiter = ',',
        value_name = "NAME=VALUE"
    )]
    vars: Vec<String>,
    /// A regular expression: environment variables whose names match it become template
    /// variables (`-E '^APP_'`; `.*` for all). `-V` wins over the environment.
    #[arg(short = 'E', long = "template-envs", value_name = "REGEX")]
    envs: Option<String>,
    /// Use the spec as written: `{{` is not a template action.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    no_template: bool,
}

impl TemplateFlags {
    /// The variables from the environment (`-E`), then `-V`.
    fn vars(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let mut vars = std::collections::BTreeMap::new();
        if let Some(pattern) = &self.envs {
            let pattern = regex::Regex::new(pattern)
                .with_context(|| format!("invalid --template-envs pattern {pattern:?}"))?;
            vars.extend(std::env::vars().filter(|(name, _)| pattern.is_match(name)));
        }
        for pair in self.vars.iter().filter(|p| !p.is_empty()) {
            let Some((name, value)) = pair.split_once('=') else {
                bail!("invalid --template-vars {pair:?}: use NAME=VALUE");
            };
            vars.insert(name.to_string(), value.to_string());
        }
        Ok(vars)
    }
}

/// How a submitted job is followed: shared by `job run`, `docker run` and `wasm run`.
/// Switches read as cobra's do: `--wait` is true, `--wait=false` false, and the word after a
/// switch is never taken as its value (`--wait busybox:1.37.0` runs busybox).
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Print only the job ID.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    id_only: bool,
    /// Wait for the job to finish (the default); `--wait=false` returns after submission.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = true)]
    wait: bool,
    /// How long to wait, in seconds.
    #[arg(long, default_value_t = 600)]
    wait_timeout_secs: u64,
    /// Check and print the spec without submitting it.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    dry_run: bool,
    /// Submit even when the spec did not change since the last submission of its name.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    force: bool,
    /// Print the submitted job as JSON or YAML instead of progress (`-o/--output` names
    /// result paths on `docker run` and `wasm run`, as upstream).
    #[arg(long = "output-format", value_enum)]
    output: Option<Format>,
    /// Pretty-print JSON.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    pretty: bool,
    /// Stream the job's output while it runs, instead of its progress events.
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    follow: bool,
    /// After the job ends, list its executions by node.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    node_details: bool,
    /// Print progress events grouped by execution once the job ends, rather than as they come.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    group_events: bool,
    /// Serve the job from the result cache when an earlier run had the same content key
    /// (engine, params, image digest, env, each input's content, result paths, publisher),
    /// and keep this run for later ones (ours; sets the job's `bacalhau-rs/cache` meta).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    cache: bool,
    /// Run the job on N distinct nodes and compare their result CIDs: agreement completes it
    /// with one result, disagreement fails it naming each node (ours; sets the job's
    /// `bacalhau-rs/verify` meta; for deterministic jobs, such as WASM).
    #[arg(long, value_name = "N")]
    verify: Option<u64>,
    /// Set by `job run --hide-warnings`.
    #[arg(skip)]
    hide_warnings: bool,
}

impl RunFlags {
    /// The job with the meta entries `--cache` and `--verify` ask for.
    fn with_extras(&self, job: &Job) -> Job {
        let mut job = job.clone();
        if self.cache {
            job.meta
                .insert(bacalhau_models::content::CACHE_META.into(), "true".into());
        }
        if let Some(nodes) = self.verify {
            job.meta.insert(
                bacalhau_models::content::VERIFY_META.into(),
                nodes.to_string(),
            );
        }
        job
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The job spec file; `-` reads standard input.
    file: String,
    #[command(flatten)]
    template: TemplateFlags,
}

/// Which version of a job a command looks at, as upstream's `-v/--version` and
/// `--all-versions`.
#[derive(Debug, Args, Clone, Default)]
pub struct VersionFlags {
    /// The job version (0: the latest).
    #[arg(short = 'v', long = "version", default_value_t = 0)]
    version: u64,
    /// Every version of the job (`--version` wins when both are given).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    all_versions: bool,
}

/// Upstream's paging flags of list commands.
#[derive(Debug, Args, Clone, Default)]
pub struct PageFlags {
    /// How many items per page (0: the server's default).
    #[arg(long)]
    limit: Option<usize>,
    /// Continue a previous listing.
    #[arg(long)]
    next_token: Option<String>,
    /// The field to sort by.
    #[arg(long)]
    order_by: Option<String>,
    /// Reverse the order.
    #[arg(long, alias = "reverse", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    order_reversed: bool,
}

impl PageFlags {
    fn query(&self, default_limit: usize) -> bacalhau_client::client::ListQuery {
        bacalhau_client::client::ListQuery {
            limit: self.limit.unwrap_or(default_limit),
            next_token: self.next_token.clone().unwrap_or_default(),
            order_by: self.order_by.clone().unwrap_or_default(),
            reverse: self.order_reversed,
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// Keep streaming new output until the execution ends.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Start from the end: `--tail` shows no earlier output (only new lines with
    /// `--follow`), `--tail=N` the last N lines.
    #[arg(short = 't', long, value_name = "N", num_args = 0..=1, require_equals = true, default_missing_value = "0")]
    tail: Option<usize>,
    /// The job version whose execution to show (0: the latest).
    #[arg(short = 'v', long = "version", default_value_t = 0)]
    version: u64,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Which execution (ID or prefix); by default the most recent one.
    #[arg(short = 'e', long)]
    execution_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// The job version to show (0: the latest).
    #[arg(short = 'v', long = "version", default_value_t = 0)]
    version: u64,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Print the job as JSON or YAML.
    #[arg(long, value_enum)]
    output: Option<Format>,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many jobs to show.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Only jobs whose labels match this selector, e.g. `env=prod,region in (eu,us)`; the
    /// default, as upstream's, hides canary jobs; `--labels ''` shows all.
    #[arg(long, default_value = "bacalhau_canary != true")]
    labels: String,
    /// Newest first.
    #[arg(long, alias = "reverse", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    order_reversed: bool,
    /// The field to sort by: created_at.
    #[arg(long)]
    order_by: Option<String>,
    /// Continue a previous listing.
    #[arg(long)]
    next_token: Option<String>,
    /// The namespace; `*` for all.
    #[arg(long)]
    namespace: Option<String>,
    /// Ours: only jobs in these states (comma-separated or repeated, any case), e.g.
    /// `--state running,queued`.
    #[arg(long, value_delimiter = ',', value_parser = parse_job_state)]
    state: Vec<JobStateType>,
    #[command(flatten)]
    output: output::TableOutput,
}

/// A job state by name, any case.
fn parse_job_state(name: &str) -> Result<JobStateType, String> {
    JobStateType::parse_name(name.trim()).ok_or_else(|| {
        let known: Vec<&str> = JobStateType::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown job state {name:?}: one of {}", known.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// Why the job is stopped (recorded in its history).
    #[arg(long, default_value = "")]
    reason: String,
    /// Print nothing on success.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    quiet: bool,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// `all`, `job` or `execution` events.
    #[arg(long, default_value = "all")]
    event_type: String,
    /// Only events of this execution.
    #[arg(long)]
    execution_id: Option<String>,
    #[command(flatten)]
    versions: VersionFlags,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
    #[command(flatten)]
    page: PageFlags,
    #[command(flatten)]
    output: output::TableOutput,
    /// Check the job's events against the audit log's hash chain: each event's own hash, its
    /// place in the chain, and the chain as a whole; exits 1 on any mismatch.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    verify: bool,
}

#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    #[command(flatten)]
    versions: VersionFlags,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
    #[command(flatten)]
    page: PageFlags,
    #[command(flatten)]
    output: output::TableOutput,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// The job's namespace.
    #[arg(long)]
    namespace: Option<String>,
    #[command(flatten)]
    output: output::TableOutput,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// The version to run again (0: the latest).
    #[arg(short = 'v', long, default_value_t = 0)]
    version: u64,
    /// Why (recorded in the job's history).
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    flags: RunFlags,
}

pub async fn run(global: &Global, command: JobCommand) -> Result<ExitCode> {
    match command {
        JobCommand::Run(args) => run_job(global, args).await,
        JobCommand::Validate(args) => validate(args),
        JobCommand::Describe(args) => describe(&global.client()?, args).await,
        JobCommand::List(args) => list(&global.client()?, args).await,
        JobCommand::Stop(args) => stop(&global.client()?, args).await,
        JobCommand::History(args) => history(&global.client()?, args).await,
        JobCommand::Executions(args) => executions(&global.client()?, args).await,
        JobCommand::Versions(args) => versions(&global.client()?, args).await,
        JobCommand::Rerun(args) => rerun(global, args).await,
        JobCommand::Logs(args) => logs(&global.client()?, args).await,
        JobCommand::Get(args) => super::get::get(global, args).await,
        JobCommand::Lineage(args) => lineage(&global.client()?, args).await,
    }
}

/// Reads a spec from a file, or standard input for `-` or no file, and renders its template.
fn read_spec(file: Option<&str>, template: &TemplateFlags) -> Result<Job> {
    let text = match file {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the job spec from standard input")?;
            text
        }
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read job spec {file}"))?
        }
    };
    let text = if template.no_template {
        text
    } else {
        bacalhau_models::template::render_spec_template(&text, &template.vars()?)?
    };
    Ok(parse_job_spec(&text)?)
}

async fn run_job(global: &Global, args: RunArgs) -> Result<ExitCode> {
    let job = read_spec(args.file.as_deref(), &args.template)?;
    if args.flags.dry_run {
        return dry_run_diff(global, &job, &args.flags).await;
    }
    let mut flags = args.flags;
    flags.hide_warnings = args.hide_warnings;
    submit(global, &job, &flags).await
}

/// `job run --dry-run`: what submitting would change, from the server's diff against the stored
/// job of the same name; the local spec when the server cannot be asked.
async fn dry_run_diff(global: &Global, job: &Job, flags: &RunFlags) -> Result<ExitCode> {
    if let Err(errors) = job.validate() {
        bail!("{}", bacalhau_models::job::describe_errors(&errors));
    }
    let diff = match global.client() {
        Ok(client) => client.diff_job(job).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match diff {
        Ok(response) if response.diff.trim().is_empty() => {
            eprintln!("Warning: no diff detected: the stored job is the same");
        }
        Ok(response) => {
            for warning in &response.warnings {
                eprintln!("Warning: {warning}");
            }
            outln!("{}", response.diff.trim_end());
        }
        Err(e) => {
            eprintln!(
                "Error: {e:#}\nWarning: falling back to offline mode: the job as it would be submitted:"
            );
            output::print_structured(job, flags.output.unwrap_or(Format::Yaml), flags.pretty)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `job validate`: parse, template and check a spec without a server.
fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let file = (args.file != "-").then_some(args.file.as_str());
    let mut job = read_spec(file, &args.template)?;
    job.normalize(&bacalhau_models::job::JobDefaults::default());
    if let Err(errors) = job.validate() {
        bail!(
            "the job spec is not valid:\n{}",
            bacalhau_models::job::describe_errors(&errors)
        );
    }
    outln!("OK");
    Ok(ExitCode::SUCCESS)
}

/// Submits `job` and follows it as `flags` say; the exit code is 1 when the job failed.
pub async fn submit(global: &Global, job: &Job, flags: &RunFlags) -> Result<ExitCode> {
    let job = &flags.with_extras(job);
    if flags.dry_run {
        if let Err(errors) = job.validate() {
            bail!("{}", bacalhau_models::job::describe_errors(&errors));
        }
        output::print_structured(job, flags.output.unwrap_or(Format::Yaml), flags.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let client = global.client()?;
    let submitted = client.put_job(job, flags.force).await?;
    if flags.id_only {
        outln!("{}", submitted.job_id);
    } else if flags.output.is_none() {
        if !flags.hide_warnings {
            for warning in &submitted.warnings {
                eprintln!("Warning: {warning}");
            }
        }
        outln!("Job successfully submitted. Job ID: {}", submitted.job_id);
    }
    if !flags.wait {
        if let Some(format) = flags.output {
            let job = client.get_job(&submitted.job_id, "").await?.job;
            output::print_structured(&job, format, flags.pretty)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let quiet = flags.id_only || flags.output.is_some();
    if flags.follow && !quiet {
        outln!(
            "Waiting for logs... (Enter Ctrl+C to exit at any time, your job will continue running):\n"
        );
        return follow_logs(&client, &submitted.job_id, flags.wait_timeout_secs).await;
    }
    if !quiet {
        outln!(
            "Checking job status... (Enter Ctrl+C to exit at any time, your job will continue running):\n"
        );
    }
    let job = follow(
        &client,
        &submitted.job_id,
        flags.wait_timeout_secs,
        quiet || flags.group_events,
    )
    .await?;
    if flags.group_events && !quiet {
        print_grouped_events(&client, &submitted.job_id).await?;
    }
    if let Some(format) = flags.output {
        output::print_structured(&job, format, flags.pretty)?;
    }
    if flags.node_details {
        let executions = client.job_executions(&submitted.job_id).await?.items;
        outln!("\nJob Results By Node:");
        for execution in &executions {
            outln!(
                "Node {}: {} (exit code {})",
                execution.node_id,
                execution.compute_state.state_type,
                execution
                    .run_output
                    .as_ref()
                    .map_or("-".to_string(), |r| r.exit_code.to_string())
            );
        }
    }
    if !quiet {
        print_outputs(&client, &submitted.job_id).await?;
        outln!(
            "\nTo get more details about the run, execute:\n\tbacalhau job describe {}",
            submitted.job_id
        );
    }
    match job.state.state_type {
        JobStateType::Failed => {
            eprintln!("\nError: job failed: {}", job.state.message);
            Ok(ExitCode::FAILURE)
        }
        JobStateType::Running if is_long_running(&job) => {
            eprintln!(
                "\nThe {} job is running; stop it with `bacalhau job stop {}`.",
                job.r#type, submitted.job_id
            );
            Ok(ExitCode::SUCCESS)
        }
        state if !state.is_terminal() => {
            eprintln!(
                "\nStill {state} after {}s; follow it with `bacalhau job describe {}`.",
                flags.wait_timeout_secs, submitted.job_id
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Streams a just-submitted job's output once it has an execution, then reports its end.
async fn follow_logs(client: &ApiClient, id: &str, timeout_secs: u64) -> Result<ExitCode> {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        let response = client.get_job(id, "executions").await?;
        let started = response.executions.is_some_and(|e| !e.items.is_empty());
        if started || response.job.state.state_type.is_terminal() {
            break;
        }
        if Instant::now() >= deadline {
            bail!("job {id} did not start within {timeout_secs}s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = client.get_job(id, "").await?.job;
    if job.state.state_type != JobStateType::Failed {
        print_log(client, id, "", None, true, 0).await?;
    }
    let job = follow(client, id, timeout_secs, true).await?;
    if job.state.state_type == JobStateType::Failed {
        eprintln!("\nError: job failed: {}", job.state.message);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints an execution's log as it arrives, all of it to stdout as upstream's `job logs`.
async fn print_log(
    client: &ApiClient,
    id: &str,
    execution_id: &str,
    tail: Option<usize>,
    follow: bool,
    job_version: u64,
) -> Result<()> {
    let mut lines = client
        .logs(id, execution_id, tail, follow, job_version)
        .await?;
    while let Some(item) = lines.recv().await {
        match item {
            Ok((_, text)) => {
                out!("{text}");
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
            }
            Err(error) => bail!("{error}"),
        }
    }
    Ok(())
}

async fn logs(client: &ApiClient, args: LogsArgs) -> Result<ExitCode> {
    let _ = &args.namespace; // IDs are unique across namespaces; accepted as upstream's.
    print_log(
        client,
        &args.id,
        args.execution_id.as_deref().unwrap_or(""),
        args.tail,
        args.follow,
        args.version,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints what the job's finished executions wrote: stdout to stdout, stderr to stderr.
async fn print_outputs(client: &ApiClient, id: &str) -> Result<()> {
    let executions = client.job_executions(id).await?.items;
    let finished: Vec<_> = executions
        .iter()
        .filter(|e| {
            e.run_output
                .as_ref()
                .is_some_and(|r| !r.stdout.is_empty() || !r.stderr.is_empty())
        })
        .collect();
    for execution in &finished {
        let Some(run) = &execution.run_output else {
            continue;
        };
        if finished.len() > 1 {
            outln!("\nExecution {}:", execution.id.short());
        } else {
            outln!();
        }
        out!("{}", run.stdout);
        if run.stdout_truncated {
            outln!("\n... output truncated: `bacalhau job logs {id}` has all of it");
        }
        eprint!("{}", run.stderr);
    }
    Ok(())
}

/// Prints new history events until the job is terminal or the timeout passes.
async fn follow(client: &ApiClient, id: &str, timeout_secs: u64, quiet: bool) -> Result<Job> {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let mut printed = 0u64;
    // Our orchestrator answers a wait as soon as the job has news; upstream's has no such
    // route (404 for a job just read), and is polled instead.
    let mut waits = true;
    let mut delay = Duration::from_millis(20);
    let mut response = client.get_job(id, "history").await?;
    loop {
        for event in response
            .history
            .as_ref()
            .map(|h| h.items.as_slice())
            .unwrap_or_default()
        {
            if event.seq_num > printed {
                printed = event.seq_num;
                if !quiet {
                    print_event(event);
                }
            }
        }
        let job = response.job;
        // A daemon or service job runs until stopped: following it ends once it runs.
        let running_for_good =
            is_long_running(&job) && job.state.state_type == JobStateType::Running;
        let now = Instant::now();
        if job.state.state_type.is_terminal() || running_for_good || now >= deadline {
            return Ok(job);
        }
        let left = (deadline - now).as_secs().clamp(1, MAX_WAIT_SECS);
        if waits {
            match client.wait_job(id, "history", Some(printed), left).await {
                Ok(next) => {
                    response = next;
                    continue;
                }
                Err(ClientError::Api { status: 404, .. }) => waits = false,
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::sleep(delay).await;
        // Fast jobs finish in milliseconds; long ones need not be polled that often.
        delay = (delay * 2).min(Duration::from_millis(500));
        response = client.get_job(id, "history").await?;
    }
}

/// The longest one wait asks the orchestrator to hold (its limit).
const MAX_WAIT_SECS: u64 = 60;

/// Whether `job` runs until it is stopped (daemon and service jobs) rather than to completion.
fn is_long_running(job: &Job) -> bool {
    matches!(job.r#type.as_str(), "daemon" | "service")
}

/// The job's events, job-level first, then each execution's together.
async fn print_grouped_events(client: &ApiClient, id: &str) -> Result<()> {
    let events = client
        .get_job(id, "history")
        .await?
        .history
        .map(|h| h.items)
        .unwrap_or_default();
    let mut groups: Vec<(String, Vec<&JobHistory>)> = Vec::new();
    for event in &events {
        let key = event
            .execution_id
            .as_ref()
            .map(|e| e.short().to_string())
            .unwrap_or_default();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(event),
            None => groups.push((key, vec![event])),
        }
    }
    groups.sort_by_key(|(key, _)| !key.is_empty());
    for (_, group) in groups {
        for event in group {
            print_event(event);
        }
    }
    Ok(())
}

fn print_event(event: &JobHistory) {
    let time = event.time.get(11..19).unwrap_or(&event.time);
    let scope = match (&event.r#type, &event.execution_id) {
        (JobHistoryType::ExecutionLevel, Some(id)) => format!("Execution {}", id.short()),
        _ => "Job".to_string(),
    };
    outln!("\t{time}  {scope:<20} {}", event.event.message);
}

async fn describe(client: &ApiClient, args: DescribeArgs) -> Result<ExitCode> {
    let query = bacalhau_client::client::ListQuery {
        namespace: args.namespace.clone().unwrap_or_default(),
        job_version: args.version,
        ..Default::default()
    };
    let response = client
        .get_job_version(&args.id, "history,executions", &query)
        .await?;
    if let Some(format) = args.output {
        output::print_structured(&response, format, args.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let job = &response.job;
    let mut header = vec![
        ("ID", job.id.to_string()),
        ("Name", job.name.clone()),
        ("Namespace", job.namespace.clone()),
        ("Type", job.r#type.clone()),
        ("State", job.state.state_type.to_string()),
        ("Message", job.state.message.clone()),
    ];
    if matches!(job.r#type.as_str(), "batch" | "service") {
        header.push(("Count", job.count.to_string()));
    }
    header.push(("Created Time", output::date_time(job.create_time)));
    header.push(("Modified Time", output::date_time(job.modify_time)));
    header.push(("Version", job.version.to_string()));
    output::key_values(&header);

    let executions: Vec<Execution> = response.executions.map(|e| e.items).unwrap_or_default();
    let history: Vec<JobHistory> = response.history.map(|h| h.items).unwrap_or_default();
    if !executions.is_empty() {
        outln!("\nSummary");
        let mut counts = std::collections::BTreeMap::new();
        for execution in &executions {
            *counts
                .entry(execution.compute_state.state_type.to_string())
                .or_insert(0) += 1;
        }
        for (state, n) in counts {
            outln!("{state:<12} = {n}");
        }
        outln!("\nExecutions");
        print_executions(&executions, false);
        print_data(&executions);
        print_content(job, &executions, &history);
    }
    outln!("\nJob History");
    print_history(
        history
            .iter()
            .filter(|e| e.r#type == JobHistoryType::JobLevel),
    );
    for execution in &executions {
        let events: Vec<&JobHistory> = history
            .iter()
            .filter(|e| e.execution_id.as_ref() == Some(&execution.id))
            .collect();
        if !events.is_empty() {
            outln!("\nExecution {} History", execution.id.short());
            print_history(events.into_iter());
        }
    }
    let outputs: Vec<(String, String)> = executions
        .iter()
        .filter_map(|e| {
            let run = e.run_output.as_ref()?;
            let mut text = run.stdout.clone();
            if !run.stderr.is_empty() {
                text.push_str(&run.stderr);
            }
            if run.stdout_truncated || run.stderr_truncated {
                text.push_str("\n...\nOutput truncated");
            }
            (!text.is_empty()).then(|| (e.id.short().to_string(), text))
        })
        .collect();
    if !outputs.is_empty() {
        outln!("\nStandard Output");
        for (id, text) in outputs {
            if executions.len() > 1 {
                outln!("Execution {id}:");
            }
            outln!("{}", text.trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn lineage(client: &ApiClient, args: LineageArgs) -> Result<ExitCode> {
    let tree = client
        .job_lineage(
            &args.id,
            args.namespace.as_deref().unwrap_or_default(),
            args.depth,
        )
        .await?;
    if let Some(format) = args.output {
        output::print_structured(&tree, format, args.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}", lineage_label(&tree));
    let upstream: Vec<String> = lineage_upstream(&tree.inputs);
    outln!("Upstream (what it read, and the jobs that produced it)");
    if upstream.is_empty() {
        outln!("  (no inputs)");
    }
    for line in upstream {
        outln!("{line}");
    }
    outln!("Downstream (the jobs that read its result)");
    let downstream = lineage_downstream(&tree.consumed_by);
    if downstream.is_empty() {
        outln!("  (none)");
    }
    for line in downstream {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn lineage_label(node: &bacalhau_models::lineage::LineageNode) -> String {
    let name = if node.name.is_empty() || node.name == node.job_id.as_str() {
        String::new()
    } else {
        format!(" ({})", node.name)
    };
    let result = node
        .result
        .as_ref()
        .map(|r| format!(" → {r}"))
        .unwrap_or_default();
    let cut = if node.truncated { " …" } else { "" };
    format!("{}{name} {}{result}{cut}", node.job_id, node.state)
}

/// A tree line's branch and the indent of what hangs under it, for the last child or another.
fn tree_branch(last: bool) -> (&'static str, &'static str) {
    if last {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    }
}

/// Tree lines for `inputs` and, under each, the jobs that produced it.
fn lineage_upstream(inputs: &[bacalhau_models::lineage::LineageInput]) -> Vec<String> {
    fn walk(
        inputs: &[bacalhau_models::lineage::LineageInput],
        indent: &str,
        out: &mut Vec<String>,
    ) {
        for (i, input) in inputs.iter().enumerate() {
            let (branch, next) = tree_branch(i + 1 == inputs.len());
            let mut what = format!("{} {}", input.target, input.source_type);
            if !input.place.is_empty() {
                what.push_str(&format!(" {}", input.place));
            }
            if let Some(identity) = input
                .identity
                .as_ref()
                .filter(|i| i.as_str() != input.place)
            {
                what.push_str(&format!(" = {identity}"));
            }
            out.push(format!("{indent}{branch}{what}"));
            let child_indent = format!("{indent}{next}");
            for (j, job) in input.produced_by.iter().enumerate() {
                let (jb, jn) = tree_branch(j + 1 == input.produced_by.len());
                out.push(format!(
                    "{child_indent}{jb}produced by {}",
                    lineage_label(job)
                ));
                walk(&job.inputs, &format!("{child_indent}{jn}"), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(inputs, "  ", &mut out);
    out
}

/// Tree lines for the jobs that read a result, and theirs in turn.
fn lineage_downstream(consumers: &[bacalhau_models::lineage::LineageNode]) -> Vec<String> {
    fn walk(
        consumers: &[bacalhau_models::lineage::LineageNode],
        indent: &str,
        out: &mut Vec<String>,
    ) {
        for (i, job) in consumers.iter().enumerate() {
            let (branch, next) = tree_branch(i + 1 == consumers.len());
            out.push(format!("{indent}{branch}read by {}", lineage_label(job)));
            walk(&job.consumed_by, &format!("{indent}{next}"), out);
        }
    }
    let mut out = Vec::new();
    walk(consumers, "  ", &mut out);
    out
}

/// What each execution read and produced by content, its content key, and how the result
/// cache treated the job.
fn print_content(job: &Job, executions: &[Execution], history: &[JobHistory]) {
    use bacalhau_models::content::{self, CACHED_FROM_DETAIL};
    let mut lines = Vec::new();
    for execution in executions {
        let inputs = content::input_identities(execution);
        let key = content::execution_key(execution);
        let result = content::result_identity(execution);
        if inputs.is_empty() && key.is_none() {
            continue;
        }
        lines.push(format!("{}:", execution.id.short()));
        for (target, identity) in inputs {
            lines.push(format!("  input  {target} = {identity}"));
        }
        if let Some(result) = result {
            lines.push(format!("  result {result}"));
        }
        if let Some(key) = key {
            lines.push(format!("  key    {key}"));
        }
    }
    if !lines.is_empty() {
        outln!("\nContent");
        for line in lines {
            outln!("{line}");
        }
    }
    if !content::wants_cache(job) {
        return;
    }
    let served = history.iter().find(|e| {
        e.event.topic == bacalhau_models::history::Topic::Cache
            && e.event.details.contains_key(CACHED_FROM_DETAIL)
            && e.execution_id.is_some()
    });
    let verdict = match served {
        Some(event) => format!(
            "hit: served from {} (saved {} s of compute)",
            event.event.details[CACHED_FROM_DETAIL],
            event
                .event
                .details
                .get("SavedSeconds")
                .map_or("?", String::as_str)
        ),
        None if executions
            .iter()
            .any(|e| content::execution_key(e).is_some()) =>
        {
            "miss: ran, and kept for later runs with the same key".to_string()
        }
        None => "miss".to_string(),
    };
    outln!("\nCache: {verdict}");
}

/// Bytes each execution read from its inputs and published, and where its results went.
fn print_data(executions: &[Execution]) {
    let bytes = bacalhau_models::resources::format_bytes;
    let mut lines = Vec::new();
    for execution in executions {
        let details = &execution.compute_state.details;
        let inputs: Vec<String> = details
            .iter()
            .filter_map(|(key, value)| {
                let target = key.strip_prefix("InputBytes:")?;
                Some(format!("{target} {}", bytes(value.parse().ok()?)))
            })
            .collect();
        let published = details
            .get("PublishedBytes")
            .and_then(|v| v.parse().ok())
            .map(bytes);
        if inputs.is_empty() && published.is_none() {
            continue;
        }
        let mut line = format!("{}:", execution.id.short());
        if !inputs.is_empty() {
            line.push_str(&format!(" Read {}", inputs.join(", ")));
        }
        if let Some(published) = published {
            let place = execution
                .published_result
                .as_ref()
                .map(|r| {
                    let location = r
                        .param_str("URL")
                        .or_else(|| r.param_str("CID"))
                        .map(str::to_string)
                        .or_else(|| {
                            Some(format!(
                                "s3://{}/{}",
                                r.param_str("Bucket")?,
                                r.param_str("Key")?
                            ))
                        })
                        .unwrap_or_default();
                    format!(" ({} {location})", r.r#type)
                })
                .unwrap_or_default();
            line.push_str(&format!(" Published {published}{place}"));
        }
        lines.push(line);
    }
    if !lines.is_empty() {
        outln!("\nData");
        for line in lines {
            outln!("{line}");
        }
    }
}

fn print_history<'a>(events: impl Iterator<Item = &'a JobHistory>) {
    output::print_table(&history_table(events));
}

fn history_table<'a>(events: impl Iterator<Item = &'a JobHistory>) -> comfy_table::Table {
    let mut table = output::table(&["Time", "Level", "Exec. ID", "Node ID", "Topic", "Event"]);
    for event in events {
        let level = match event.r#type {
            JobHistoryType::ExecutionLevel => "ExecutionLevel",
            _ => "JobLevel",
        };
        table.add_row(vec![
            event.time.get(11..19).unwrap_or(&event.time).to_string(),
            level.to_string(),
            event
                .execution_id
                .as_ref()
                .map(|e| e.short().to_string())
                .unwrap_or_default(),
            event
                .event
                .details
                .get("NodeID")
                .map(|n| short_id(n).to_string())
                .unwrap_or_default(),
            event.event.topic.to_string(),
            event.event.message.clone(),
        ]);
    }
    table
}

fn print_executions(executions: &[Execution], wide: bool) {
    output::print_table(&executions_table(executions, wide));
}

fn executions_table(executions: &[Execution], wide: bool) -> comfy_table::Table {
    let mut table = output::table(&[
        "Created", "Modified", "ID", "Node ID", "Rev.", "State", "Desired",
    ]);
    for execution in executions {
        let id = if wide {
            execution.id.to_string()
        } else {
            execution.id.short().to_string()
        };
        table.add_row(vec![
            output::ago(execution.create_time),
            output::ago(execution.modify_time),
            id,
            short_id(execution.node_id.as_str()).to_string(),
            execution.revision.to_string(),
            execution.compute_state.state_type.to_string(),
            execution.desired_state.state_type.to_string(),
            execution
                .run_output
                .as_ref()
                .filter(|r| r.error_msg.is_empty() || r.exit_code != 0)
                .map(|r| r.exit_code.to_string())
                .unwrap_or_default(),
        ]);
    }
    table
}

async fn list(client: &ApiClient, args: ListArgs) -> Result<ExitCode> {
    let options = ListJobsOptions {
        namespace: args.namespace.unwrap_or_default(),
        labels: args.labels,
        limit: args.limit,
        reverse: args.order_reversed,
        next_token: args.next_token.unwrap_or_default(),
        order_by: args.order_by.unwrap_or_default(),
        states: args.state,
    };
    let page = client.list_jobs(&options).await?;
    if !args.output.is_tabular() {
        output::print_structured(&page.items, args.output.output, args.output.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["Created", "ID", "Name", "Job", "Type", "State"]);
    for job in &page.items {
        let id = if args.output.wide {
            job.id.to_string()
        } else {
            job.short_id().to_string()
        };
        table.add_row(vec![
            output::ago(job.create_time),
            id,
            job.name.clone(),
            job.task()
                .map(|t| t.engine.r#type.clone())
                .unwrap_or_default(),
            job.r#type.clone(),
            job.state.state_type.to_string(),
        ]);
    }
    args.output.print(&table);
    if !page.next_token.is_empty() && args.output.output == Format::Table {
        outln!(
            "\nTo fetch more records use:\n\tbacalhau job list --limit {} --next-token {}",
            args.limit,
            page.next_token
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stop(client: &ApiClient, args: StopArgs) -> Result<ExitCode> {
    let _ = &args.namespace; // IDs are unique across namespaces; accepted as upstream's.
    let response = client.stop_job(&args.id, &args.reason).await?;
    if !args.quiet {
        if response.evaluation_id.is_empty() {
            outln!("Job {} was already stopped.", args.id);
        } else {
            outln!(
                "Job stop successfully submitted with evaluation ID: {}",
                response.evaluation_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(client: &ApiClient, args: HistoryArgs) -> Result<ExitCode> {
    let mut query = args.page.query(0);
    query.namespace = args.namespace.clone().unwrap_or_default();
    query.job_version = args.versions.version;
    query.all_job_versions = args.versions.all_versions && args.versions.version == 0;
    if !args.event_type.is_empty() {
        query
            .filters
            .push(("event_type".into(), args.event_type.clone()));
    }
    if let Some(execution) = &args.execution_id {
        query
            .filters
            .push(("execution_id".into(), execution.clone()));
    }
    // Without --limit every page is read; with it, one page and the token for the next.
    let one_page = args.page.limit.is_some();
    let mut events = Vec::new();
    let next_token = loop {
        let page = client.job_history_with(&args.id, &query).await?;
        events.extend(page.items);
        if page.next_token.is_empty() || one_page {
            break page.next_token;
        }
        query.next_token = page.next_token;
    };
    if !args.output.is_tabular() {
        output::print_structured(&events, args.output.output, args.output.pretty)?;
    } else {
        args.output.print(&history_table(events.iter()));
        if !next_token.is_empty() && args.output.output == Format::Table {
            outln!("\nTo fetch more records use: --next-token {next_token}");
        }
    }
    if args.verify {
        return verify_history(client, &events).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `job history --verify`: the job's events must each match their hash, appear unchanged in
/// the audit log, and the log's chain must be intact.
async fn verify_history(client: &ApiClient, events: &[JobHistory]) -> Result<ExitCode> {
    let mut problems = Vec::new();
    for event in events {
        if event.hash != event.chain_hash() {
            problems.push(format!(
                "event {} was altered: its content does not match its hash",
                event.seq_num
            ));
        }
    }
    let mut in_log = std::collections::HashMap::new();
    let mine: std::collections::HashSet<u64> = events.iter().map(|e| e.seq_num).collect();
    let log = super::audit::verify_log(client, |event| {
        if mine.contains(&event.seq_num) {
            in_log.insert(event.seq_num, event.hash.clone());
        }
    })
    .await?;
    for event in events {
        match in_log.get(&event.seq_num) {
            None => problems.push(format!(
                "event {} is missing from the audit log",
                event.seq_num
            )),
            Some(hash) if *hash != event.hash => problems.push(format!(
                "event {} differs from its copy in the audit log",
                event.seq_num
            )),
            Some(_) => {}
        }
    }
    if let Some(broken) = log.broken {
        problems.push(format!("audit log: {broken}"));
    }
    if problems.is_empty() {
        outln!(
            "\nhistory verified: {} events of this job, audit log chain intact ({} events)",
            events.len(),
            log.checked
        );
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("\nhistory does NOT verify:");
        for problem in problems {
            outln!("  {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

async fn executions(client: &ApiClient, args: ExecutionsArgs) -> Result<ExitCode> {
    let mut query = args.page.query(20);
    query.namespace = args.namespace.clone().unwrap_or_default();
    query.job_version = args.versions.version;
    query.all_job_versions = args.versions.all_versions && args.versions.version == 0;
    let page = client.job_executions_with(&args.id, &query).await?;
    if !args.output.is_tabular() {
        output::print_structured(&page.items, args.output.output, args.output.pretty)?;
    } else {
        args.output
            .print(&executions_table(&page.items, args.output.wide));
        if !page.next_token.is_empty() && args.output.output == Format::Table {
            outln!(
                "\nTo fetch more records use: --next-token {}",
                page.next_token
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn versions(client: &ApiClient, args: VersionsArgs) -> Result<ExitCode> {
    let query = bacalhau_client::client::ListQuery {
        namespace: args.namespace.clone().unwrap_or_default(),
        ..Default::default()
    };
    let page = client.job_versions_with(&args.id, &query).await?;
    if !args.output.is_tabular() {
        output::print_structured(&page.items, args.output.output, args.output.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["Created", "Version", "State"]);
    for job in &page.items {
        table.add_row(vec![
            output::ago(job.modify_time),
            job.version.to_string(),
            job.state.state_type.to_string(),
        ]);
    }
    args.output.print(&table);
    Ok(ExitCode::SUCCESS)
}

async fn rerun(global: &Global, args: RerunArgs) -> Result<ExitCode> {
    let client = global.client()?;
    let response = client
        .rerun_job(&args.id, args.version, &args.reason)
        .await?;
    if args.flags.id_only {
        outln!("{}", response.job_id);
    } else {
        outln!(
            "Job {} rerun as version {} (evaluation {}).",
            response.job_id,
            response.job_version,
            response.evaluation_id
        );
    }
    if !args.flags.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let job = follow(
        &client,
        &response.job_id,
        args.flags.wait_timeout_secs,
        args.flags.id_only,
    )
    .await?;
    if job.state.state_type == JobStateType::Failed {
        eprintln!("\nError: job failed: {}", job.state.message);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
