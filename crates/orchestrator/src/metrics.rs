//! The orchestrator's figures: counters and histograms its parts update as work passes
//! through, and gauges read from its state when they are asked for ([`Orchestrator::metrics`]).
//!
//! The families are `prometheus-client` types; whoever serves them registers them once
//! ([`Metrics::register`]). Nothing here does I/O; [`Figures`] is the same state as plain
//! numbers, for the web UI's charts and `bacalhau agent metrics`.

use crate::Orchestrator;
use bacalhau_models::JobStateType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// A job type and state, as labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `batch`, `service`, `ops` or `daemon`.
    pub r#type: String,
    /// Upstream's job state name.
    pub state: String,
}

/// A job type, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// `batch`, `service`, `ops` or `daemon`.
    pub r#type: String,
}

/// A node's membership and connection, as labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// `PENDING`, `APPROVED` or `REJECTED`.
    pub membership: String,
    /// `CONNECTED`, `DISCONNECTED` or `LOST`.
    pub connection: String,
}

/// One node, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    /// The node's ID.
    pub node: String,
}

/// Latency buckets from 100 µs to ~100 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 21)
}

/// Every figure of one orchestrator. Cheap to clone: each family is shared.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Jobs stored, by type and state (read from the store when asked).
    pub jobs: Family<JobLabels, Gauge>,
    /// Jobs accepted by `submit`, by type.
    pub submissions: Family<TypeLabel, Counter>,
    /// Jobs that reached a terminal state through a plan, by type and state.
    pub jobs_ended: Family<JobLabels, Counter>,
    /// Evaluations waiting in the broker (read when asked).
    pub evaluations_queued: Gauge,
    /// Evaluations a scheduler worker holds (read when asked).
    pub evaluations_in_flight: Gauge,
    /// Evaluations planned and applied.
    pub evaluations_processed: Counter,
    /// How long an evaluation waited in the broker before a worker took it.
    pub queue_wait: Histogram,
    /// From an evaluation's creation (a submission, a node's report) to its plan applied.
    pub scheduling_latency: Histogram,
    /// How long applying a plan (one store transaction) took.
    pub plan_apply: Histogram,
    /// From submission to the job's terminal state.
    pub job_duration: Histogram,
    /// Compute nodes, by membership and connection (read when asked).
    pub nodes: Family<NodeLabels, Gauge>,
    /// Messages waiting for a node's acknowledgement, per node (read when asked).
    pub outbox_depth: Family<NodeLabel, Gauge>,
    /// Node connections opened (a node's first and every later one).
    pub node_connections: Counter,
    /// Messages sent again to a node after it reconnected.
    pub replays: Counter,
    /// The store's size on disk, its file and redo log (read when asked).
    pub store_bytes: Gauge,
    /// How long a group of store writes took to commit, fsync included.
    pub store_commit: Histogram,
    /// Result cache lookups at submission, by result (`hit`, `miss`).
    pub cache_lookups: Family<CacheLabel, Counter>,
    /// Compute time the cache's hits saved: each served run's own duration.
    pub cache_seconds_saved: Counter<f64, std::sync::atomic::AtomicU64>,
}

/// A cache lookup's result, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    /// `hit` or `miss`.
    pub result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            jobs: Family::default(),
            submissions: Family::default(),
            jobs_ended: Family::default(),
            evaluations_queued: Gauge::default(),
            evaluations_in_flight: Gauge::default(),
            evaluations_processed: Counter::default(),
            queue_wait: Histogram::new(latency_buckets()),
            scheduling_latency: Histogram::new(latency_buckets()),
            plan_apply: Histogram::new(latency_buckets()),
            job_duration: Histogram::new(latency_buckets()),
            nodes: Family::default(),
            outbox_depth: Family::default(),
            node_connections: Counter::default(),
            replays: Counter::default(),
            store_bytes: Gauge::default(),
            store_commit: Histogram::new(latency_buckets()),
            cache_lookups: Family::default(),
            cache_seconds_saved: Counter::default(),
        }
    }
}

impl Metrics {
    /// Adds every family to `registry` (under the caller's prefix, e.g. `bacalhau`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("jobs", "Jobs stored, by type and state", self.jobs.clone());
        registry.register(
            "job_submissions",
            "Jobs accepted, by type",
            self.submissions.clone(),
        );
        registry.register(
            "jobs_ended",
            "Jobs that reached a terminal state since the orchestrator started",
            self.jobs_ended.clone(),
        );
        registry.register(
            "evaluations_queued",
            "Evaluations waiting for a scheduler worker",
            self.evaluations_queued.clone(),
        );
        registry.register(
            "evaluations_in_flight",
            "Evaluations a scheduler worker holds",
            self.evaluations_in_flight.clone(),
        );
        registry.register(
            "evaluations_processed",
            "Evaluations planned and applied",
            self.evaluations_processed.clone(),
        );
        registry.register_with_unit(
            "evaluation_queue_wait",
            "Time an evaluation waited for a worker",
            Unit::Seconds,
            self.queue_wait.clone(),
        );
        registry.register_with_unit(
            "scheduling_latency",
            "From an evaluation's creation to its plan applied",
            Unit::Seconds,
            self.scheduling_latency.clone(),
        );
        registry.register_with_unit(
            "plan_apply",
            "Time to apply a plan in one store transaction",
            Unit::Seconds,
            self.plan_apply.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "From a job's submission to its terminal state",
            Unit::Seconds,
            self.job_duration.clone(),
        );
        registry.register(
            "nodes",
            "Compute nodes, by membership and connection",
            self.nodes.clone(),
        );
        registry.register(
            "node_outbox_depth",
            "Messages waiting for a node's acknowledgement",
            self.outbox_depth.clone(),
        );
        registry.register(
            "node_connections",
            "Node connections opened",
            self.node_connections.clone(),
        );
        registry.register(
            "node_replays",
            "Messages sent again to a node after it reconnected",
            self.replays.clone(),
        );
        registry.register_with_unit(
            "store_size",
            "The orchestrator store's size on disk: its file and its redo log",
            Unit::Bytes,
            self.store_bytes.clone(),
        );
        registry.register_with_unit(
            "store_commit",
            "Time to commit a group of store writes, fsync included",
            Unit::Seconds,
            self.store_commit.clone(),
        );
        registry.register(
            "cache_lookups",
            "Result cache lookups at submission, by result",
            self.cache_lookups.clone(),
        );
        registry.register_with_unit(
            "cache_saved",
            "Compute time saved by result cache hits (each served run's own duration)",
            Unit::Seconds,
            self.cache_seconds_saved.clone(),
        );
    }

    /// Counts a cache lookup: `served` holds the served run's duration in nanoseconds on a hit.
    pub fn count_cache_lookup(&self, served: Option<i64>) {
        let result = if served.is_some() { "hit" } else { "miss" };
        self.cache_lookups
            .get_or_create(&CacheLabel {
                result: result.into(),
            })
            .inc();
        if let Some(nanos) = served {
            self.cache_seconds_saved.inc_by(nanos.max(0) as f64 / 1e9);
        }
    }
}

/// Seconds between two clock readings in nanoseconds (0 if `later` is not later).
pub(crate) fn seconds_between(earlier: i64, later: i64) -> f64 {
    Duration::from_nanos(u64::try_from(later.saturating_sub(earlier)).unwrap_or(0)).as_secs_f64()
}

/// The orchestrator's state as plain numbers, for charts and terminals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Jobs stored, by type and state.
    pub jobs: Vec<(String, JobStateType, u64)>,
    /// Evaluations waiting for a worker.
    pub evaluations_queued: u64,
    /// Evaluations a worker holds.
    pub evaluations_in_flight: u64,
    /// Nodes by membership and connection.
    pub nodes: Vec<(String, String, u64)>,
    /// Executions running on connected nodes, as they last reported.
    pub running_executions: u64,
    /// Executions waiting on connected nodes, as they last reported.
    pub enqueued_executions: u64,
    /// The store's size on disk in bytes, its file and redo log.
    pub store_bytes: u64,
}

impl Figures {
    /// Jobs in `state`, of every type.
    pub fn jobs_in(&self, state: JobStateType) -> u64 {
        self.jobs
            .iter()
            .filter(|(_, s, _)| *s == state)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Nodes whose connection is up.
    pub fn nodes_connected(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|(_, connection, _)| connection == "CONNECTED")
            .map(|(_, _, n)| n)
            .sum()
    }
}

impl Orchestrator {
    /// Reads the orchestrator's state as plain numbers: job counts from the store (ended
    /// jobs from kept counts, active ones by reading them), the broker's queue, the nodes.
    pub fn figures(&self) -> Result<Figures, crate::OrchestratorError> {
        let reader = self.store().read()?;
        let mut jobs = std::collections::BTreeMap::<(String, JobStateType), u64>::new();
        for (job_type, state, count) in reader.ended_job_counts()? {
            *jobs.entry((job_type, state)).or_default() += count;
        }
        for (job_type, state) in reader.active_job_kinds()? {
            *jobs.entry((job_type, state)).or_default() += 1;
        }
        let mut nodes = std::collections::BTreeMap::<(String, String), u64>::new();
        let mut running_executions = 0;
        let mut enqueued_executions = 0;
        for view in self.node_manager().views(self.clock().now()).iter() {
            let connection = if view.lost {
                "LOST"
            } else {
                view.state.connection_state.status.as_str()
            };
            *nodes
                .entry((
                    view.state.membership.as_str().to_string(),
                    connection.to_string(),
                ))
                .or_default() += 1;
            if view.connected {
                let info = &view.state.info.compute_node_info;
                running_executions += info.running_executions;
                enqueued_executions += info.enqueued_executions;
            }
        }
        Ok(Figures {
            jobs: jobs.into_iter().map(|((t, s), n)| (t, s, n)).collect(),
            evaluations_queued: self.broker().len() as u64,
            evaluations_in_flight: self.broker().in_flight() as u64,
            nodes: nodes.into_iter().map(|((m, c), n)| (m, c, n)).collect(),
            running_executions,
            enqueued_executions,
            store_bytes: self.store_size()?,
        })
    }

    /// Sets the gauges from the orchestrator's state (before they are scraped).
    pub fn refresh_metrics(&self) -> Result<Figures, crate::OrchestratorError> {
        let figures = self.figures()?;
        let metrics = self.metrics();
        metrics.jobs.clear();
        for (job_type, state, count) in &figures.jobs {
            metrics
                .jobs
                .get_or_create(&JobLabels {
                    r#type: job_type.clone(),
                    state: state.as_str().to_string(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        metrics.nodes.clear();
        for (membership, connection, count) in &figures.nodes {
            metrics
                .nodes
                .get_or_create(&NodeLabels {
                    membership: membership.clone(),
                    connection: connection.clone(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let reader = self.store().read()?;
        metrics.outbox_depth.clear();
        // Views share each node's record: no copy per node.
        for view in self.node_manager().views(self.clock().now()).iter() {
            let depth = reader.outbox_len(view.id())?;
            metrics
                .outbox_depth
                .get_or_create(&NodeLabel {
                    node: view.id().to_string(),
                })
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        metrics
            .evaluations_queued
            .set(i64::try_from(figures.evaluations_queued).unwrap_or(i64::MAX));
        metrics
            .evaluations_in_flight
            .set(i64::try_from(figures.evaluations_in_flight).unwrap_or(i64::MAX));
        metrics
            .store_bytes
            .set(i64::try_from(figures.store_bytes).unwrap_or(i64::MAX));
        Ok(figures)
    }
}
