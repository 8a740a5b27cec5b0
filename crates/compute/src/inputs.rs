//! Input sources: the [`InputStorage`] trait a compute node fetches a task's inputs through,
//! and the rules every implementation shares (safe targets, the input tree's place).
//!
//! Each input is placed in the execution's `inputs/` tree at its target path, so an engine can
//! mount each one (Docker) or the whole tree (WASM) read-only; a storage may instead hand back
//! a host path that already holds the data (an allow-listed local directory). The `storage`
//! crate implements the trait; the binary registers the implementations by type name.

use crate::executor::BoxFuture;
use bacalhau_models::content::{self, Identity};
use bacalhau_models::{InputSource, Task};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// An input placed on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedInput {
    /// Where it is on the host.
    pub host_path: PathBuf,
    /// Where the task sees it, absolute.
    pub target: String,
    /// Whether the task may write to it (allow-listed `local` paths only).
    pub read_write: bool,
    /// Whether it lies inside the execution's input tree (`root`) rather than elsewhere on the
    /// host (a `local` path, mounted in place).
    pub in_tree: bool,
    /// Bytes fetched onto the node for it (0 for data already there).
    pub bytes_read: u64,
}

/// Which slice of a partitioned input an execution processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// This execution's partition, `0..count`.
    pub index: u64,
    /// How many partitions the job has (its `Count`).
    pub count: u64,
}

/// What a storage gets to prepare one input.
pub struct InputRequest<'a> {
    /// The input as the spec gives it.
    pub input: &'a InputSource,
    /// Its target made safe (absolute, no `..`): where the task sees it.
    pub target: String,
    /// Where an input fetched onto the node goes: a path inside the execution's input tree,
    /// whose parent exists.
    pub dest: PathBuf,
    /// The execution's partition of the job.
    pub partition: Partition,
    /// IPFS nodes (multiaddrs) the orchestrator named as holders of the job's CIDs.
    pub peers: &'a [String],
}

/// Why an input could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The spec is wrong (bad URL, bad target, unsupported type, path not allowed): another
    /// node or attempt would fail the same way.
    #[error("{0}")]
    Invalid(String),
    /// Fetching failed (network, server, disk); another attempt may succeed.
    #[error("cannot prepare input {target}: {reason}")]
    Unavailable {
        /// The input's target.
        target: String,
        /// What failed.
        reason: String,
    },
}

impl InputError {
    /// An `Unavailable` error for `input`.
    pub fn unavailable(input: &InputSource, reason: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            target: input.target.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Fetches input sources of some types onto the node.
pub trait InputStorage: Send + Sync {
    /// The source types it handles, as specs write them (`s3`, `urlDownload`).
    fn types(&self) -> &'static [&'static str];

    /// Checks, before the node accepts a task, that it can provide `input` (path allowed,
    /// params complete); cheap, no network.
    fn check(&self, input: &InputSource) -> Result<(), InputError>;

    /// Fetches the input to `request.dest`, or says where on the host it already is.
    fn prepare<'a>(
        &'a self,
        request: InputRequest<'a>,
    ) -> BoxFuture<'a, Result<PreparedInput, InputError>>;
}

/// The storages of a node, by source type.
#[derive(Clone, Default)]
pub struct Storages {
    by_type: HashMap<&'static str, Arc<dyn InputStorage>>,
}

impl Storages {
    /// Registers each storage under every type it handles.
    pub fn new(storages: Vec<Arc<dyn InputStorage>>) -> Self {
        let mut by_type = HashMap::new();
        for storage in storages {
            for name in storage.types() {
                by_type.insert(*name, Arc::clone(&storage));
            }
        }
        Self { by_type }
    }

    /// The source types this node supports, sorted.
    pub fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.by_type.keys().map(|t| t.to_string()).collect();
        types.sort();
        types
    }

    fn get(&self, source_type: &str) -> Result<&Arc<dyn InputStorage>, InputError> {
        self.by_type.get(source_type).ok_or_else(|| {
            InputError::Invalid(format!(
                "this node does not support input source type {source_type:?} (it supports {})",
                self.types().join(", ")
            ))
        })
    }

    /// Checks, before accepting a task, that this node can provide its inputs.
    pub fn check(&self, task: &Task) -> Result<(), InputError> {
        for input in &task.input_sources {
            clean_target(&input.target)?;
            self.get(&input.source.r#type)?.check(input)?;
        }
        Ok(())
    }

    /// Prepares every input of `task` for an execution whose directory is `work_dir`.
    pub async fn prepare(
        &self,
        task: &Task,
        work_dir: &Path,
        partition: Partition,
        peers: &[String],
    ) -> Result<Vec<PreparedInput>, InputError> {
        let mut prepared = Vec::with_capacity(task.input_sources.len());
        for input in &task.input_sources {
            let target = clean_target(&input.target)?;
            let dest = root(work_dir).join(target.strip_prefix("/").unwrap_or(&target));
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| InputError::unavailable(input, e))?;
            }
            let storage = self.get(&input.source.r#type)?;
            let request = InputRequest {
                input,
                target: target.to_string_lossy().into_owned(),
                dest,
                partition,
                peers,
            };
            prepared.push(storage.prepare(request).await?);
        }
        Ok(prepared)
    }
}

/// What a prepared input's data is known by: the spec's identity when it names content (a
/// CID, inline bytes, an object version), otherwise the SHA-256 of what was fetched (one
/// file: its bytes; a directory: its names and files), or, for data mounted in place (an
/// allow-listed `local` path, possibly large and changing), its place.
pub async fn identity(input: &InputSource, prepared: &PreparedInput) -> std::io::Result<Identity> {
    let place = match content::spec_identity(input) {
        Ok(content) => return Ok(content),
        Err(place) => place,
    };
    if !prepared.in_tree {
        return Ok(place);
    }
    let path = prepared.host_path.clone();
    tokio::task::spawn_blocking(move || hash_tree(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// The identity of the bytes under `path`: a file's SHA-256, a directory holding just one file
/// (a download) that file's, otherwise a SHA-256 over each file's relative path and SHA-256 in
/// name order.
pub fn hash_tree(path: &Path) -> std::io::Result<Identity> {
    use sha2::{Digest as _, Sha256};
    fn file_digest(path: &Path) -> std::io::Result<[u8; 32]> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hasher.finalize().into())
    }
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, [u8; 32])>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), &format!("{name}/"), out)?;
            } else if kind.is_file() {
                out.push((name, file_digest(&entry.path())?));
            }
        }
        Ok(())
    }
    if std::fs::metadata(path)?.is_file() {
        return Ok(Identity::sha256(&file_digest(path)?));
    }
    let mut files = Vec::new();
    walk(path, "", &mut files)?;
    if let [(name, digest)] = files.as_slice()
        && !name.contains('/')
    {
        return Ok(Identity::sha256(digest));
    }
    let mut hasher = Sha256::new();
    for (name, digest) in &files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(digest);
    }
    Ok(Identity::tree_sha256(&hasher.finalize()))
}

/// The input tree's root in an execution's directory.
pub fn root(work_dir: &Path) -> PathBuf {
    work_dir.join("inputs")
}

/// A target path made safe: absolute, no `..`, no empty name.
pub fn clean_target(target: &str) -> Result<PathBuf, InputError> {
    let mut clean = PathBuf::from("/");
    for component in Path::new(target).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(InputError::Invalid(format!(
                    "path {target:?} must not leave its directory (no `..`)"
                )));
            }
        }
    }
    if clean == Path::new("/") {
        return Err(InputError::Invalid(format!(
            "path {target:?} names no file"
        )));
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_known_by_its_file_and_a_tree_by_every_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("one")).unwrap();
        std::fs::write(dir.path().join("one/data.txt"), b"hello").unwrap();
        let file = hash_tree(&dir.path().join("one/data.txt")).unwrap();
        assert_eq!(hash_tree(&dir.path().join("one")).unwrap(), file);
        assert_eq!(
            file.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        std::fs::create_dir_all(dir.path().join("one/sub")).unwrap();
        std::fs::write(dir.path().join("one/sub/b"), b"x").unwrap();
        let tree = hash_tree(&dir.path().join("one")).unwrap();
        assert!(tree.as_str().starts_with("tree-sha256:"));
        std::fs::write(dir.path().join("one/sub/b"), b"y").unwrap();
        assert_ne!(hash_tree(&dir.path().join("one")).unwrap(), tree);
    }

    #[test]
    fn targets_cannot_escape() {
        assert_eq!(
            clean_target("inputs/a.txt").unwrap(),
            PathBuf::from("/inputs/a.txt")
        );
        assert!(clean_target("/inputs/../../etc/passwd").is_err());
        assert!(clean_target("/").is_err());
    }
}
