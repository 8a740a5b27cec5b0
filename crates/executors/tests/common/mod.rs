//! What the engine tests share: an execution of one task on an engine, and the context an
//! engine gets to run it (a work directory, prepared inputs, a cancel signal), built the way
//! the compute node's runner builds them, without a node.

#![allow(dead_code)]

use bacalhau_compute::{ExecutionContext, PreparedInput};
use bacalhau_models::{Execution, ExecutionId, Job, JobId, SpecConfig, Task};
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// One run of one execution: its temporary directory, the execution and its cancel switch.
pub struct Run {
    /// Holds the work directory (and anything else a test puts there) until the test ends.
    pub dir: tempfile::TempDir,
    /// The execution's own directory, as `ComputeNode::execution_dir` would give it.
    pub work_dir: PathBuf,
    /// The execution, its job holding the one task.
    pub execution: Execution,
    /// The inputs, already on the node.
    pub inputs: Vec<PreparedInput>,
    /// Turns the run's cancel signal on.
    pub cancel: watch::Sender<bool>,
}

/// A fresh execution ID, unique across concurrent test runs (Docker names containers by it).
pub fn execution_id() -> ExecutionId {
    ExecutionId::from(format!("e-{}", uuid::Uuid::new_v4()))
}

impl Run {
    /// A run of one task on `engine`, with an optional `env`.
    pub fn new(engine: SpecConfig) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let work_dir = dir.path().join("execution");
        std::fs::create_dir_all(&work_dir).expect("the work directory");
        let task = Task {
            name: "main".into(),
            engine,
            ..Default::default()
        };
        let execution = Execution {
            id: execution_id(),
            job_id: JobId::from("j-engine-test"),
            job: Some(Box::new(Job {
                tasks: vec![task],
                count: 1,
                ..Default::default()
            })),
            ..Default::default()
        };
        let (cancel, _) = watch::channel(false);
        Self {
            dir,
            work_dir,
            execution,
            inputs: Vec::new(),
            cancel,
        }
    }

    /// The task, to change before the run.
    pub fn task(&mut self) -> &mut Task {
        let job = self
            .execution
            .job
            .as_mut()
            .expect("the execution has a job");
        &mut job.tasks[0]
    }

    /// Sets a variable of the task's environment.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.task().env.insert(name.into(), value.into());
        self
    }

    /// Places `bytes` in the execution's input tree at `target`, as an input source would.
    pub fn input(mut self, target: &str, bytes: &[u8]) -> Self {
        let root = bacalhau_compute::inputs::root(&self.work_dir);
        let host_path = root.join(target.trim_start_matches('/'));
        std::fs::create_dir_all(host_path.parent().expect("an input under the root"))
            .expect("the input's directory");
        std::fs::write(&host_path, bytes).expect("the input");
        self.inputs.push(PreparedInput {
            host_path,
            target: target.into(),
            read_write: false,
            in_tree: true,
            bytes_read: bytes.len() as u64,
        });
        self
    }

    /// What the engine gets.
    pub fn context(&self) -> ExecutionContext {
        ExecutionContext {
            execution: self.execution.clone(),
            cancel: self.cancel.subscribe(),
            work_dir: self.work_dir.clone(),
            inputs: self.inputs.clone(),
            results: Vec::new(),
            resolved_image: Default::default(),
        }
    }

    /// The whole of one stream of the execution's log (`stdout` or `stderr`).
    pub fn log(&self, stream: &str) -> String {
        std::fs::read_to_string(self.work_dir.join(stream)).unwrap_or_default()
    }

    /// Where the test may keep files of its own.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }
}
