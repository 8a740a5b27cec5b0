//! Running one execution: fetch its inputs, run it on its engine within the task's timeout,
//! publish its results, and turn how it ended into the final report ([`outcome`]).

use super::ComputeNode;
use super::queue::needs;
use super::report::Report;
use crate::executor::{BoxFuture, ExecutionContext, ExecutorError};
use crate::inputs::{InputError, Partition};
use crate::publisher::{PublishError, PublishRequest, Published};
use bacalhau_models::content::{CONTENT_KEY_DETAIL, ContentKey, INPUT_CONTENT_DETAIL, Identity};
use bacalhau_models::task::NetworkType;
use bacalhau_models::{Execution, ExecutionStateType, RunCommandResult, Task};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument as _;

/// How an execution came to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Started {
    /// The queue started it: its Running state is still to be recorded.
    Queued,
    /// It started as it was accepted, recorded Running in the acceptance's transaction.
    AtAcceptance,
}

/// How an execution that ran to an exit code ended.
#[derive(Debug)]
pub(super) struct Finished {
    output: RunCommandResult,
    published: Option<Published>,
    input_bytes: Vec<(String, u64)>,
    /// Each input's target and what its data is known by (lineage).
    identities: Vec<(String, Identity)>,
    /// The task's content key, when every part of it is known by content.
    key: Option<ContentKey>,
}

/// The state an execution ends in and what its report says, from how its run ended.
///
/// A non-zero exit code and the job's own faults (timeout, out of memory, a bad spec) are
/// marked not retryable: another attempt would fail the same way.
fn outcome(result: Result<Finished, ExecutorError>) -> (ExecutionStateType, Report) {
    match result {
        Ok(finished) => {
            let mut report = Report::default();
            for (target, bytes) in &finished.input_bytes {
                report
                    .details
                    .insert(format!("InputBytes:{target}"), bytes.to_string());
            }
            for (target, identity) in &finished.identities {
                report.details.insert(
                    format!("{INPUT_CONTENT_DETAIL}{target}"),
                    identity.to_string(),
                );
            }
            if let Some(key) = &finished.key {
                report
                    .details
                    .insert(CONTENT_KEY_DETAIL.into(), key.to_string());
            }
            if let Some(published) = finished.published {
                report
                    .details
                    .insert("PublishedBytes".into(), published.bytes.to_string());
                report.published_result = published.result;
            }
            let exit_code = finished.output.exit_code;
            report.run_output = Some(finished.output);
            if exit_code == 0 {
                (ExecutionStateType::Completed, report)
            } else {
                // The program itself failed: another attempt would fail the same way.
                report.retryable = Some(false);
                report.message = format!("exited with code {exit_code}");
                (ExecutionStateType::Failed, report)
            }
        }
        Err(ExecutorError::Cancelled) => (
            ExecutionStateType::Cancelled,
            Report::message("execution cancelled"),
        ),
        Err(e) => {
            let mut report = Report::message(e.to_string());
            report.retryable = Some(e.retryable());
            report.run_output = Some(RunCommandResult {
                error_msg: report.message.clone(),
                ..Default::default()
            });
            (ExecutionStateType::Failed, report)
        }
    }
}

fn publish_error(e: PublishError) -> ExecutorError {
    match e {
        PublishError::Invalid(reason) => ExecutorError::InvalidSpec(reason),
        other => ExecutorError::Failed(other.to_string()),
    }
}

impl ComputeNode {
    /// Runs an execution the queue started, reports how it ended and gives its capacity back.
    pub(super) async fn execute(self: Arc<Self>, execution: Execution, started: Started) {
        let cancel = self.lock_queue().cancel_signal(&execution.id);
        let mut span = crate::trace::start(&execution, "execution", None);
        let spans = crate::trace::context_of(&span);
        let result = match cancel {
            // Stopped between its start and now (a cancel that came meanwhile): it does not begin.
            Some(cancel) if *cancel.borrow() => Err(ExecutorError::Cancelled),
            // Every line an engine, a storage or a publisher logs for this run names it.
            Some(cancel) => {
                self.run_execution(&execution, started, cancel, &spans)
                    .instrument(tracing::info_span!(
                        "execution",
                        job_id = %execution.job_id,
                        execution_id = %execution.id
                    ))
                    .await
            }
            None => Err(ExecutorError::Cancelled),
        };
        let (state, report) = outcome(result);
        {
            use opentelemetry::trace::{Span as _, Status};
            span.set_attribute(opentelemetry::KeyValue::new(
                "bacalhau.execution.state",
                state.as_str(),
            ));
            if state != ExecutionStateType::Completed {
                span.set_status(Status::error(report.message.clone()));
            }
            span.end();
        }
        self.metrics
            .executions_ended
            .get_or_create(&crate::metrics::StateLabel {
                state: state.as_str().to_string(),
            })
            .inc();
        if let Err(e) = self.report(&execution, state, report).await {
            tracing::error!(job_id = %execution.job_id, execution_id = %execution.id, error = %e, "cannot record the end of an execution");
        }
        // Inputs fetched onto the node are of no use once the run is over; removed after the
        // report so the orchestrator hears of the end first.
        let inputs = crate::inputs::root(&self.execution_dir(execution.id.as_str()));
        let _ = tokio::fs::remove_dir_all(inputs).await;
        self.lock_queue().finish(&execution.id);
        self.lock_capacity().release(&needs(&execution));
        self.runner_wake.notify_one();
    }

    async fn run_execution(
        &self,
        execution: &Execution,
        started: Started,
        cancel: watch::Receiver<bool>,
        spans: &opentelemetry::Context,
    ) -> Result<Finished, ExecutorError> {
        use opentelemetry::trace::Span as _;
        let task = execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .cloned()
            .ok_or_else(|| ExecutorError::InvalidSpec("the execution carries no task".into()))?;
        let engine = task.engine.r#type.clone();
        let executor = self
            .executors
            .get(engine.as_str())
            .cloned()
            .ok_or_else(|| ExecutorError::Failed(format!("no executor for engine {engine:?}")))?;
        if started == Started::Queued {
            self.report(execution, ExecutionStateType::Running, Report::default())
                .await
                .map_err(|e| ExecutorError::Failed(e.to_string()))?;
        }
        let work_dir = self.execution_dir(execution.id.as_str());
        // Made only for what goes in it (inputs, results; an engine's log makes its own):
        // a directory costs up to 0.75 ms on some disks, and a run without either needs none.
        let publishing = !task.publisher.is_empty();
        if !task.input_sources.is_empty() || publishing {
            std::fs::create_dir_all(&work_dir).map_err(|e| {
                ExecutorError::Failed(format!("cannot create {}: {e}", work_dir.display()))
            })?;
        }
        let (index, count) = execution.partition();
        let partition = Partition { index, count };
        // The holders named with the execution; a restarted node no longer knows them and
        // reads only what it holds.
        let peers = self.lock_peers().remove(&execution.id).unwrap_or_default();
        let mut staging = crate::trace::start(execution, "inputs", Some(spans));
        let inputs = self
            .storages
            .prepare(&task, &work_dir, partition, &peers)
            .await;
        if let Err(e) = &inputs {
            staging.set_status(opentelemetry::trace::Status::error(e.to_string()));
        }
        staging.end();
        if inputs.is_err() {
            // Whatever arrived before the failure is of no use.
            let _ = tokio::fs::remove_dir_all(crate::inputs::root(&work_dir)).await;
        }
        let inputs = inputs.map_err(|e| match e {
            InputError::Invalid(reason) => ExecutorError::InvalidSpec(reason),
            other => ExecutorError::Failed(other.to_string()),
        })?;
        let input_bytes = inputs
            .iter()
            .filter(|i| i.in_tree)
            .map(|i| (i.target.clone(), i.bytes_read))
            .collect();
        self.count_input_bytes(&task, &inputs);
        let mut identities = Vec::with_capacity(inputs.len());
        for (source, prepared) in task.input_sources.iter().zip(&inputs) {
            let identity = crate::inputs::identity(source, prepared)
                .await
                .map_err(|e| {
                    ExecutorError::Failed(format!("cannot read input {}: {e}", prepared.target))
                })?;
            identities.push((prepared.target.clone(), identity));
        }
        let results = if publishing {
            crate::publisher::prepare_results(&task, &work_dir).map_err(publish_error)?
        } else {
            Vec::new()
        };
        // Host variables are resolved into this run's copy of the job only; what is stored
        // and reported keeps the `env:NAME` references.
        let env = self
            .config
            .env_allow_list
            .resolve(&task)
            .map_err(ExecutorError::InvalidSpec)?;
        let mut run = execution.clone();
        let mut held_ports = Vec::new();
        if let Some(first) = run.job.as_mut().and_then(|j| j.tasks.first_mut()) {
            first.env = env;
            // A node that rejects networked jobs runs `Default` ones without a network.
            if self.config.reject_networked_jobs && first.network.r#type == NetworkType::Default {
                first.network.r#type = NetworkType::None;
            }
            // Published ports get host ports of this node for the length of the run.
            if !first.network.ports.is_empty() {
                let bridge = first.network.r#type == NetworkType::Bridge;
                if let Err(e) = self.config.ports.allocate(&mut first.network.ports, bridge) {
                    let _ = tokio::fs::remove_dir_all(crate::inputs::root(&work_dir)).await;
                    return Err(ExecutorError::Failed(e));
                }
                held_ports = first.network.ports.clone();
            }
        }
        let resolved_image = std::sync::Arc::new(std::sync::OnceLock::new());
        let context = ExecutionContext {
            execution: run,
            cancel: cancel.clone(),
            work_dir: work_dir.clone(),
            inputs,
            results,
            resolved_image: std::sync::Arc::clone(&resolved_image),
        };
        let started = std::time::Instant::now();
        let mut running = crate::trace::start(execution, "run", Some(spans));
        running.set_attribute(opentelemetry::KeyValue::new(
            "bacalhau.engine",
            engine.clone(),
        ));
        let output = self
            .run_with_timeout(execution, &task, executor.run(context), cancel)
            .await;
        match &output {
            Ok(result) => running.set_attribute(opentelemetry::KeyValue::new(
                "bacalhau.exit_code",
                result.exit_code,
            )),
            Err(e) => running.set_status(opentelemetry::trace::Status::error(e.to_string())),
        }
        running.end();
        self.metrics
            .run_seconds
            .get_or_create(&crate::metrics::EngineLabel {
                engine: engine.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.config.ports.release(&held_ports);
        // Inputs fetched onto the node are removed once the end is reported (`execute`).
        let output = output?;
        // Known now: the image the engine ran (a tag resolved to its ID).
        let key = bacalhau_models::content::task_key(
            &task,
            &identities
                .iter()
                .map(|(_, i)| i.clone())
                .collect::<Vec<_>>(),
            resolved_image.get(),
        )
        .ok();
        let published = if publishing {
            let mut publish = crate::trace::start(execution, "publish", Some(spans));
            let published = self.publish(execution, &task, &work_dir, &output).await;
            match &published {
                Ok(done) => publish.set_attribute(opentelemetry::KeyValue::new(
                    "bacalhau.published.bytes",
                    i64::try_from(done.bytes).unwrap_or(i64::MAX),
                )),
                Err(e) => publish.set_status(opentelemetry::trace::Status::error(e.to_string())),
            }
            publish.end();
            Some(published?)
        } else {
            None
        };
        Ok(Finished {
            output,
            published,
            input_bytes,
            identities,
            key,
        })
    }

    /// Counts the bytes of the inputs placed in the execution's tree: fetched over the network
    /// (what the storage read) and found on the node (the rest of what is there). Inputs
    /// mounted in place (allow-listed `local` paths) are not walked.
    fn count_input_bytes(&self, task: &Task, inputs: &[crate::inputs::PreparedInput]) {
        for (source, input) in task.input_sources.iter().zip(inputs) {
            if !input.in_tree {
                continue;
            }
            let size = match std::fs::metadata(&input.host_path) {
                Ok(meta) if meta.is_file() => meta.len(),
                _ => crate::publisher::dir_size(&input.host_path).unwrap_or(input.bytes_read),
            };
            for (origin, bytes) in [
                ("fetched", input.bytes_read),
                ("local", size.saturating_sub(input.bytes_read)),
            ] {
                self.metrics
                    .input_bytes
                    .get_or_create(&crate::metrics::InputLabels {
                        source: source.source.r#type.clone(),
                        origin: origin.to_string(),
                    })
                    .inc_by(bytes);
            }
        }
    }

    /// Runs an executor's future, stopping it when the task's execution timeout passes.
    async fn run_with_timeout(
        &self,
        execution: &Execution,
        task: &Task,
        run: BoxFuture<'_, Result<RunCommandResult, ExecutorError>>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<RunCommandResult, ExecutorError> {
        let timeout_secs = task.timeouts.execution_timeout;
        tokio::pin!(run);
        if timeout_secs <= 0 {
            return run.await;
        }
        let limit = Duration::from_secs(u64::try_from(timeout_secs).unwrap_or(0));
        tokio::select! {
            result = &mut run => result,
            _ = tokio::time::sleep(limit) => {
                // Ask the executor to stop, then wait for it to clean up.
                self.lock_queue().stop(&execution.id);
                let _ = cancel.changed().await;
                let _ = run.await;
                Err(ExecutorError::JobFault(format!(
                    "execution timed out: it took longer than {timeout_secs}s"
                )))
            }
        }
    }

    /// Writes the run's `stdout`, `stderr` and `exitCode` beside its result paths and hands
    /// the directory to the task's publisher.
    async fn publish(
        &self,
        execution: &Execution,
        task: &Task,
        work_dir: &std::path::Path,
        output: &RunCommandResult,
    ) -> Result<Published, ExecutorError> {
        self.report(execution, ExecutionStateType::Publishing, Report::default())
            .await
            .map_err(|e| ExecutorError::Failed(e.to_string()))?;
        let results_dir = crate::publisher::results_dir(work_dir);
        crate::logs::write_streams(work_dir, &results_dir)
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot write the run's output: {e}")))?;
        tokio::fs::write(results_dir.join("exitCode"), output.exit_code.to_string())
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot write the exit code: {e}")))?;
        let limit = self.config.max_result_bytes;
        if limit > 0 {
            let size = crate::publisher::dir_size(&results_dir)
                .map_err(|e| ExecutorError::Failed(format!("cannot size the results: {e}")))?;
            if size > limit {
                return Err(ExecutorError::JobFault(format!(
                    "the results are {size} bytes, more than this node publishes ({limit} bytes)"
                )));
            }
        }
        let publisher = self
            .publishers
            .get(&task.publisher)
            .map_err(publish_error)?;
        let published = publisher
            .publish(PublishRequest {
                execution,
                spec: &task.publisher,
                results_dir: &results_dir,
            })
            .await
            .map_err(publish_error)?;
        // The publisher has its own copy now (an archive, an upload).
        let _ = tokio::fs::remove_dir_all(&results_dir).await;
        self.metrics
            .published_bytes
            .get_or_create(&crate::metrics::PublisherLabel {
                publisher: task.publisher.r#type.clone(),
            })
            .inc_by(published.bytes);
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::SpecConfig;

    fn exited(exit_code: i64) -> Finished {
        Finished {
            output: RunCommandResult {
                stdout: "hello\n".into(),
                exit_code,
                ..Default::default()
            },
            published: None,
            input_bytes: Vec::new(),
            identities: vec![("/in".into(), Identity::cid("bafyin"))],
            key: ContentKey::parse(&"a".repeat(64)),
        }
    }

    #[test]
    fn exit_code_zero_completes_with_the_output_inputs_and_published_result() {
        let finished = Finished {
            published: Some(Published {
                result: Some(SpecConfig::of_type("local")),
                bytes: 42,
            }),
            input_bytes: vec![("/data".into(), 7)],
            ..exited(0)
        };
        let (state, report) = outcome(Ok(finished));
        assert_eq!(state, ExecutionStateType::Completed);
        assert_eq!(report.message, "");
        assert_eq!(
            report.run_output.map(|o| o.stdout),
            Some("hello\n".to_string())
        );
        assert_eq!(report.published_result, Some(SpecConfig::of_type("local")));
        assert_eq!(
            report.details.get("InputBytes:/data").map(String::as_str),
            Some("7")
        );
        assert_eq!(
            report.details.get("PublishedBytes").map(String::as_str),
            Some("42")
        );
        assert_eq!(
            report.details.get("InputContent:/in").map(String::as_str),
            Some("cid:bafyin")
        );
        assert_eq!(
            report.details.get("ContentKey").map(String::as_str),
            Some("a".repeat(64).as_str())
        );
        assert_eq!(report.retryable, None);
    }

    #[test]
    fn a_non_zero_exit_code_fails_and_is_not_retried() {
        let (state, report) = outcome(Ok(exited(3)));
        assert_eq!(state, ExecutionStateType::Failed);
        assert_eq!(report.message, "exited with code 3");
        assert_eq!(report.retryable, Some(false));
        // The run's output still goes back, for `job describe` and `job logs`.
        assert_eq!(report.run_output.map(|o| o.exit_code), Some(3));
    }

    #[test]
    fn a_cancelled_run_is_reported_cancelled() {
        let (state, report) = outcome(Err(ExecutorError::Cancelled));
        assert_eq!(state, ExecutionStateType::Cancelled);
        assert_eq!(report.message, "execution cancelled");
        assert!(report.details.is_empty());
        assert!(report.run_output.is_none());
    }

    #[test]
    fn an_engine_failure_is_retryable_and_the_job_s_own_faults_are_not() {
        let cases = [
            (ExecutorError::Failed("docker is down".into()), true),
            (
                ExecutorError::JobFault("execution timed out: it took longer than 1s".into()),
                false,
            ),
            (ExecutorError::InvalidSpec("no such image".into()), false),
        ];
        for (error, retryable) in cases {
            let message = error.to_string();
            let (state, report) = outcome(Err(error));
            assert_eq!(state, ExecutionStateType::Failed, "{message}");
            assert_eq!(report.message, message);
            assert_eq!(report.retryable, Some(retryable), "{message}");
            assert_eq!(report.run_output.map(|o| o.error_msg), Some(message));
        }
    }
}
