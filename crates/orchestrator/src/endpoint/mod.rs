//! The orchestrator's front door: [`Orchestrator`], everything the API (and the web UI) can
//! ask of it, split by concern.
//!
//! This file holds the type, its configuration, `start`, `shutdown` and the accessors of its
//! parts; each concern adds its own `impl Orchestrator` block: `commands.rs` (submit, dry run,
//! check, diff, stop, rerun), `queries.rs` (jobs, versions, executions, history, results, the
//! audit log, store figures), `nodes.rs` (list, look up, approve/reject/delete, pin) and
//! `logs.rs` (an execution's log stream).

mod commands;
mod logs;
mod nodes;
mod queries;
mod retention;

pub use commands::{Rerun, Submitted};
pub use queries::{DEFAULT_PAGE, HistoryQuery, JobQuery, JobVersions};

use crate::broker::EvaluationBroker;
use crate::clock::Clock;
use crate::error::OrchestratorError;
use crate::nodes::{NodeManager, NodeManagerConfig};
use crate::store::replication::Replicate;
use crate::store::{Store, StoreError};
use crate::worker;
use bacalhau_models::job::JobDefaults;
use std::path::PathBuf;
use std::sync::Arc;

/// How the orchestrator is set up.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// Where the store file lives.
    pub data_dir: PathBuf,
    /// Defaults applied to submitted jobs.
    pub job_defaults: JobDefaults,
    /// How many scheduler workers run at once.
    pub workers: usize,
    /// How compute nodes are admitted and watched.
    pub nodes: NodeManagerConfig,
    /// The orchestrator cluster this one is a member of (`None`: it stands alone).
    pub cluster: Option<ClusterLink>,
}

/// How an orchestrator takes part in a cluster of orchestrators (`bacalhau-cluster`): its
/// store's writes are committed by the group, and it schedules and serves compute nodes only
/// while `leadership` says it leads.
#[derive(Clone)]
pub struct ClusterLink {
    /// Commits the store's writes on every member.
    pub group: Arc<dyn Replicate>,
    /// Whether this member leads now.
    pub leadership: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("leading", &*self.leadership.borrow())
            .finish_non_exhaustive()
    }
}

/// The store's file name in the orchestrator's data directory.
/// The store file's name in the orchestrator's data dir.
pub const STORE_FILE: &str = "orchestrator.redb";

/// The orchestrator: a store, a broker and the scheduler workers behind them.
pub struct Orchestrator {
    store: Store,
    broker: Arc<EvaluationBroker>,
    nodes: Arc<NodeManager>,
    config: OrchestratorConfig,
    workers: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    metrics: Arc<crate::metrics::Metrics>,
    timeline: Arc<crate::timeline::Timeline>,
}

fn not_found(kind: &'static str, id: impl Into<String>) -> OrchestratorError {
    OrchestratorError::NotFound {
        kind,
        id: id.into(),
    }
}

impl Orchestrator {
    /// Opens the store under `config.data_dir`, requeues unfinished evaluations and starts the
    /// scheduler workers.
    pub async fn start(config: OrchestratorConfig) -> Result<Self, OrchestratorError> {
        Self::start_with_clock(config, Clock::system()).await
    }

    /// [`Orchestrator::start`] with every timestamp and wait read from `clock` (tests pass a
    /// paused one).
    pub async fn start_with_clock(
        config: OrchestratorConfig,
        clock: Clock,
    ) -> Result<Self, OrchestratorError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StoreError::Db(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let path = config.data_dir.join(STORE_FILE);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let timeline = Arc::new(crate::timeline::Timeline::default());
        let store = Store::open_timed(
            &path,
            config.cluster.as_ref().map(|link| Arc::clone(&link.group)),
            Some(metrics.store_commit.clone()),
        )?;
        let broker = Arc::new(EvaluationBroker::with_clock(clock));
        let nodes = Arc::new(NodeManager::new(
            store.clone(),
            Arc::clone(&broker),
            config.nodes.clone(),
            Arc::clone(&metrics),
            Arc::clone(&timeline),
        )?);
        if config.cluster.is_none() {
            let pending = store.read()?.pending_evaluations()?;
            tracing::info!(
                n_evaluations = pending.len(),
                "requeued unfinished evaluations"
            );
            for evaluation in pending {
                broker.enqueue(evaluation);
            }
        } else {
            // A member schedules nothing until it leads (`follow_leadership`).
            broker.pause();
            nodes.set_leading(false)?;
        }
        let mut workers: Vec<_> = (0..config.workers.max(1))
            .map(|i| {
                tokio::spawn(worker::run(
                    format!("scheduler-worker-{i}"),
                    store.clone(),
                    Arc::clone(&broker),
                    Arc::clone(&nodes),
                    Arc::clone(&metrics),
                    Arc::clone(&timeline),
                ))
            })
            .collect();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        workers.push(tokio::spawn(
            Arc::clone(&nodes).run_heartbeat_checker(stopped.clone()),
        ));
        if let Some(link) = &config.cluster {
            workers.push(tokio::spawn(follow_leadership(
                link.clone(),
                store.clone(),
                Arc::clone(&broker),
                Arc::clone(&nodes),
                stopped,
            )));
        }
        Ok(Self {
            store,
            broker,
            nodes,
            config,
            workers,
            stop,
            metrics,
            timeline,
        })
    }

    /// Stops the workers and waits for them; pending evaluations stay stored for next time.
    pub async fn shutdown(self) {
        self.broker.close();
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
    }

    /// The clock every timestamp is read from.
    pub fn clock(&self) -> Clock {
        self.broker.clock()
    }

    /// The directory the store lives in.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// The store, for components that share it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The broker, for components that create evaluations (node joins, execution updates).
    pub fn broker(&self) -> &Arc<EvaluationBroker> {
        &self.broker
    }

    /// The orchestrator's metric families (counters and histograms are current; call
    /// [`Orchestrator::refresh_metrics`] before reading the gauges).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The last hour of samples (empty until [`Orchestrator::record_timeline`] runs).
    pub fn timeline(&self) -> &crate::timeline::Timeline {
        &self.timeline
    }

    /// The node manager, which serves node connections.
    pub fn node_manager(&self) -> &Arc<NodeManager> {
        &self.nodes
    }
}

/// Takes up scheduling when this member becomes its cluster's leader, as a restart does:
/// once it has applied everything committed before (the group's `ready`), the nodes are
/// reloaded from the store and the stored evaluations requeued; gives it up when it stops
/// leading (nodes are dropped, so they dial the new leader).
async fn follow_leadership(
    mut link: ClusterLink,
    store: Store,
    broker: Arc<EvaluationBroker>,
    nodes: Arc<NodeManager>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut leading = false;
    loop {
        let wants = *link.leadership.borrow_and_update();
        if wants != leading {
            let taken = if wants {
                take_lead(&link, &store, &broker, &nodes).await
            } else {
                broker.pause();
                nodes.set_leading(false).map_err(|e| e.to_string())
            };
            match taken {
                Ok(()) => {
                    leading = wants;
                    tracing::info!(leading, "orchestrator cluster leadership changed");
                }
                Err(e) => tracing::error!(error = %e, "cannot follow a leadership change"),
            }
        }
        tokio::select! {
            changed = link.leadership.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
            // A failed change is tried again.
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if wants != leading => {}
        }
    }
}

async fn take_lead(
    link: &ClusterLink,
    store: &Store,
    broker: &EvaluationBroker,
    nodes: &NodeManager,
) -> Result<(), String> {
    let group = Arc::clone(&link.group);
    tokio::task::spawn_blocking(move || group.ready())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    nodes.set_leading(true).map_err(|e| e.to_string())?;
    let pending = store
        .read()
        .and_then(|r| r.pending_evaluations())
        .map_err(|e| e.to_string())?;
    tracing::info!(
        n_evaluations = pending.len(),
        "leading the cluster: requeued unfinished evaluations"
    );
    broker.resume(pending);
    Ok(())
}

#[cfg(test)]
mod tests;
