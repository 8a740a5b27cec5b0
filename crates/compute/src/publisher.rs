//! Publishers: the [`Publisher`] trait that puts an execution's results somewhere a client can
//! fetch them, and the result directory they publish.
//!
//! Every execution that names a publisher gets a `results/` directory: one sub-directory per
//! result path (named by the result's `Name`, mounted writable by the engine at its `Path`),
//! and, once the run ends, `stdout`, `stderr` and `exitCode` files, as upstream lays it out.
//! The `publishers` crate implements the trait; the binary registers them by type name.

use crate::executor::BoxFuture;
use bacalhau_models::{Execution, SpecConfig, Task};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A result path made writable for the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultMount {
    /// The directory on the host that collects it.
    pub host_path: PathBuf,
    /// Where the task writes it, absolute.
    pub target: String,
}

/// What a publisher gets to publish one execution's results.
pub struct PublishRequest<'a> {
    /// The execution, with its job.
    pub execution: &'a Execution,
    /// The task's publisher spec.
    pub spec: &'a SpecConfig,
    /// The execution's `results/` directory.
    pub results_dir: &'a Path,
}

/// Where results went.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// What a client reads to fetch them (upstream's `PublishedResult`); `None` for `noop`.
    pub result: Option<SpecConfig>,
    /// Bytes written to the destination.
    pub bytes: u64,
}

/// Why results could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The publisher spec is wrong; another attempt would fail the same way.
    #[error("{0}")]
    Invalid(String),
    /// Publishing failed (network, server, disk); another attempt may succeed.
    #[error("cannot publish the results: {0}")]
    Failed(String),
}

/// Puts results of executions somewhere.
pub trait Publisher: Send + Sync {
    /// The publisher type, as specs write it (`local`, `s3`, `noop`).
    fn publisher_type(&self) -> &'static str;

    /// Checks, before the node accepts a task, that the spec is complete; no network.
    fn check(&self, spec: &SpecConfig) -> Result<(), PublishError>;

    /// Publishes the results directory.
    fn publish<'a>(
        &'a self,
        request: PublishRequest<'a>,
    ) -> BoxFuture<'a, Result<Published, PublishError>>;
}

/// The publishers of a node, by type.
#[derive(Clone, Default)]
pub struct Publishers {
    by_type: HashMap<&'static str, Arc<dyn Publisher>>,
}

impl Publishers {
    /// Registers each publisher under its type.
    pub fn new(publishers: Vec<Arc<dyn Publisher>>) -> Self {
        Self {
            by_type: publishers
                .into_iter()
                .map(|p| (p.publisher_type(), p))
                .collect(),
        }
    }

    /// The publisher types this node supports, sorted.
    pub fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.by_type.keys().map(|t| t.to_string()).collect();
        types.sort();
        types
    }

    /// The publisher for `spec`, or why there is none.
    pub fn get(&self, spec: &SpecConfig) -> Result<&Arc<dyn Publisher>, PublishError> {
        self.by_type.get(spec.r#type.as_str()).ok_or_else(|| {
            PublishError::Invalid(format!(
                "this node does not support publisher {:?} (it supports {})",
                spec.r#type,
                self.types().join(", ")
            ))
        })
    }

    /// Checks, before accepting a task, that this node can publish its results.
    pub fn check(&self, task: &Task) -> Result<(), PublishError> {
        if task.publisher.is_empty() {
            return Ok(());
        }
        self.get(&task.publisher)?.check(&task.publisher)
    }
}

/// The results directory in an execution's directory.
pub fn results_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("results")
}

/// Creates the directory of each result path, named by the result's `Name`.
pub fn prepare_results(task: &Task, work_dir: &Path) -> Result<Vec<ResultMount>, PublishError> {
    let dir = results_dir(work_dir);
    let mut mounts = Vec::with_capacity(task.result_paths.len());
    for result in &task.result_paths {
        let name = safe_name(&result.name)?;
        let target = crate::inputs::clean_target(&result.path)
            .map_err(|e| PublishError::Invalid(e.to_string()))?;
        let host_path = dir.join(name);
        std::fs::create_dir_all(&host_path).map_err(|e| {
            PublishError::Failed(format!("cannot create {}: {e}", host_path.display()))
        })?;
        mounts.push(ResultMount {
            host_path,
            target: target.to_string_lossy().into_owned(),
        });
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| PublishError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    Ok(mounts)
}

/// A result name is one plain file name: it cannot climb out of the results directory, nor
/// replace the `stdout`, `stderr` or `exitCode` files.
fn safe_name(name: &str) -> Result<&str, PublishError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0');
    if !plain {
        return Err(PublishError::Invalid(format!(
            "result name {name:?} must be a plain file name"
        )));
    }
    if matches!(name, "stdout" | "stderr" | "exitCode") {
        return Err(PublishError::Invalid(format!(
            "result name {name:?} is reserved for the run's own output"
        )));
    }
    Ok(name)
}

/// Every regular file under `dir` with its size, sorted by path; symlinks are not followed.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push((entry.path(), entry.metadata()?.len()));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Total size of the regular files under `dir`; symlinks are not followed.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    Ok(files_under(dir)?.iter().map(|(_, size)| size).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_names_stay_inside() {
        assert!(safe_name("outputs").is_ok());
        for bad in ["", "..", "a/b", "stdout", "exitCode"] {
            assert!(safe_name(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
