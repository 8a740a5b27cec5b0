//! `local` inputs (alias `localDirectory`): a host path under `Compute.AllowListedLocalPaths`,
//! mounted in place, read-only unless both the allow-list entry (`path:rw`) and the spec say
//! read-write. Anything outside the list is refused before the node accepts the job.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{InputError, InputRequest, InputStorage, PreparedInput};
use bacalhau_models::InputSource;
use std::path::{Path, PathBuf};

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

/// Mounts allow-listed host paths.
pub struct LocalStorage {
    allow: AllowList,
}

impl LocalStorage {
    /// A storage that mounts what `allow` lets through.
    pub fn new(allow: AllowList) -> Self {
        Self { allow }
    }

    /// The input's host path and whether it is mounted read-write.
    fn source(&self, input: &InputSource) -> Result<(PathBuf, bool), InputError> {
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
        match self.allow.check(&path) {
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
}

impl InputStorage for LocalStorage {
    fn types(&self) -> &'static [&'static str] {
        &["local", "localDirectory"]
    }

    fn check(&self, input: &InputSource) -> Result<(), InputError> {
        self.source(input).map(|_| ())
    }

    fn prepare<'a>(
        &'a self,
        request: InputRequest<'a>,
    ) -> BoxFuture<'a, Result<PreparedInput, InputError>> {
        Box::pin(async move {
            let (host_path, read_write) = self.source(request.input)?;
            Ok(PreparedInput {
                host_path,
                target: request.target,
                read_write,
                in_tree: false,
                bytes_read: 0,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
