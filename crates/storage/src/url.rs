//! `urlDownload` inputs (and `s3PreSigned`, an object behind a signed URL): a file fetched
//! over http or https into a directory mounted at the input's target, named as the URL's last path segment (or the server's
//! `Content-Disposition` name), as upstream. Failed attempts (connection errors, 5xx, 429) are
//! retried with a growing pause; progress goes to the node's log.

use crate::{StorageConfig, too_large};
use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{InputError, InputRequest, InputStorage, PreparedInput};
use bacalhau_models::InputSource;
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Downloads inputs over HTTP.
pub struct UrlStorage {
    client: reqwest::Client,
    max_bytes: u64,
    max_retries: u32,
}

impl UrlStorage {
    /// A storage with the node's limits.
    pub fn new(config: &StorageConfig) -> Self {
        let client = reqwest::Client::builder()
            .read_timeout(config.read_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            client,
            max_bytes: config.max_input_bytes,
            max_retries: config.max_retries,
        }
    }

    async fn download(
        &self,
        input: &InputSource,
        url: &reqwest::Url,
        dir: &Path,
    ) -> Result<u64, InputError> {
        let mut attempt = 0;
        loop {
            match self.try_download(input, url, dir).await {
                Err(Attempt::Retry(reason)) if attempt < self.max_retries => {
                    attempt += 1;
                    tracing::warn!(%url, attempt, %reason, "download failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(6))).await;
                }
                Err(Attempt::Retry(reason)) => {
                    return Err(InputError::unavailable(
                        input,
                        format!("{url}: {reason} (after {} attempts)", attempt + 1),
                    ));
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Ok(bytes) => return Ok(bytes),
            }
        }
    }

    async fn try_download(
        &self,
        input: &InputSource,
        url: &reqwest::Url,
        dir: &Path,
    ) -> Result<u64, Attempt> {
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Retry(format!("the server answered {status}")));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(InputError::Invalid(format!(
                "cannot download {url}: the server answered {status}"
            ))));
        }
        let limit = self.max_bytes;
        let expected = response.content_length();
        if let Some(size) = expected
            && limit > 0
            && size > limit
        {
            return Err(Attempt::Fatal(too_large(input, size, limit)));
        }
        let name = file_name(&response);
        let path = dir.join(&name);
        let io = |e: std::io::Error| Attempt::Fatal(InputError::unavailable(input, e));
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        let mut body = response.bytes_stream();
        let mut written: u64 = 0;
        let mut next_report = 64 << 20;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Attempt::Retry(e.to_string()))?;
            written += chunk.len() as u64;
            if limit > 0 && written > limit {
                return Err(Attempt::Fatal(too_large(input, written, limit)));
            }
            file.write_all(&chunk).await.map_err(io)?;
            if written >= next_report {
                tracing::info!(%url, written, total = ?expected, "downloading");
                next_report += 64 << 20;
            }
        }
        file.sync_all().await.map_err(io)?;
        if expected.is_some_and(|size| size != written) {
            return Err(Attempt::Retry(format!(
                "the download ended after {written} of {} bytes",
                expected.unwrap_or_default()
            )));
        }
        tracing::info!(%url, file = %name, bytes = written, "downloaded");
        Ok(written)
    }
}

enum Attempt {
    Retry(String),
    Fatal(InputError),
}

/// The name the file gets: the server's `Content-Disposition` name, else the URL's last path
/// segment, else `download`; never a path.
fn file_name(response: &reqwest::Response) -> String {
    let from_header = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_name);
    let from_url = response
        .url()
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        });
    from_header
        .or(from_url)
        .map(|name| sanitize(&name))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "download".to_string())
}

fn disposition_name(header: &str) -> Option<String> {
    header.split(';').map(str::trim).find_map(|part| {
        let value = part
            .strip_prefix("filename=")
            .or_else(|| part.strip_prefix("filename*=UTF-8''"))?;
        Some(value.trim_matches('"').to_string())
    })
}

/// Keeps only the last component of a name, so it cannot climb out of the directory.
fn sanitize(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    match last {
        "." | ".." => String::new(),
        other => other.replace('\0', ""),
    }
}

fn parse_url(input: &InputSource) -> Result<reqwest::Url, InputError> {
    // An `s3PreSigned` source is an S3 object behind a signed https URL: a download like any.
    let param = if input.source.r#type == "s3PreSigned" {
        "PreSignedURL"
    } else {
        "URL"
    };
    let raw = input.source.param_str(param).unwrap_or_default();
    let url = reqwest::Url::parse(raw).map_err(|e| {
        InputError::Invalid(format!(
            "urlDownload input {}: invalid URL {raw:?}: {e}",
            input.target
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InputError::Invalid(format!(
            "urlDownload input {}: only http and https URLs are supported, not {:?}",
            input.target,
            url.scheme()
        )));
    }
    Ok(url)
}

impl InputStorage for UrlStorage {
    fn types(&self) -> &'static [&'static str] {
        &["urlDownload", "s3PreSigned"]
    }

    fn check(&self, input: &InputSource) -> Result<(), InputError> {
        parse_url(input).map(|_| ())
    }

    fn prepare<'a>(
        &'a self,
        request: InputRequest<'a>,
    ) -> BoxFuture<'a, Result<PreparedInput, InputError>> {
        Box::pin(async move {
            let input = request.input;
            let url = parse_url(input)?;
            tokio::fs::create_dir_all(&request.dest)
                .await
                .map_err(|e| InputError::unavailable(input, e))?;
            let bytes = self.download(input, &url, &request.dest).await?;
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
    fn names_cannot_climb_out() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize(".."), "");
        assert_eq!(sanitize("data.csv"), "data.csv");
        assert_eq!(
            disposition_name("attachment; filename=\"report.csv\""),
            Some("report.csv".into())
        );
    }
}
