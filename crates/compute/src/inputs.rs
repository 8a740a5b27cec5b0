//! Prepares a task's input sources on the node before it runs: each input is placed in the
//! execution's `inputs/` tree at its target path, so an engine can mount each one (Docker) or
//! the whole tree (WASM) read-only.
//!
//! Supported here: `inline` (RFC 2397 `data:` URLs, base64 or percent-encoded) and `local`
//! (alias `localDirectory`: a host path under `Compute.AllowListedLocalPaths`, mounted in
//! place, read-only unless both the allow-list entry (`path:rw`) and the spec say read-write).
//! Other types are refused with a clear error; the node does not advertise them, so the
//! scheduler avoids it.

use bacalhau_models::{InputSource, Task};
use base64::Engine as _;
use std::path::{Component, Path, PathBuf};

/// The input source types this node can prepare.
pub const SUPPORTED: &[&str] = &["inline", "local"];

/// Largest inline input accepted, decoded.
pub const MAX_INLINE_BYTES: usize = 64 * 1024 * 1024;

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
}

/// Host paths a node lets jobs mount: `Compute.AllowListedLocalPaths` entries, each a path
/// (a trailing `/*` or `*` allows everything under it) with an optional `:rw`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<(PathBuf, bool)>,
}

impl AllowList {
    /// Parses the config entries.
    pub fn new(entries: &[String]) -> Self {
        let entries = entries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|entry| {
                let (path, rw) = match entry.strip_suffix(":rw") {
                    Some(path) => (path, true),
                    None => (entry.strip_suffix(":ro").unwrap_or(entry), false),
                };
                let path = path.trim_end_matches('*').trim_end_matches('/');
                let path = if path.is_empty() { "/" } else { path };
                (PathBuf::from(path), rw)
            })
            .collect();
        Self { entries }
    }

    /// Whether `path` may be mounted, and whether read-write; `None` when not allowed.
    /// The path is resolved first, so a symlink cannot lead outside the list.
    pub fn check(&self, path: &Path) -> Option<bool> {
        let resolved = std::fs::canonicalize(path).ok()?;
        self.entries
            .iter()
            .filter(|(allowed, _)| {
                std::fs::canonicalize(allowed).is_ok_and(|allowed| resolved.starts_with(allowed))
            })
            .map(|(_, rw)| *rw)
            .reduce(|a, b| a || b)
    }
}

/// Why an input could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The spec is wrong (bad URL, bad target, unsupported type).
    #[error("{0}")]
    Invalid(String),
    /// Writing the input failed.
    #[error("cannot prepare input {target}: {reason}")]
    Io {
        /// The input's target.
        target: String,
        /// What failed.
        reason: String,
    },
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
                    "input target {target:?} must not leave its directory (no `..`)"
                )));
            }
        }
    }
    if clean == Path::new("/") {
        return Err(InputError::Invalid(format!(
            "input target {target:?} names no file"
        )));
    }
    Ok(clean)
}

/// Decodes a `data:` URL.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, InputError> {
    let invalid = |why: &str| InputError::Invalid(format!("invalid inline data URL: {why}"));
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| invalid("it must start with data:"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid("no comma before the data"))?;
    if meta.contains("gzip") {
        return Err(invalid(
            "gzip archives are not supported yet; send the file itself",
        ));
    }
    let bytes = if meta.ends_with(";base64") {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| invalid(&format!("bad base64: {e}")))?
    } else {
        percent_encoding::percent_decode_str(data).collect()
    };
    if bytes.len() > MAX_INLINE_BYTES {
        return Err(invalid(&format!("larger than {MAX_INLINE_BYTES} bytes")));
    }
    Ok(bytes)
}

/// Checks, before accepting a task, that this node can provide its inputs.
pub fn check(task: &Task, allow: &AllowList) -> Result<(), InputError> {
    for input in &task.input_sources {
        clean_target(&input.target)?;
        match input.source.r#type.as_str() {
            "inline" => {}
            "local" | "localDirectory" => {
                local_source(input, allow)?;
            }
            other => {
                return Err(InputError::Invalid(format!(
                    "this node does not support input source type {other:?} (it supports {})",
                    SUPPORTED.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// A `local` input's host path and whether it is mounted read-write.
fn local_source(input: &InputSource, allow: &AllowList) -> Result<(PathBuf, bool), InputError> {
    let path = input
        .source
        .param_str("SourcePath")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            InputError::Invalid(format!("local input {} has no SourcePath", input.target))
        })?;
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(InputError::Invalid(format!(
            "local input path {} must be absolute",
            path.display()
        )));
    }
    let wants_rw = input
        .source
        .param("ReadWrite")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    match allow.check(&path) {
        None => Err(InputError::Invalid(format!(
            "local path {} is not allowed on this node (or does not exist): see Compute.AllowListedLocalPaths",
            path.display()
        ))),
        Some(false) if wants_rw => Err(InputError::Invalid(format!(
            "local path {} is allowed read-only on this node, but the job asks to write to it",
            path.display()
        ))),
        Some(_) => Ok((path, wants_rw)),
    }
}

/// Places every input of `task`: inline data under `root(work_dir)`, local paths where they are.
pub async fn prepare(
    task: &Task,
    work_dir: &Path,
    allow: &AllowList,
) -> Result<Vec<PreparedInput>, InputError> {
    let mut prepared = Vec::with_capacity(task.input_sources.len());
    for input in &task.input_sources {
        prepared.push(prepare_one(input, work_dir, allow).await?);
    }
    Ok(prepared)
}

async fn prepare_one(
    input: &InputSource,
    work_dir: &Path,
    allow: &AllowList,
) -> Result<PreparedInput, InputError> {
    let target = clean_target(&input.target)?;
    let host_path = root(work_dir).join(target.strip_prefix("/").unwrap_or(&target));
    let io = |e: std::io::Error| InputError::Io {
        target: input.target.clone(),
        reason: e.to_string(),
    };
    match input.source.r#type.as_str() {
        "inline" => {
            let url = input.source.param_str("URL").ok_or_else(|| {
                InputError::Invalid(format!("inline input {} has no URL param", input.target))
            })?;
            let bytes = decode_data_url(url)?;
            if let Some(parent) = host_path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io)?;
            }
            tokio::fs::write(&host_path, bytes).await.map_err(io)?;
        }
        "local" | "localDirectory" => {
            let (path, read_write) = local_source(input, allow)?;
            return Ok(PreparedInput {
                host_path: path,
                target: target.to_string_lossy().into_owned(),
                read_write,
                in_tree: false,
            });
        }
        other => {
            return Err(InputError::Invalid(format!(
                "this node does not support input source type {other:?} (it supports {})",
                SUPPORTED.join(", ")
            )));
        }
    }
    Ok(PreparedInput {
        host_path,
        target: target.to_string_lossy().into_owned(),
        read_write: false,
        in_tree: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_decode_base64_and_plain() {
        assert_eq!(
            decode_data_url("data:text/plain;base64,aGk=").unwrap(),
            b"hi"
        );
        assert_eq!(
            decode_data_url("data:,hello%20there").unwrap(),
            b"hello there"
        );
        assert!(decode_data_url("http://x").is_err());
        assert!(decode_data_url("data:application/gzip;base64,AAAA").is_err());
    }

    #[test]
    fn allow_list_resolves_paths_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        let allow = AllowList::new(&[
            format!("{}/*", data.display()),
            format!("{}:rw", scratch.display()),
        ]);
        assert_eq!(allow.check(&data.join("sub")), Some(false));
        assert_eq!(allow.check(&scratch), Some(true));
        assert_eq!(allow.check(dir.path()), None);
        assert_eq!(allow.check(&data.join("sub/../../scratch")), Some(true));
        assert_eq!(allow.check(&data.join("missing")), None);
        let escape = data.join("escape");
        std::os::unix::fs::symlink("/etc", &escape).unwrap();
        assert_eq!(
            allow.check(&escape),
            None,
            "a symlink must not lead outside"
        );
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
