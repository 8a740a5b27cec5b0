//! Secrets for jobs: a task `Env` value `env:NAME` is taken from this node's own environment,
//! and only when `Compute.Env.AllowList` lets `NAME` through. Values resolved here live only in
//! the memory of the run: never stored, reported or logged.

use bacalhau_models::Task;
use std::collections::BTreeMap;

/// The prefix of a value that names a host variable.
const HOST_PREFIX: &str = "env:";

/// Which host variables jobs may read, as glob patterns (`AWS_*`, `TOKEN_?`, `SECRET`).
#[derive(Debug, Clone, Default)]
pub struct EnvAllowList {
    patterns: Vec<String>,
}

impl EnvAllowList {
    /// An allow-list of glob patterns; an empty list lets no host variable through.
    pub fn new(patterns: Vec<String>) -> Self {
        Self { patterns }
    }

    fn allows(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| glob_matches(p, name))
    }

    /// Whether this node can give the task every host variable it names; the reason names
    /// the first one it cannot.
    pub fn check(&self, task: &Task) -> Result<(), String> {
        self.resolve_with(task, |name| std::env::var(name).ok())
            .map(|_| ())
    }

    /// The task's environment with every `env:NAME` replaced by the host's value.
    pub fn resolve(&self, task: &Task) -> Result<BTreeMap<String, String>, String> {
        self.resolve_with(task, |name| std::env::var(name).ok())
    }

    fn resolve_with(
        &self,
        task: &Task,
        host: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut resolved = BTreeMap::new();
        for (key, value) in &task.env {
            let value = match value.strip_prefix(HOST_PREFIX) {
                None => value.clone(),
                Some(name) => {
                    if !self.allows(name) {
                        return Err(format!(
                            "this node does not resolve environment variable {key}: environment variable '{name}' is not in allowed patterns (Compute.Env.AllowList)"
                        ));
                    }
                    host(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                        format!(
                            "this node does not resolve environment variable {key}: required environment variable '{name}' not found"
                        )
                    })?
                }
            };
            resolved.insert(key.clone(), value);
        }
        Ok(resolved)
    }
}

/// Glob matching over whole names: `*` any run of characters, `?` one character.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer matching with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(env: &[(&str, &str)]) -> Task {
        Task {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches("AWS_*", "AWS_SECRET_ACCESS_KEY"));
        assert!(!glob_matches("AWS_*", "MY_AWS_KEY"));
        assert!(glob_matches("TOKEN_?", "TOKEN_1"));
        assert!(!glob_matches("TOKEN_?", "TOKEN_12"));
        assert!(glob_matches("*_TOKEN", "GITHUB_TOKEN"));
        assert!(glob_matches("A*B*C", "AxxBxxC"));
        assert!(!glob_matches("A*B*C", "AxxBxx"));
        assert!(glob_matches("SECRET", "SECRET"));
        assert!(!glob_matches("SECRET", "SECRETS"));
    }

    #[test]
    fn host_variables_resolve_only_when_allowed_and_present() {
        let allow = EnvAllowList::new(vec!["APP_*".into()]);
        let host = |name: &str| (name == "APP_TOKEN").then(|| "s3cr3t".to_string());
        let resolved = allow
            .resolve_with(&task(&[("TOKEN", "env:APP_TOKEN"), ("PLAIN", "x")]), host)
            .unwrap();
        assert_eq!(resolved["TOKEN"], "s3cr3t");
        assert_eq!(resolved["PLAIN"], "x");
        let denied = allow
            .resolve_with(&task(&[("HOME_DIR", "env:HOME")]), host)
            .unwrap_err();
        assert!(
            denied.contains("'HOME' is not in allowed patterns"),
            "{denied}"
        );
        let missing = allow
            .resolve_with(&task(&[("T", "env:APP_OTHER")]), host)
            .unwrap_err();
        assert!(missing.contains("'APP_OTHER' not found"), "{missing}");
        assert!(
            EnvAllowList::default()
                .resolve_with(&task(&[("T", "env:APP_TOKEN")]), host)
                .is_err()
        );
    }
}
