//! `s3` inputs from any S3-compatible endpoint: one object, or every object under a key
//! prefix (a key ending in `/` or `*`), optionally filtered by a regex and split across the
//! job's executions (see `partition`). Objects land in a directory mounted at the target, at
//! their key less the prefix's directory part, as upstream. A `ChecksumSHA256` (base64, as S3
//! reports it) is checked against the downloaded bytes; `VersionID` picks an object version.

use crate::partition::{PartitionSpec, partition_objects};
use crate::{StorageConfig, too_large};
use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{InputError, InputRequest, InputStorage, PreparedInput};
use bacalhau_models::InputSource;
use base64::Engine as _;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{GetOptions, ObjectStore};
use sha2::Digest;
use std::path::{Component, Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Opens a bucket with the credentials of this process's environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`); `region`
/// and `endpoint` override them when not empty. Plain-http endpoints are allowed, so a local
/// S3-compatible server works.
pub fn open_bucket(bucket: &str, region: &str, endpoint: &str) -> Result<AmazonS3, String> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_allow_http(true);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        builder = builder.with_endpoint(endpoint);
    }
    if !region.is_empty() {
        builder = builder.with_region(region);
    }
    if !endpoint.is_empty() {
        builder = builder.with_endpoint(endpoint);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Downloads S3 objects.
pub struct S3Storage {
    max_bytes: u64,
}

impl S3Storage {
    /// A storage with the node's limits.
    pub fn new(config: &StorageConfig) -> Self {
        Self {
            max_bytes: config.max_input_bytes,
        }
    }
}

/// An s3 input's params.
struct Source {
    bucket: String,
    key: String,
    filter: Option<regex::Regex>,
    region: String,
    endpoint: String,
    version_id: String,
    checksum: String,
    partition: PartitionSpec,
}

impl Source {
    fn read(input: &InputSource) -> Result<Self, InputError> {
        let text = |name: &str| {
            input
                .source
                .param_str(name)
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let invalid =
            |why: String| InputError::Invalid(format!("s3 input {}: {why}", input.target));
        let bucket = text("Bucket");
        if bucket.is_empty() {
            return Err(invalid("Bucket must be set".into()));
        }
        let filter = match text("Filter") {
            f if f.is_empty() => None,
            f => Some(regex::Regex::new(&f).map_err(|e| invalid(format!("Filter: {e}")))?),
        };
        let partition =
            PartitionSpec::from_param(input.source.param("Partition")).map_err(invalid)?;
        Ok(Self {
            bucket,
            key: text("Key").trim_start_matches('/').to_string(),
            filter,
            region: text("Region"),
            endpoint: text("Endpoint"),
            version_id: text("VersionID"),
            checksum: text("ChecksumSHA256"),
            partition,
        })
    }

    /// The key without a trailing `*`: what listed keys start with.
    fn prefix(&self) -> &str {
        self.key.strip_suffix('*').unwrap_or(&self.key)
    }

    /// Whether the key names one object rather than a prefix.
    fn single_object(&self) -> bool {
        !self.key.is_empty() && !self.key.ends_with('/') && !self.key.ends_with('*')
    }
}

/// Where an object goes under the input directory: its key less the directory part of the
/// prefix; `None` for a key that would leave the directory.
fn local_path(dir: &Path, key: &str, prefix: &str) -> Option<PathBuf> {
    let prefix_dir = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
    let relative = if prefix_dir.is_empty() {
        key
    } else {
        key.strip_prefix(prefix_dir)?.trim_start_matches('/')
    };
    let mut path = dir.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (path != dir).then_some(path)
}

impl S3Storage {
    async fn list(&self, store: &AmazonS3, source: &Source) -> Result<Vec<(String, u64)>, String> {
        if source.single_object() {
            let meta = store
                .head(&object_store::path::Path::from(source.key.as_str()))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(vec![(source.key.clone(), meta.size)]);
        }
        // Listing works on whole path segments, so list the prefix's directory and keep the
        // keys that start with the prefix itself.
        let prefix = source.prefix();
        let dir = prefix.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        let dir = (!dir.is_empty()).then(|| object_store::path::Path::from(dir));
        let mut listing = store.list(dir.as_ref());
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| e.to_string())?;
            let key = meta.location.to_string();
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            if source.filter.as_ref().is_some_and(|f| !f.is_match(rest)) {
                continue;
            }
            objects.push((key, meta.size));
        }
        objects.sort();
        Ok(objects)
    }

    async fn fetch(
        &self,
        input: &InputSource,
        store: &AmazonS3,
        source: &Source,
        key: &str,
        dest: &Path,
    ) -> Result<u64, InputError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            InputError::unavailable(input, format!("s3://{}/{key}: {e}", source.bucket))
        };
        let options = GetOptions {
            version: (!source.version_id.is_empty()).then(|| source.version_id.clone()),
            ..Default::default()
        };
        let result = store
            .get_opts(&object_store::path::Path::from(key), options)
            .await
            .map_err(|e| unavailable(&e))?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| unavailable(&e))?;
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut hasher = sha2::Sha256::new();
        let mut stream = result.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unavailable(&e))?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(|e| unavailable(&e))?;
        }
        file.sync_all().await.map_err(|e| unavailable(&e))?;
        if source.single_object() && !source.checksum.is_empty() {
            let actual = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
            if actual != source.checksum {
                return Err(InputError::Invalid(format!(
                    "checksum mismatch for s3://{}/{key}: expected {}, got {actual}",
                    source.bucket, source.checksum
                )));
            }
        }
        Ok(written)
    }
}

impl InputStorage for S3Storage {
    fn types(&self) -> &'static [&'static str] {
        &["s3"]
    }

    fn check(&self, input: &InputSource) -> Result<(), InputError> {
        Source::read(input).map(|_| ())
    }

    fn prepare<'a>(
        &'a self,
        request: InputRequest<'a>,
    ) -> BoxFuture<'a, Result<PreparedInput, InputError>> {
        Box::pin(async move {
            let input = request.input;
            let source = Source::read(input)?;
            let store = open_bucket(&source.bucket, &source.region, &source.endpoint)
                .map_err(|e| InputError::Invalid(format!("s3 input {}: {e}", input.target)))?;
            let listed = self.list(&store, &source).await.map_err(|e| {
                InputError::unavailable(
                    input,
                    format!("s3://{}/{}: {e}", source.bucket, source.key),
                )
            })?;
            let sizes: std::collections::HashMap<String, u64> = listed.iter().cloned().collect();
            let keys = listed.into_iter().map(|(key, _)| key).collect();
            let keys = partition_objects(
                keys,
                &source.partition,
                source.prefix(),
                request.partition.index,
                request.partition.count,
            )
            .map_err(|e| InputError::Invalid(format!("s3 input {}: {e}", input.target)))?;
            let total: u64 = keys.iter().filter_map(|k| sizes.get(k)).sum();
            if self.max_bytes > 0 && total > self.max_bytes {
                return Err(too_large(input, total, self.max_bytes));
            }
            tokio::fs::create_dir_all(&request.dest)
                .await
                .map_err(|e| InputError::unavailable(input, e))?;
            let mut bytes = 0;
            for key in &keys {
                if key.ends_with('/') {
                    continue;
                }
                let Some(dest) = local_path(&request.dest, key, source.prefix()) else {
                    tracing::warn!(%key, "skipping an object whose key would leave the input directory");
                    continue;
                };
                bytes += self.fetch(input, &store, &source, key, &dest).await?;
            }
            tracing::info!(bucket = %source.bucket, key = %source.key, objects = keys.len(), bytes, "downloaded s3 input");
            Ok(PreparedInput {
                host_path: request.dest,
                target: request.target,
                read_write: false,
                in_tree: true,
                bytes_read: bytes,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_land_under_the_prefix_directory() {
        let dir = Path::new("/in");
        assert_eq!(
            local_path(dir, "a/b/c.txt", "a/b/c.txt"),
            Some(PathBuf::from("/in/c.txt"))
        );
        assert_eq!(
            local_path(dir, "a/b/c.txt", "a/"),
            Some(PathBuf::from("/in/b/c.txt"))
        );
        assert_eq!(
            local_path(dir, "a/b/c.txt", "a/b"),
            Some(PathBuf::from("/in/b/c.txt"))
        );
        assert_eq!(
            local_path(dir, "x.txt", ""),
            Some(PathBuf::from("/in/x.txt"))
        );
        assert_eq!(local_path(dir, "a/../../etc", "a/"), None);
    }
}
