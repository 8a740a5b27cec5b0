//! Runs counted outside the system under test, for the chaos and orchestrator-cluster tests:
//! every job runs `record_run.wat`, which appends one byte to a file named by its execution ID
//! in a shared directory.

use bacalhau_client::ApiClient;
use bacalhau_models::{Job, JobId, JobStateType, State, parse_job_spec};
use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shared directory runs are recorded in, the setting that lets compute nodes mount it,
/// and `record_run.wasm` base64-encoded.
pub struct Recording {
    /// The directory (one file per execution).
    pub runs: PathBuf,
    /// `Compute.AllowListedLocalPaths=<runs>:rw`, for `-c`.
    pub allow: String,
    /// The module, for [`record_run_job`].
    pub module: Arc<String>,
}

impl Recording {
    /// Makes `dir/runs`.
    pub fn new(dir: &Path) -> Recording {
        let runs = dir.join("runs");
        std::fs::create_dir(&runs).expect("the runs directory");
        Recording {
            allow: format!("Compute.AllowListedLocalPaths={}:rw", runs.display()),
            module: Arc::new(
                base64::engine::general_purpose::STANDARD.encode(super::wasm_binary("record_run")),
            ),
            runs,
        }
    }
}

/// A batch job named `name` that runs `record_run.wasm` (given base64-encoded, inline) with
/// `runs` mounted read-write.
pub fn record_run_job(name: &str, module: &str, runs: &Path) -> Job {
    parse_job_spec(&format!(
        r#"
Name: {name}
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: /record_run.wasm
    InputSources:
      - Target: /record_run.wasm
        Source: {{Type: inline, Params: {{URL: "data:application/wasm;base64,{module}"}}}}
      - Target: /runs
        Source: {{Type: local, Params: {{SourcePath: "{}", ReadWrite: true}}}}
"#,
        runs.display()
    ))
    .expect("the record_run job spec")
}

/// Waits until every job in `pending` is in a terminal state and returns the states; fails
/// the test once `started` is `limit` behind, or when an acknowledged job is gone.
pub async fn settle(
    client: &ApiClient,
    mut pending: BTreeSet<JobId>,
    started: Instant,
    limit: Duration,
) -> BTreeMap<JobId, State<JobStateType>> {
    let mut states = BTreeMap::new();
    while !pending.is_empty() {
        assert!(
            started.elapsed() < limit,
            "{} acknowledged jobs not terminal after {limit:?}, e.g. {:?}",
            pending.len(),
            pending.iter().take(5).collect::<Vec<_>>()
        );
        let mut still = BTreeSet::new();
        for id in &pending {
            match client.get_job(id.as_str(), "").await {
                Ok(found) if found.job.state.state_type.is_terminal() => {
                    states.insert(id.clone(), found.job.state);
                }
                Ok(_) => {
                    still.insert(id.clone());
                }
                Err(e) => panic!("acknowledged job {id} is gone: {e}"),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    states
}

/// How many times each execution ran: one file per execution, one byte per run.
pub fn recorded(runs: &Path) -> BTreeMap<String, u64> {
    let mut runs_of = BTreeMap::new();
    for entry in std::fs::read_dir(runs).expect("the runs directory") {
        let entry = entry.expect("an entry");
        let size = entry.metadata().expect("metadata").len();
        runs_of.insert(entry.file_name().to_string_lossy().into_owned(), size);
    }
    runs_of
}
