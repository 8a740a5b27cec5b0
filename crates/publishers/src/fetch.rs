//! The client side of publishing: fetches a job's published results (`urlDownload` from a
//! node's local publisher, `s3PreSigned`, `s3` with the caller's own credentials, or `ipfs`
//! blocks from the node that holds them, each checked against its CID), checks
//! each arrived whole, unpacks archives and merges them into one directory, as upstream's
//! `job get` lays it out: `stdout`, `stderr` and `exitCode` of several executions are
//! concatenated, any other clash is an error.

use bacalhau_models::SpecConfig;
use futures_util::StreamExt;
use object_store::ObjectStore;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Why results could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The result names a place this client cannot read.
    #[error("{0}")]
    Unsupported(String),
    /// The download failed.
    #[error("{0}")]
    Download(String),
    /// Writing, unpacking or merging failed.
    #[error("{0}")]
    Io(String),
}

/// Reports progress: bytes so far and the total when known.
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// A name for a downloaded file: the URL's host and path with separators replaced.
fn raw_name(url: &reqwest::Url) -> String {
    let text = format!(
        "{}{}{}",
        url.host_str().unwrap_or("result"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        url.path()
    );
    text.chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            other => other,
        })
        .collect()
}

/// Downloads one published result into `raw_dir`; returns the file (or, for plain s3
/// results, the directory) it became.
pub async fn fetch(
    client: &reqwest::Client,
    result: &SpecConfig,
    raw_dir: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, FetchError> {
    match result.r#type.as_str() {
        "urlDownload" => {
            let url = result.param_str("URL").unwrap_or_default();
            fetch_url(client, url, raw_dir, progress).await
        }
        "s3PreSigned" => {
            let url = result.param_str("PreSignedURL").unwrap_or_default();
            fetch_url(client, url, raw_dir, progress).await
        }
        "s3" => fetch_s3(result, raw_dir, progress).await,
        other => Err(FetchError::Unsupported(format!(
            "results published as {other:?} cannot be downloaded by this client"
        ))),
    }
}

/// Fetches an `ipfs` result's blocks from the node that holds them (`node_url`, its results
/// server), checking each against its CID, and writes the UnixFS tree as a directory under
/// `raw_dir`; returns that directory. An altered block fails the fetch naming its CID.
pub async fn fetch_ipfs(
    client: &reqwest::Client,
    result: &SpecConfig,
    node_url: &str,
    raw_dir: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, FetchError> {
    let text = result.param_str("CID").unwrap_or_default();
    let root =
        bacalhau_content::parse_cid(text).map_err(|e| FetchError::Unsupported(e.to_string()))?;
    let store_dir = raw_dir.join(format!("blocks-{root}"));
    let store = bacalhau_content::BlockStore::open(&store_dir)
        .map_err(|e| FetchError::Io(e.to_string()))?;
    // Several blocks in flight: one request per 256 KiB block would otherwise wait a round
    // trip each.
    let base = node_url.trim_end_matches('/').to_string();
    let mut pending = vec![root];
    let mut seen = std::collections::HashSet::from([root]);
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut fetched = 0u64;
    loop {
        while in_flight.len() < BLOCKS_IN_FLIGHT {
            let Some(cid) = pending.pop() else { break };
            in_flight.push(fetch_block(client, &base, &store, root, cid));
        }
        let Some(block) = in_flight.next().await else {
            break;
        };
        let (size, links) = match block {
            Ok(block) => block,
            Err(e) => {
                // The other requests finish first, so none writes a block after the clean-up.
                while in_flight.next().await.is_some() {}
                let _ = std::fs::remove_dir_all(&store_dir);
                return Err(e);
            }
        };
        fetched += size;
        progress(fetched, None);
        pending.extend(links.into_iter().filter(|link| seen.insert(*link)));
    }
    drop(in_flight);
    let dest = raw_dir.join(format!("ipfs-{root}"));
    let exported = tokio::task::spawn_blocking({
        let dest = dest.clone();
        move || bacalhau_content::export(&store, &root, &dest)
    })
    .await
    .map_err(|e| FetchError::Io(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&store_dir);
    exported.map_err(|e| FetchError::Download(e.to_string()))?;
    Ok(dest)
}

/// Block requests `fetch_ipfs` keeps open at once.
const BLOCKS_IN_FLIGHT: usize = 16;

/// Fetches one block from a node's results server and keeps it in `store` once it matches
/// its CID; returns its size and its links.
async fn fetch_block(
    client: &reqwest::Client,
    base: &str,
    store: &bacalhau_content::BlockStore,
    root: bacalhau_content::Cid,
    cid: bacalhau_content::Cid,
) -> Result<(u64, Vec<bacalhau_content::Cid>), FetchError> {
    let failed = |e: reqwest::Error| {
        FetchError::Download(format!("cannot fetch block {cid} of {root}: {e}"))
    };
    let bytes = client
        .get(format!("{base}/ipfs/{cid}"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(failed)?
        .bytes()
        .await
        .map_err(failed)?;
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        // Checked before it is kept: a node cannot hand back other data under this CID.
        store
            .put(&cid, &bytes)
            .map_err(|e| FetchError::Download(format!("{e} (result {root})")))?;
        let links = bacalhau_content::links(&cid, &bytes)
            .map_err(|e| FetchError::Download(e.to_string()))?;
        Ok((bytes.len() as u64, links))
    })
    .await
    .map_err(|e| FetchError::Io(e.to_string()))?
}

async fn fetch_url(
    client: &reqwest::Client,
    url: &str,
    raw_dir: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, FetchError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| FetchError::Download(format!("invalid result URL {url:?}: {e}")))?;
    let response = client
        .get(parsed.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| FetchError::Download(format!("cannot download {url}: {e}")))?;
    let total = response.content_length();
    let path = raw_dir.join(raw_name(&parsed));
    let io = |e: std::io::Error| FetchError::Io(format!("cannot write {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
    let mut body = response.bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| FetchError::Download(format!("download of {url} broke off: {e}")))?;
        received += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
        progress(received, total);
    }
    file.flush().await.map_err(io)?;
    if let Some(total) = total
        && total != received
    {
        return Err(FetchError::Download(format!(
            "download of {url} ended after {received} of {total} bytes"
        )));
    }
    Ok(path)
}

async fn fetch_s3(
    result: &SpecConfig,
    raw_dir: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, FetchError> {
    let text = |name: &str| result.param_str(name).unwrap_or("").to_string();
    let (bucket, key) = (text("Bucket"), text("Key"));
    let store = bacalhau_storage::s3::open_bucket(&bucket, &text("Region"), &text("Endpoint"))
        .map_err(|e| FetchError::Download(format!("s3://{bucket}: {e}")))?;
    let download = |key: String, dest: PathBuf| {
        let store = &store;
        let bucket = &bucket;
        async move {
            let failed = |e: &dyn std::fmt::Display| {
                FetchError::Download(format!("cannot download s3://{bucket}/{key}: {e}"))
            };
            let got = store
                .get(&object_store::path::Path::from(key.as_str()))
                .await
                .map_err(|e| failed(&e))?;
            let total = got.meta.size;
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| FetchError::Io(e.to_string()))?;
            }
            let mut file = tokio::fs::File::create(&dest)
                .await
                .map_err(|e| FetchError::Io(format!("cannot write {}: {e}", dest.display())))?;
            let mut stream = got.into_stream();
            let mut received = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| failed(&e))?;
                received += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| FetchError::Io(e.to_string()))?;
                progress(received, Some(total));
            }
            file.flush()
                .await
                .map_err(|e| FetchError::Io(e.to_string()))?;
            if received != total {
                return Err(failed(&format!("got {received} of {total} bytes")));
            }
            Ok::<(), FetchError>(())
        }
    };
    let name: String = format!("{bucket}/{key}")
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if !key.ends_with('/') {
        let dest = raw_dir.join(&name);
        download(key.clone(), dest.clone()).await?;
        return Ok(dest);
    }
    // Plain encoding: every object under the prefix, as files under one directory.
    let dir = raw_dir.join(name.trim_end_matches('_'));
    let prefix = object_store::path::Path::from(key.trim_end_matches('/'));
    let mut listing = store.list(Some(&prefix));
    let mut keys = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta
            .map_err(|e| FetchError::Download(format!("cannot list s3://{bucket}/{key}: {e}")))?;
        keys.push(meta.location.to_string());
    }
    for object in keys {
        let relative = object.strip_prefix(&key).unwrap_or(&object);
        let Some(dest) = safe_join(&dir, relative) else {
            return Err(FetchError::Download(format!(
                "object {object} would land outside the output directory"
            )));
        };
        download(object.clone(), dest).await?;
    }
    Ok(dir)
}

/// `dir` joined with a relative path that may not climb out of it.
fn safe_join(dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => path.push(part),
        }
    }
    (path != dir).then_some(path)
}

/// A blocking reader over chunks sent from an async task: lets a download be unpacked on a
/// blocking thread while it arrives.
struct ChannelReader {
    chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                // The sender is gone: the download ended (or failed, which it reports itself).
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Whether a result is an archive at an HTTP URL, which can be unpacked as it downloads.
pub fn streamable(result: &SpecConfig) -> bool {
    let url = match result.r#type.as_str() {
        "urlDownload" => result.param_str("URL"),
        "s3PreSigned" => result.param_str("PreSignedURL"),
        _ => None,
    };
    url.and_then(|u| reqwest::Url::parse(u).ok())
        .is_some_and(|u| u.path().ends_with(".tar.gz") || u.path().ends_with(".tgz"))
}

/// Downloads an archive result and unpacks it into `dest` as it arrives (no copy of the
/// archive is kept); the length is checked as [`fetch`] does.
pub async fn fetch_unpacked(
    client: &reqwest::Client,
    result: &SpecConfig,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<(), FetchError> {
    let url = match result.r#type.as_str() {
        "s3PreSigned" => result.param_str("PreSignedURL"),
        _ => result.param_str("URL"),
    }
    .unwrap_or_default()
    .to_string();
    let response = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| FetchError::Download(format!("cannot download {url}: {e}")))?;
    let total = response.content_length();
    // A few chunks in flight: the download runs ahead of unpacking by a bounded amount.
    let (sender, chunks) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let target = dest.to_path_buf();
    let unpacking = tokio::task::spawn_blocking(move || {
        crate::archive::unpack_from(
            ChannelReader {
                chunks,
                current: bytes::Bytes::new(),
            },
            &target,
        )
    });
    let mut body = response.bytes_stream();
    let mut received = 0u64;
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                received += chunk.len() as u64;
                progress(received, total);
                // A closed receiver means unpacking failed; its error is reported below.
                if sender.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(FetchError::Download(format!(
                    "download of {url} broke off: {e}"
                )));
                break;
            }
        }
    }
    drop(sender);
    let unpacked = unpacking
        .await
        .map_err(|e| FetchError::Io(e.to_string()))?
        .map_err(|e| FetchError::Io(format!("cannot unpack {url}: {e}")));
    if let Some(failure) = failure {
        return Err(failure);
    }
    unpacked?;
    match total {
        Some(total) if total != received => Err(FetchError::Download(format!(
            "download of {url} ended after {received} of {total} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Unpacks each downloaded archive (`.tar.gz`, `.tgz`) next to itself; returns the
/// directories to merge, in order.
pub fn unpack_all(downloads: &[PathBuf]) -> Result<Vec<PathBuf>, FetchError> {
    let mut dirs = Vec::with_capacity(downloads.len());
    for download in downloads {
        if download.is_dir() {
            dirs.push(download.clone());
            continue;
        }
        let name = download.to_string_lossy();
        let Some(stem) = name
            .strip_suffix(".tar.gz")
            .or_else(|| name.strip_suffix(".tgz"))
        else {
            return Err(FetchError::Unsupported(format!(
                "{} is not a results archive; keep it with --raw",
                download.display()
            )));
        };
        let dir = PathBuf::from(format!("{stem}.unpacked"));
        std::fs::create_dir_all(&dir).map_err(|e| FetchError::Io(e.to_string()))?;
        crate::archive::unpack(download, &dir)
            .map_err(|e| FetchError::Io(format!("cannot unpack {}: {e}", download.display())))?;
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Moves the contents of `sources` into `dest`. The run's own `stdout`, `stderr` and
/// `exitCode` are concatenated across sources; any other path in two sources is an error.
pub fn merge(sources: &[PathBuf], dest: &Path) -> Result<(), FetchError> {
    let io = |e: std::io::Error| FetchError::Io(e.to_string());
    for source in sources {
        for entry in std::fs::read_dir(source).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let target = dest.join(&name);
            let appendable = matches!(name.to_str(), Some("stdout" | "stderr" | "exitCode"));
            if appendable && target.exists() {
                let mut out = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&target)
                    .map_err(io)?;
                let mut input = std::fs::File::open(entry.path()).map_err(io)?;
                std::io::copy(&mut input, &mut out).map_err(io)?;
            } else if target.exists() {
                return Err(FetchError::Io(format!(
                    "cannot merge results: {} already exists (several executions wrote it); try --raw",
                    target.display()
                )));
            } else {
                std::fs::rename(entry.path(), &target).map_err(io)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_names_are_flat() {
        let url = reqwest::Url::parse("http://127.0.0.1:6001/e-1.tar.gz").unwrap();
        assert_eq!(raw_name(&url), "127.0.0.1_6001_e-1.tar.gz");
        assert_eq!(safe_join(Path::new("/o"), "a/../../x"), None);
        assert_eq!(
            safe_join(Path::new("/o"), "a/b"),
            Some(PathBuf::from("/o/a/b"))
        );
    }

    #[test]
    fn merging_concatenates_output_and_refuses_clashes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c, out) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
            dir.path().join("out"),
        );
        for (d, text) in [(&a, "one\n"), (&b, "two\n")] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("stdout"), text).unwrap();
        }
        std::fs::create_dir_all(a.join("outputs")).unwrap();
        std::fs::create_dir_all(c.join("outputs")).unwrap();
        std::fs::create_dir(&out).unwrap();
        merge(&[a, b], &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("stdout")).unwrap(),
            "one\ntwo\n"
        );
        assert!(merge(&[c], &out).is_err(), "outputs/ exists twice");
    }
}
