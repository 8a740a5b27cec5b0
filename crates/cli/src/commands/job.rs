//! `bacalhau job ...`: run, describe, list, stop, history, executions, versions, rerun.

use super::Global;
use crate::output::{self, Format};
use anyhow::{Context, Result, bail};
use bacalhau_api::ApiClient;
use bacalhau_api::client::ListJobsOptions;
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
    /// Show a job: its spec summary, executions, history and output.
    Describe(DescribeArgs),
    /// List jobs.
    List(ListArgs),
    /// Stop a running or queued job.
    Stop(StopArgs),
    /// Show a job's history of state changes and events.
    History(HistoryArgs),
    /// List a job's executions.
    Executions(IdArgs),
    /// List the versions of a job's spec.
    Versions(IdArgs),
    /// Run a finished job again, as a new version.
    Rerun(RerunArgs),
    /// Show (or follow) the output of a job's execution.
    Logs(LogsArgs),
    /// Download a job's published results.
    Get(super::get::GetArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job spec file; `-` or none reads standard input.
    file: Option<String>,
    #[command(flatten)]
    template: TemplateFlags,
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
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// Keep streaming new output until the execution ends.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show only the last N lines of what was written so far.
    #[arg(short = 't', long, value_name = "N")]
    tail: Option<usize>,
    /// Which execution (ID or prefix); by default the most recent one.
    #[arg(short = 'e', long)]
    execution_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
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
    /// Only jobs whose labels match this selector, e.g. `env=prod,region in (eu,us)`.
    #[arg(long)]
    labels: Option<String>,
    /// Newest first.
    #[arg(long, alias = "reverse")]
    order_reversed: bool,
    /// Continue a previous listing.
    #[arg(long)]
    next_token: Option<String>,
    /// The namespace; `*` for all.
    #[arg(long)]
    namespace: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
    /// Show full IDs.
    #[arg(long)]
    wide: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// Why the job is stopped (recorded in its history).
    #[arg(long, default_value = "")]
    reason: String,
    /// Print nothing on success.
    #[arg(long)]
    quiet: bool,
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
    /// Check the job's events against the audit log's hash chain: each event's own hash, its
    /// place in the chain, and the chain as a whole; exits 1 on any mismatch.
    #[arg(long)]
    verify: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Pretty-print JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The job's ID, unique ID prefix, or name.
    id: String,
    /// The version to run again; the latest by default.
    #[arg(long, default_value_t = 0)]
    version: u64,
    /// Why (recorded in the job's history).
    #[arg(long, default_value = "")]
    reason: String,
}

pub async fn run(global: &Global, command: JobCommand) -> Result<ExitCode> {
    match command {
        JobCommand::Run(args) => run_job(global, args).await,
        JobCommand::Describe(args) => describe(&global.client()?, args).await,
        JobCommand::List(args) => list(&global.client()?, args).await,
        JobCommand::Stop(args) => stop(&global.client()?, args).await,
        JobCommand::History(args) => history(&global.client()?, args).await,
        JobCommand::Executions(args) => executions(&global.client()?, args).await,
        JobCommand::Versions(args) => versions(&global.client()?, args).await,
        JobCommand::Rerun(args) => rerun(&global.client()?, args).await,
        JobCommand::Logs(args) => logs(&global.client()?, args).await,
        JobCommand::Get(args) => super::get::get(global, args).await,
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
    submit(global, &job, &args.flags).await
}

/// Submits `job` and follows it as `flags` say; the exit code is 1 when the job failed.
pub async fn submit(global: &Global, job: &Job, flags: &RunFlags) -> Result<ExitCode> {
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
        for warning in &submitted.warnings {
            eprintln!("Warning: {warning}");
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
    let job = follow(&client, &submitted.job_id, flags.wait_timeout_secs, quiet).await?;
    if let Some(format) = flags.output {
        output::print_structured(&job, format, flags.pretty)?;
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
        print_log(client, id, "", None, true).await?;
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
) -> Result<()> {
    let mut lines = client.logs(id, execution_id, tail, follow).await?;
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
    print_log(
        client,
        &args.id,
        args.execution_id.as_deref().unwrap_or(""),
        args.tail,
        args.follow,
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
    let mut delay = Duration::from_millis(20);
    loop {
        let response = client.get_job(id, "history").await?;
        if !quiet {
            for event in response
                .history
                .as_ref()
                .map(|h| h.items.as_slice())
                .unwrap_or_default()
            {
                if event.seq_num > printed {
                    printed = event.seq_num;
                    print_event(event);
                }
            }
        }
        let job = response.job;
        // A daemon or service job runs until stopped: following it ends once it runs.
        let running_for_good =
            is_long_running(&job) && job.state.state_type == JobStateType::Running;
        if job.state.state_type.is_terminal() || running_for_good || Instant::now() >= deadline {
            return Ok(job);
        }
        tokio::time::sleep(delay).await;
        // Fast jobs finish in milliseconds; long ones need not be polled that often.
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Whether `job` runs until it is stopped (daemon and service jobs) rather than to completion.
fn is_long_running(job: &Job) -> bool {
    matches!(job.r#type.as_str(), "daemon" | "service")
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
    let response = client.get_job(&args.id, "history,executions").await?;
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
            event.event.topic.clone(),
            event.event.message.clone(),
        ]);
    }
    output::print_table(&table);
}

fn print_executions(executions: &[Execution], wide: bool) {
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
    output::print_table(&table);
}

async fn list(client: &ApiClient, args: ListArgs) -> Result<ExitCode> {
    let options = ListJobsOptions {
        namespace: args.namespace.unwrap_or_default(),
        labels: args.labels.unwrap_or_default(),
        limit: args.limit,
        reverse: args.order_reversed,
        next_token: args.next_token.unwrap_or_default(),
    };
    let page = client.list_jobs(&options).await?;
    if args.output != Format::Table {
        output::print_structured(&page.items, args.output, args.pretty)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["Created", "ID", "Name", "Job", "Type", "State"]);
    for job in &page.items {
        let id = if args.wide {
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
    output::print_table(&table);
    if !page.next_token.is_empty() {
        outln!(
            "\nTo fetch more records use:\n\tbacalhau job list --limit {} --next-token {}",
            args.limit,
            page.next_token
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stop(client: &ApiClient, args: StopArgs) -> Result<ExitCode> {
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
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .job_history(
                &args.id,
                &args.event_type,
                args.execution_id.as_deref().unwrap_or(""),
                &token,
            )
            .await?;
        events.extend(page.items);
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    if args.output != Format::Table {
        output::print_structured(&events, args.output, args.pretty)?;
    } else {
        print_history(events.iter());
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

async fn executions(client: &ApiClient, args: IdArgs) -> Result<ExitCode> {
    let page = client.job_executions(&args.id).await?;
    if args.output != Format::Table {
        output::print_structured(&page.items, args.output, args.pretty)?;
    } else {
        print_executions(&page.items, false);
    }
    Ok(ExitCode::SUCCESS)
}

async fn versions(client: &ApiClient, args: IdArgs) -> Result<ExitCode> {
    let page = client.job_versions(&args.id).await?;
    if args.output != Format::Table {
        output::print_structured(&page.items, args.output, args.pretty)?;
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
    output::print_table(&table);
    Ok(ExitCode::SUCCESS)
}

async fn rerun(client: &ApiClient, args: RerunArgs) -> Result<ExitCode> {
    let response = client
        .rerun_job(&args.id, args.version, &args.reason)
        .await?;
    outln!(
        "Job {} rerun as version {} (evaluation {}).",
        response.job_id,
        response.job_version,
        response.evaluation_id
    );
    Ok(ExitCode::SUCCESS)
}
