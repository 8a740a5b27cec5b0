//! A compute node's figures: counters and histograms its runner updates as executions pass
//! through, and gauges read from its queue and capacity when asked
//! ([`ComputeNode::refresh_metrics`](crate::ComputeNode::refresh_metrics)).
//!
//! The families are `prometheus-client` types; whoever serves them registers them once
//! ([`ComputeMetrics::register`]), under a label naming the node when one process runs several.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// An execution's end state, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// Upstream's execution state name (`Completed`, `Failed`, `Cancelled`).
    pub state: String,
}

/// An engine, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngineLabel {
    /// `docker`, `wasm` or `noop`.
    pub engine: String,
}

/// A resource, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    /// `cpu` (millicores), `memory`, `disk` (bytes) or `gpu` (devices).
    pub resource: String,
}

/// How an image pull ended, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PullLabel {
    /// `ok` or `failed`.
    pub result: String,
}

/// Where input bytes came from, as labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InputLabels {
    /// The input source type (`ipfs`, `s3`, `urlDownload`, `inline`, `local`).
    pub source: String,
    /// `fetched` (over the network) or `local` (already on the node).
    pub origin: String,
}

/// A publisher, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublisherLabel {
    /// `local`, `s3`, `ipfs` or `noop`.
    pub publisher: String,
}

/// Every figure of one compute node. Cheap to clone: each family is shared.
#[derive(Debug, Clone)]
pub struct ComputeMetrics {
    /// Executions that ended on the node, by state.
    pub executions_ended: Family<StateLabel, Counter>,
    /// Executions running now (read when asked).
    pub running: Gauge,
    /// Executions waiting for capacity (read when asked).
    pub queued: Gauge,
    /// Capacity the node offers, by resource (read when asked).
    pub capacity_total: Family<ResourceLabel, Gauge>,
    /// Capacity held by running executions, by resource (read when asked).
    pub capacity_used: Family<ResourceLabel, Gauge>,
    /// How long the engine ran an execution, by engine.
    pub run_seconds: Family<EngineLabel, Histogram>,
    /// Image pulls, by result.
    pub image_pulls: Family<PullLabel, Counter>,
    /// Input bytes placed for executions, by source type and origin.
    pub input_bytes: Family<InputLabels, Counter>,
    /// Result bytes published, by publisher.
    pub published_bytes: Family<PublisherLabel, Counter>,
}

impl Default for ComputeMetrics {
    fn default() -> Self {
        Self {
            executions_ended: Family::default(),
            running: Gauge::default(),
            queued: Gauge::default(),
            capacity_total: Family::default(),
            capacity_used: Family::default(),
            // 1 ms to ~9 h, doubling.
            run_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 25))
            }),
            image_pulls: Family::default(),
            input_bytes: Family::default(),
            published_bytes: Family::default(),
        }
    }
}

impl ComputeMetrics {
    /// Adds every family to `registry` (under the caller's prefix and labels).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "compute_executions_ended",
            "Executions that ended on the node, by state",
            self.executions_ended.clone(),
        );
        registry.register(
            "compute_executions_running",
            "Executions running now",
            self.running.clone(),
        );
        registry.register(
            "compute_executions_queued",
            "Executions waiting for capacity",
            self.queued.clone(),
        );
        registry.register(
            "compute_capacity",
            "Capacity the node offers: cpu in millicores, memory and disk in bytes, gpu in devices",
            self.capacity_total.clone(),
        );
        registry.register(
            "compute_capacity_used",
            "Capacity held by running executions, in the units of compute_capacity",
            self.capacity_used.clone(),
        );
        registry.register_with_unit(
            "compute_run",
            "Time the engine ran an execution, by engine",
            Unit::Seconds,
            self.run_seconds.clone(),
        );
        registry.register(
            "compute_image_pulls",
            "Docker image pulls, by result",
            self.image_pulls.clone(),
        );
        registry.register_with_unit(
            "compute_input",
            "Input bytes placed for executions, fetched over the network or already local",
            Unit::Bytes,
            self.input_bytes.clone(),
        );
        registry.register_with_unit(
            "compute_published",
            "Result bytes published, by publisher",
            Unit::Bytes,
            self.published_bytes.clone(),
        );
    }

    /// Sets the capacity gauges from the node's totals and what is free.
    pub(crate) fn set_capacity(
        &self,
        total: &bacalhau_models::Resources,
        available: &bacalhau_models::Resources,
    ) {
        let figures = |r: &bacalhau_models::Resources| {
            [
                ("cpu", (r.cpu * 1000.0).round() as i64),
                ("memory", i64::try_from(r.memory).unwrap_or(i64::MAX)),
                ("disk", i64::try_from(r.disk).unwrap_or(i64::MAX)),
                ("gpu", i64::try_from(r.gpu).unwrap_or(i64::MAX)),
            ]
        };
        for ((resource, offered), (_, free)) in figures(total).into_iter().zip(figures(available)) {
            let label = ResourceLabel {
                resource: resource.to_string(),
            };
            self.capacity_total.get_or_create(&label).set(offered);
            self.capacity_used
                .get_or_create(&label)
                .set(offered.saturating_sub(free).max(0));
        }
    }
}
