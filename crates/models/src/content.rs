//! What a task's data is known by, and the task's content key.
//!
//! An input's [`Identity`] names its bytes (a CID, a SHA-256) when they are known, or only its
//! place (a URL, a host path) until a node has fetched it. A task's [`ContentKey`] is the
//! SHA-256 of everything that determines its output: the engine and its params (a Docker
//! image by digest), the environment (names and values as the spec writes them: an `env:NAME`
//! secret stays a reference, its value never enters a key), each input's identity by
//! content, the result paths and the publisher's type. Two tasks with the same key are
//! expected to produce the same result; the orchestrator's result cache and verified
//! re-execution rest on that. The orchestrator computes a key from the spec alone
//! ([`job_key`]); a node computes the same key from the identities it resolved while fetching
//! ([`task_key`]): for inputs the spec already names by content both take them from the spec
//! ([`spec_identity`]), so the two agree.

use crate::job::{Job, JobType};
use crate::task::{InputSource, Task};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// Meta key asking for the result cache: `"true"` serves a job from an earlier run with the
/// same content key and records this run for later ones. Meta travels as upstream's free-form
/// map, so the wire format is unchanged.
pub const CACHE_META: &str = "bacalhau-rs/cache";

/// Meta key asking for verified re-execution: the number of distinct nodes (2 or more) that
/// run the job and must agree on its result.
pub const VERIFY_META: &str = "bacalhau-rs/verify";

/// An execution state's detail `InputContent:<target>`: what that input's data was known by
/// when the node ran it (lineage). State details are upstream's map of strings, so the wire
/// format is unchanged.
pub const INPUT_CONTENT_DETAIL: &str = "InputContent:";
/// An execution state's detail: the task's content key as the node computed it.
pub const CONTENT_KEY_DETAIL: &str = "ContentKey";
/// An execution state's detail on an execution served from the cache: `<job ID>/<execution
/// ID>` of the run whose result it took.
pub const CACHED_FROM_DETAIL: &str = "CachedFrom";

/// The most nodes a verified job may ask for.
pub const MAX_VERIFY: u64 = 16;

/// What an input's data is known by, as text: `cid:<CID>[/path]`, `sha256:<hex>` (one file's
/// bytes), `tree-sha256:<hex>` (a directory's files and names), `s3:<bucket>/<key>@<version>`
/// (an object version), or by place only: `url:<url>`, `local:<path>`, `s3:<bucket>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity(String);

impl Identity {
    /// Data named by a CID, with an optional path under it.
    pub fn cid(cid_and_path: &str) -> Self {
        Self(format!("cid:{cid_and_path}"))
    }

    /// One file's bytes, by the SHA-256 of them.
    pub fn sha256(digest: &[u8]) -> Self {
        Self(format!("sha256:{}", hex(digest)))
    }

    /// A directory's files and names, by a SHA-256 over them.
    pub fn tree_sha256(digest: &[u8]) -> Self {
        Self(format!("tree-sha256:{}", hex(digest)))
    }

    /// An image as an engine resolved it: its ID (`sha256:<hex>`), as Docker names it.
    pub fn image(id: &str) -> Self {
        Self(format!("image:{id}"))
    }

    /// Data known only by where it is (`url`, `local`, `s3`...).
    pub fn location(kind: &str, place: &str) -> Self {
        Self(format!("{kind}:{place}"))
    }

    /// Reads an identity back from its text.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(':')?;
        (!kind.is_empty() && !rest.is_empty()).then(|| Self(text.to_string()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it names bytes rather than a place.
    pub fn is_content(&self) -> bool {
        let kind = self.0.split_once(':').map_or("", |(k, _)| k);
        match kind {
            "cid" | "sha256" | "tree-sha256" | "image" | "output-sha256" => true,
            // An object version never changes; an object by key may.
            "s3" => self.0.contains('@'),
            _ => false,
        }
    }

    /// The root CID, for `cid:` identities: what links a consumer to the job that produced it.
    pub fn root_cid(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("cid:")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }

    /// The identity that links data across jobs: a CID's root (a job reading `CID/sub` read
    /// what produced `CID`), otherwise the whole identity.
    pub fn link(&self) -> Identity {
        match self.root_cid() {
            Some(root) => Identity::cid(root),
            None => self.clone(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A task's content key: the SHA-256 (hex) of what determines its output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentKey(String);

impl ContentKey {
    /// Reads a key back from its hex text.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a task has no content key (yet): a part of it is known by place, or the job cannot be
/// keyed at all. Says which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct NotByContent {
    /// The field, e.g. `Tasks[0].InputSources[1]`.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// Why a `data:` URL does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid inline data URL: {0}")]
pub struct DataUrlError(String);

/// Largest inline input accepted, decoded.
pub const MAX_INLINE_BYTES: usize = 64 * 1024 * 1024;

/// Standard base64, padded or not.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes an RFC 2397 `data:` URL (base64 or percent-encoded), as `inline` inputs carry.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, DataUrlError> {
    let invalid = |why: &str| DataUrlError(why.to_string());
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
        // Upstream's specs split long base64 over lines (its decoder skips the line breaks)
        // and some writers drop the padding: accept both.
        let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        BASE64
            .decode(compact)
            .map_err(|e| invalid(&format!("bad base64: {e}")))?
    } else {
        percent_encoding::percent_decode_str(data).collect()
    };
    if bytes.len() > MAX_INLINE_BYTES {
        return Err(invalid(&format!("larger than {MAX_INLINE_BYTES} bytes")));
    }
    Ok(bytes)
}

/// An input's identity from its spec alone: content when the spec names it (an `ipfs` CID,
/// `inline` bytes, an `s3` object version or checksum), otherwise its place (`Err`, with
/// the place as an identity for records: a node learns the content when it fetches it).
pub fn spec_identity(input: &InputSource) -> Result<Identity, Identity> {
    let param = |key: &str| input.source.param_str(key).unwrap_or_default().trim();
    match input.source.r#type.as_str() {
        "ipfs" => {
            let cid = param("CID")
                .trim_start_matches("/ipfs/")
                .trim_end_matches('/');
            if cid.is_empty() {
                Err(Identity::location("ipfs", "(no CID)"))
            } else {
                Ok(Identity::cid(cid))
            }
        }
        "inline" => match decode_data_url(param("URL")) {
            Ok(bytes) => Ok(Identity::sha256(&Sha256::digest(&bytes))),
            Err(_) => Err(Identity::location("inline", "(undecodable)")),
        },
        "s3" => {
            let place = format!("{}/{}", param("Bucket"), param("Key"));
            if let Ok(sum) = BASE64.decode(param("ChecksumSHA256"))
                && sum.len() == 32
            {
                return Ok(Identity::sha256(&sum));
            }
            match param("VersionID") {
                "" => Err(Identity::location("s3", &place)),
                version => Ok(Identity::location("s3", &format!("{place}@{version}"))),
            }
        }
        "urlDownload" | "s3PreSigned" => Err(Identity::location(
            "url",
            input
                .source
                .param_str("URL")
                .or_else(|| input.source.param_str("PreSignedURL"))
                .unwrap_or_default(),
        )),
        "local" | "localDirectory" => Err(Identity::location("local", param("SourcePath"))),
        other => Err(Identity::location(other, "")),
    }
}

/// A Docker image named by digest (`name@sha256:...`, or an image ID `sha256:...` as Docker
/// accepts for a local image), as an identity.
pub fn pinned_image(image: &str) -> Option<Identity> {
    let digest = image.rsplit_once('@').map_or(image, |(_, digest)| digest);
    let hexpart = digest.strip_prefix("sha256:")?;
    (hexpart.len() == 64 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Identity(format!("image:{digest}")))
}

/// Everything the key covers, in a fixed order; serialized to JSON and hashed.
#[derive(Serialize)]
struct KeyMaterial<'a> {
    /// Bumped if the key's make-up changes, so old entries miss rather than mislead.
    version: u32,
    engine: &'a str,
    params: serde_json::Value,
    env: &'a std::collections::BTreeMap<String, String>,
    inputs: Vec<(&'a str, &'a str)>,
    results: Vec<(&'a str, &'a str)>,
    publisher: &'a str,
}

/// The key of `task` with `inputs` (one identity per input source, in order) and, for a
/// Docker task, the image as the node resolved it (`None`: only a digest in the spec will do).
pub fn task_key(
    task: &Task,
    inputs: &[Identity],
    image: Option<&Identity>,
) -> Result<ContentKey, NotByContent> {
    if inputs.len() != task.input_sources.len() {
        return Err(NotByContent {
            field: "InputSources".into(),
            reason: "an identity is missing".into(),
        });
    }
    for (i, identity) in inputs.iter().enumerate() {
        if !identity.is_content() {
            return Err(NotByContent {
                field: format!("InputSources[{i}]"),
                reason: format!(
                    "a {} input is known by its place ({identity}) until a node fetches it",
                    task.input_sources[i].source.r#type
                ),
            });
        }
    }
    let mut params = serde_json::to_value(&task.engine.params).unwrap_or_default();
    if task.engine.r#type == "docker" {
        let spec_image = task.engine.param_str("Image").unwrap_or_default();
        let resolved = pinned_image(spec_image).or_else(|| image.cloned());
        let Some(resolved) = resolved else {
            return Err(NotByContent {
                field: "Engine.Params.Image".into(),
                reason: format!(
                    "image {spec_image:?} is named by tag; name it by digest (name@sha256:...) so its content is known"
                ),
            });
        };
        if let Some(map) = params.as_object_mut() {
            map.insert("Image".into(), serde_json::Value::String(resolved.0));
        }
    }
    let mut inputs: Vec<(&str, &str)> = task
        .input_sources
        .iter()
        .zip(inputs)
        .map(|(source, identity)| (source.target.as_str(), identity.as_str()))
        .collect();
    inputs.sort_unstable();
    let mut results: Vec<(&str, &str)> = task
        .result_paths
        .iter()
        .map(|r| (r.name.as_str(), r.path.as_str()))
        .collect();
    results.sort_unstable();
    let material = KeyMaterial {
        version: 1,
        engine: &task.engine.r#type,
        params,
        env: &task.env,
        inputs,
        results,
        publisher: &task.publisher.r#type,
    };
    let json = serde_json::to_vec(&material).unwrap_or_default();
    Ok(ContentKey(hex(&Sha256::digest(&json))))
}

/// The key of a job's one task from its spec alone, as the orchestrator sees it at submission.
pub fn job_key(job: &Job) -> Result<ContentKey, NotByContent> {
    if !matches!(job.job_type(), Some(JobType::Batch | JobType::Ops)) {
        return Err(NotByContent {
            field: "Type".into(),
            reason: format!(
                "{} jobs run until stopped; only batch and ops jobs have one result",
                job.r#type
            ),
        });
    }
    if job.count != 1 {
        return Err(NotByContent {
            field: "Count".into(),
            reason: format!(
                "{} partitions each have their own result; only a Count of 1 is keyed",
                job.count
            ),
        });
    }
    let Some(task) = job.task() else {
        return Err(NotByContent {
            field: "Tasks".into(),
            reason: "the job has no task".into(),
        });
    };
    let mut identities = Vec::with_capacity(task.input_sources.len());
    for (i, input) in task.input_sources.iter().enumerate() {
        match spec_identity(input) {
            Ok(identity) => identities.push(identity),
            Err(place) => {
                return Err(NotByContent {
                    field: format!("Tasks[0].InputSources[{i}]"),
                    reason: format!(
                        "a {} input is known by its place ({place}) until a node fetches it",
                        input.source.r#type
                    ),
                });
            }
        }
    }
    task_key(task, &identities, None).map_err(|mut e| {
        e.field = format!("Tasks[0].{}", e.field);
        e
    })
}

/// What an execution's result is known by: an `ipfs` result's CID; with no publisher (or
/// `noop`) the SHA-256 of its exit code, stdout and stderr, which is all it produced; `None`
/// for results known by place (a URL, a bucket).
pub fn result_identity(execution: &crate::Execution) -> Option<Identity> {
    match &execution.published_result {
        Some(result) if result.r#type == "ipfs" => published_cid(execution),
        Some(result) if !result.is_empty() && result.r#type != "noop" => None,
        _ => {
            let output = execution.run_output.as_ref()?;
            let mut hasher = Sha256::new();
            hasher.update(output.exit_code.to_string().as_bytes());
            hasher.update([0]);
            hasher.update(output.stdout.as_bytes());
            hasher.update([0]);
            hasher.update(output.stderr.as_bytes());
            Some(Identity(format!(
                "output-sha256:{}",
                hex(&hasher.finalize())
            )))
        }
    }
}

/// The CID an execution published its result under (`ipfs`): what another job can read.
pub fn published_cid(execution: &crate::Execution) -> Option<Identity> {
    result_cid(execution.published_result.as_ref()?)
}

/// The CID a published result (`ipfs`) is known by; `None` for other publishers.
pub fn result_cid(result: &crate::SpecConfig) -> Option<Identity> {
    (result.r#type == "ipfs")
        .then(|| result.param_str("CID").map(Identity::cid))
        .flatten()
}

/// The identities an execution's node recorded for its inputs, by target.
pub fn input_identities(execution: &crate::Execution) -> Vec<(String, Identity)> {
    execution
        .compute_state
        .details
        .iter()
        .filter_map(|(k, v)| {
            let target = k.strip_prefix(INPUT_CONTENT_DETAIL)?;
            Some((target.to_string(), Identity::parse(v)?))
        })
        .collect()
}

/// The content key an execution's node computed, if every part was known by content.
pub fn execution_key(execution: &crate::Execution) -> Option<ContentKey> {
    ContentKey::parse(execution.compute_state.details.get(CONTENT_KEY_DETAIL)?)
}

/// Whether the job asks for the result cache.
pub fn wants_cache(job: &Job) -> bool {
    job.meta
        .get(CACHE_META)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Checks a verification request: a number of nodes from 2 to [`MAX_VERIFY`], on a batch or
/// ops job of one partition whose result can be compared (published to `ipfs`, or no
/// publisher: its output).
pub fn check_verify(job: &Job, raw: &str) -> Result<(), String> {
    let nodes: u64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of nodes"))?;
    if !(2..=MAX_VERIFY).contains(&nodes) {
        return Err(format!(
            "verification needs from 2 to {MAX_VERIFY} nodes, found {nodes}"
        ));
    }
    if !matches!(job.job_type(), Some(JobType::Batch)) || job.count != 1 {
        return Err("only a batch job with a Count of 1 can be verified".into());
    }
    match job.task().map(|t| t.publisher.r#type.as_str()) {
        None | Some("" | "noop" | "ipfs") => Ok(()),
        Some(other) => Err(format!(
            "results published with {other:?} are known by place and cannot be compared; publish to ipfs or not at all"
        )),
    }
}

/// How many distinct nodes must agree on the job's result; `None` when not asked.
pub fn verify_count(job: &Job) -> Option<u64> {
    job.meta.get(VERIFY_META)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::SpecConfig;
    use proptest::prelude::*;

    fn inline(target: &str, text: &str) -> InputSource {
        let mut source = SpecConfig::of_type("inline");
        source.params.insert(
            "URL".into(),
            serde_json::Value::String(format!("data:,{text}")),
        );
        InputSource {
            source,
            alias: String::new(),
            target: target.into(),
        }
    }

    fn wasm_task(param: &str, input: &str) -> Task {
        let mut engine = SpecConfig::of_type("wasm");
        engine.params.insert("EntryModule".into(), "/m.wasm".into());
        engine
            .params
            .insert("Parameters".into(), serde_json::json!([param]));
        Task {
            name: "main".into(),
            engine,
            input_sources: vec![inline("/m.wasm", input)],
            ..Default::default()
        }
    }

    fn key(task: &Task) -> ContentKey {
        let ids: Vec<Identity> = task
            .input_sources
            .iter()
            .map(|i| spec_identity(i).unwrap())
            .collect();
        task_key(task, &ids, None).unwrap()
    }

    #[test]
    fn data_urls_decode_base64_and_percent() {
        assert_eq!(decode_data_url("data:,a%20b").unwrap(), b"a b");
        assert_eq!(decode_data_url("data:;base64,aGk=").unwrap(), b"hi");
        assert_eq!(decode_data_url("data:;base64,aGk").unwrap(), b"hi");
        assert!(decode_data_url("http://x").is_err());
        assert!(decode_data_url("data:;base64,@@@").is_err());
    }

    #[test]
    fn inline_identity_is_the_bytes_not_the_encoding() {
        let plain = inline("/a", "hi");
        let mut encoded = plain.clone();
        encoded.source.params.insert(
            "URL".into(),
            serde_json::Value::String("data:text/plain;base64,aGk=".into()),
        );
        assert_eq!(spec_identity(&plain), spec_identity(&encoded));
        assert!(spec_identity(&plain).unwrap().is_content());
    }

    #[test]
    fn places_are_not_content() {
        let mut url = SpecConfig::of_type("urlDownload");
        url.params.insert("URL".into(), "http://h/x".into());
        let input = InputSource {
            source: url,
            alias: String::new(),
            target: "/in".into(),
        };
        let place = spec_identity(&input).unwrap_err();
        assert_eq!(place.as_str(), "url:http://h/x");
        assert!(!place.is_content());
        let mut task = wasm_task("a", "x");
        task.input_sources.push(input);
        let job = Job {
            r#type: "batch".into(),
            count: 1,
            tasks: vec![task],
            ..Default::default()
        };
        let err = job_key(&job).unwrap_err();
        assert_eq!(err.field, "Tasks[0].InputSources[1]");
    }

    #[test]
    fn a_cid_links_by_its_root() {
        let id = Identity::cid("bafyroot/sub/file");
        assert_eq!(id.root_cid(), Some("bafyroot"));
        assert_eq!(id.link(), Identity::cid("bafyroot"));
    }

    #[test]
    fn docker_needs_a_digest_or_a_resolved_image() {
        let mut engine = SpecConfig::of_type("docker");
        engine.params.insert("Image".into(), "busybox:1.37".into());
        let task = Task {
            engine,
            ..Default::default()
        };
        let err = task_key(&task, &[], None).unwrap_err();
        assert_eq!(err.field, "Engine.Params.Image");
        let a = task_key(
            &task,
            &[],
            Some(&Identity(format!("image:sha256:{}", "a".repeat(64)))),
        );
        let b = task_key(
            &task,
            &[],
            Some(&Identity(format!("image:sha256:{}", "b".repeat(64)))),
        );
        assert_ne!(a.unwrap(), b.unwrap());
        let mut pinned = task.clone();
        pinned.engine.params.insert(
            "Image".into(),
            format!("busybox@sha256:{}", "c".repeat(64)).into(),
        );
        assert!(task_key(&pinned, &[], None).is_ok());
        assert!(pinned_image(&format!("sha256:{}", "d".repeat(64))).is_some());
        assert!(pinned_image("busybox:1.37").is_none());
        assert!(pinned_image("busybox@sha256:short").is_none());
    }

    #[test]
    fn secrets_stay_references() {
        let mut task = wasm_task("a", "x");
        task.env.insert("TOKEN".into(), "env:TOKEN".into());
        // The key is a hash of the spec as written: the reference, never a resolved value.
        let k1 = key(&task);
        assert_eq!(k1, key(&task));
        task.env.insert("TOKEN".into(), "env:OTHER".into());
        assert_ne!(k1, key(&task));
    }

    #[test]
    fn only_one_partition_batch_jobs_have_a_job_key() {
        let job = Job {
            r#type: "service".into(),
            count: 1,
            tasks: vec![wasm_task("a", "x")],
            ..Default::default()
        };
        assert_eq!(job_key(&job).unwrap_err().field, "Type");
        let job = Job {
            r#type: "batch".into(),
            count: 2,
            tasks: vec![wasm_task("a", "x")],
            ..Default::default()
        };
        assert_eq!(job_key(&job).unwrap_err().field, "Count");
    }

    proptest! {
        /// Any change of a parameter or of one input byte changes the key; the same task keys
        /// the same.
        #[test]
        fn keys_follow_content(a in "[a-z]{0,8}", b in "[a-z]{0,8}", x in "[a-z]{1,8}", y in "[a-z]{1,8}") {
            let first = key(&wasm_task(&a, &x));
            prop_assert_eq!(&first, &key(&wasm_task(&a, &x)));
            prop_assert_eq!(a == b && x == y, first == key(&wasm_task(&b, &y)));
        }
    }
}
