//! `s3`: the results go to a bucket of any S3-compatible endpoint, with the node's own
//! credentials. `Encoding` `gzip` (the default) uploads one archive at `Key` (`.tar.gz`
//! appended when missing); `plain` uploads each file under `Key` as a prefix (`/` appended).
//! `Key` may hold `{jobID}`, `{executionID}`, `{nodeID}`, `{date}` (YYYYMMDD) and `{time}`
//! (HHMMSS), as upstream.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{PublishError, PublishRequest, Published, Publisher};
use bacalhau_models::{Execution, SpecConfig};
use object_store::ObjectStore;
use object_store::aws::AmazonS3;
use std::path::Path;

/// Uploads results to S3.
pub struct S3Publisher;

/// An s3 publisher's params.
struct Spec {
    bucket: String,
    key: String,
    endpoint: String,
    region: String,
    plain: bool,
}

impl Spec {
    fn read(spec: &SpecConfig) -> Result<Self, PublishError> {
        let text = |name: &str| spec.param_str(name).unwrap_or("").trim().to_string();
        let bucket = text("Bucket");
        let key = text("Key");
        if bucket.is_empty() {
            return Err(PublishError::Invalid(
                "s3 publisher: Bucket must be set".into(),
            ));
        }
        if key.is_empty() {
            return Err(PublishError::Invalid(
                "s3 publisher: Key must be set".into(),
            ));
        }
        let plain = match text("Encoding").to_ascii_lowercase().as_str() {
            "" | "gzip" => false,
            "plain" => true,
            other => {
                return Err(PublishError::Invalid(format!(
                    "s3 publisher: Encoding must be gzip or plain, not {other:?}"
                )));
            }
        };
        Ok(Self {
            bucket,
            key: key.trim_start_matches('/').to_string(),
            endpoint: text("Endpoint"),
            region: text("Region"),
            plain,
        })
    }
}

/// `key` with its suffix and placeholders filled for `execution`.
fn published_key(key: &str, plain: bool, execution: &Execution) -> String {
    let mut key = key.to_string();
    if plain && !key.ends_with('/') {
        key.push('/');
    }
    if !plain && !key.ends_with(".tar.gz") {
        key.push_str(".tar.gz");
    }
    let now = time_now();
    key.replace("{jobID}", execution.job_id.as_str())
        .replace("{executionID}", execution.id.as_str())
        .replace("{nodeID}", execution.node_id.as_str())
        .replace("{date}", &now.0)
        .replace("{time}", &now.1)
}

/// Today's date as `YYYYMMDD` and the time as `HHMMSS`, in UTC.
fn time_now() -> (String, String) {
    // RFC 3339 in UTC: `2026-11-26T05:36:50Z`.
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digits = |part: &str| {
        part.chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    };
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
    (digits(date), digits(time))
}

async fn upload(store: &AmazonS3, key: &str, file: &Path) -> Result<u64, PublishError> {
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| PublishError::Failed(format!("cannot read {}: {e}", file.display())))?;
    let size = bytes.len() as u64;
    store
        .put(&object_store::path::Path::from(key), bytes.into())
        .await
        .map_err(|e| PublishError::Failed(format!("cannot upload {key}: {e}")))?;
    Ok(size)
}

/// Every regular file under `dir`, as paths relative to it with `/` separators.
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    Ok(bacalhau_compute::publisher::files_under(dir)?
        .into_iter()
        .filter_map(|(path, _)| {
            let relative = path.strip_prefix(dir).ok()?;
            Some(relative.to_string_lossy().replace('\\', "/"))
        })
        .collect())
}

impl Publisher for S3Publisher {
    fn publisher_type(&self) -> &'static str {
        "s3"
    }

    fn check(&self, spec: &SpecConfig) -> Result<(), PublishError> {
        Spec::read(spec).map(|_| ())
    }

    fn publish<'a>(
        &'a self,
        request: PublishRequest<'a>,
    ) -> BoxFuture<'a, Result<Published, PublishError>> {
        Box::pin(async move {
            let spec = Spec::read(request.spec)?;
            let store =
                bacalhau_storage::s3::open_bucket(&spec.bucket, &spec.region, &spec.endpoint)
                    .map_err(|e| PublishError::Invalid(format!("s3 publisher: {e}")))?;
            let key = published_key(&spec.key, spec.plain, request.execution);
            let results = request.results_dir.to_path_buf();
            let mut bytes = 0;
            if spec.plain {
                let files = tokio::task::spawn_blocking({
                    let results = results.clone();
                    move || files_under(&results)
                })
                .await
                .map_err(|e| PublishError::Failed(e.to_string()))?
                .map_err(|e| PublishError::Failed(format!("cannot list the results: {e}")))?;
                for file in files {
                    bytes += upload(&store, &format!("{key}{file}"), &results.join(&file)).await?;
                }
            } else {
                let archive = results.with_extension("tar.gz");
                let packed = archive.clone();
                tokio::task::spawn_blocking(move || crate::archive::pack(&results, &packed))
                    .await
                    .map_err(|e| PublishError::Failed(e.to_string()))?
                    .map_err(|e| {
                        PublishError::Failed(format!("cannot archive the results: {e}"))
                    })?;
                let uploaded = upload(&store, &key, &archive).await;
                let _ = tokio::fs::remove_file(&archive).await;
                bytes = uploaded?;
            }
            let mut result = SpecConfig::of_type("s3");
            for (name, value) in [
                ("Bucket", spec.bucket),
                ("Key", key),
                ("Endpoint", spec.endpoint),
                ("Region", spec.region),
            ] {
                result.params.insert(name.into(), value.into());
            }
            Ok(Published {
                result: Some(result),
                bytes,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_get_their_suffix_and_placeholders() {
        let execution = Execution {
            id: "e-1".into(),
            job_id: "j-2".into(),
            node_id: "n-3".into(),
            ..Default::default()
        };
        assert_eq!(
            published_key("out/{jobID}/{executionID}", false, &execution),
            "out/j-2/e-1.tar.gz"
        );
        assert_eq!(published_key("out/{nodeID}", true, &execution), "out/n-3/");
        assert_eq!(published_key("r.tar.gz", false, &execution), "r.tar.gz");
        let dated = published_key("{date}-{time}", true, &execution);
        assert_eq!(dated.len(), "YYYYMMDD-HHMMSS/".len());
    }

    #[test]
    fn specs_are_checked() {
        let mut spec = SpecConfig::of_type("s3");
        assert!(Spec::read(&spec).is_err());
        spec.params.insert("bucket".into(), "b".into());
        spec.params.insert("key".into(), "k".into());
        assert!(Spec::read(&spec).is_ok());
        spec.params.insert("Encoding".into(), "zip".into());
        assert!(Spec::read(&spec).is_err());
    }
}
