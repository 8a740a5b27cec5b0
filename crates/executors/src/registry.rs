//! Credentials for pulling Docker images from private registries, from the node's own
//! configuration only (never from a job spec): the Docker CLI's `config.json` (`auths`, as
//! `docker login` writes it; `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), and
//! upstream's `DOCKER_USERNAME`/`DOCKER_PASSWORD` for Docker Hub.

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use std::collections::HashMap;
use std::path::PathBuf;

/// Docker Hub's name in `config.json` and in pull requests.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry an image reference names: its first path component when that looks like a
/// host (`localhost`, a dot or a port in it), else Docker Hub.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first == "localhost" || first.contains('.') || first.contains(':') => {
            first
        }
        _ => DOCKER_HUB,
    }
}

/// Registry credentials known to this node.
#[derive(Debug, Clone, Default)]
pub struct RegistryCredentials {
    /// By registry host (or Docker Hub's URL).
    by_registry: HashMap<String, (String, String)>,
}

impl RegistryCredentials {
    /// What this node's environment and Docker configuration hold.
    pub fn from_environment() -> Self {
        let mut credentials = Self::default();
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
        if let Some(text) = dir.and_then(|d| std::fs::read_to_string(d.join("config.json")).ok()) {
            credentials.add_docker_config(&text);
        }
        if let (Ok(username), Ok(password)) = (
            std::env::var("DOCKER_USERNAME"),
            std::env::var("DOCKER_PASSWORD"),
        ) && !username.is_empty()
        {
            credentials
                .by_registry
                .insert(DOCKER_HUB.to_string(), (username, password));
        }
        credentials
    }

    /// Adds the `auths` of a Docker CLI `config.json`; entries it cannot read are skipped.
    pub fn add_docker_config(&mut self, text: &str) {
        let Ok(config) = serde_json::from_str::<serde_json::Value>(text) else {
            tracing::warn!("the Docker config.json is not JSON: its registry logins are not used");
            return;
        };
        let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
            return;
        };
        for (registry, entry) in auths {
            let Some(pair) = entry
                .get("auth")
                .and_then(|a| a.as_str())
                .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok())
            else {
                continue;
            };
            if let Some((username, password)) = pair.split_once(':') {
                let host = registry
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                let key = if host.starts_with("index.docker.io") || host == "docker.io" {
                    DOCKER_HUB.to_string()
                } else {
                    host.to_string()
                };
                self.by_registry
                    .insert(key, (username.to_string(), password.to_string()));
            }
        }
    }

    /// The credentials for pulling `image`, if this node has some for its registry.
    pub fn for_image(&self, image: &str) -> Option<DockerCredentials> {
        let registry = registry_of(image);
        let (username, password) = self.by_registry.get(registry)?;
        Some(DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.clone()),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        })
    }

    /// Whether any credentials are known for `image`'s registry.
    pub fn has(&self, image: &str) -> bool {
        self.by_registry.contains_key(registry_of(image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_read_from_image_references() {
        assert_eq!(registry_of("busybox:1.37.0"), DOCKER_HUB);
        assert_eq!(registry_of("library/busybox"), DOCKER_HUB);
        assert_eq!(registry_of("localhost/app:1"), "localhost");
        assert_eq!(registry_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/org/app@sha256:abc"), "ghcr.io");
    }

    #[test]
    fn docker_logins_are_found_by_registry() {
        let mut credentials = RegistryCredentials::default();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        credentials.add_docker_config(&format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{auth}"}}, "https://index.docker.io/v1/": {{"auth": "{auth}"}}, "bad": {{"auth": "***"}}}}}}"#
        ));
        let private = credentials.for_image("127.0.0.1:5000/app:1").unwrap();
        assert_eq!(private.username.as_deref(), Some("alice"));
        assert_eq!(private.password.as_deref(), Some("s3cret"));
        assert_eq!(private.serveraddress.as_deref(), Some("127.0.0.1:5000"));
        assert!(credentials.for_image("busybox").is_some());
        assert!(credentials.for_image("ghcr.io/x/y").is_none());
    }
}
