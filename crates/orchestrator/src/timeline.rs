//! The last hour of the cluster's figures, sampled at a fixed interval, for the web UI's
//! charts: jobs completed per second, evaluations queued, executions running, nodes connected,
//! submit → completed p50/p99, and each node's capacity use.
//!
//! [`Orchestrator::record_timeline`] samples until the orchestrator is dropped; the samples
//! are kept in memory only (a restart starts a fresh hour).

use crate::Orchestrator;
use crate::metrics::Figures;
use bacalhau_models::{JobStateType, NodeId, Timestamp};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How far back the timeline reaches.
pub const SPAN: Duration = Duration::from_secs(3600);

/// Nodes whose capacity use is kept: beyond this many, only the cluster's figures are (a
/// node's hour of samples costs ~30 KiB at the default interval).
pub const MAX_NODES_KEPT: usize = 1000;

/// Job durations kept between two samples for their percentiles; beyond this many, the
/// first ones stand for the rest.
const MAX_DURATIONS: usize = 65_536;

/// The cluster at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When it was taken (nanoseconds since the Unix epoch).
    pub time: Timestamp,
    /// Jobs that reached Completed since the previous sample, per second.
    pub completed_per_second: f64,
    /// Evaluations waiting for a scheduler worker.
    pub queue_depth: u64,
    /// Executions running on connected nodes, as they last reported.
    pub running: u64,
    /// Nodes whose connection is up.
    pub nodes_connected: u64,
    /// Median submit → terminal time of the jobs that ended since the previous sample.
    pub p50: Option<Duration>,
    /// 99th percentile of the same.
    pub p99: Option<Duration>,
}

/// One node's capacity use at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeSample {
    /// When it was taken.
    pub time: Timestamp,
    /// Share of the node's CPU held by executions, 0–1.
    pub cpu: f32,
    /// Share of its memory held by executions, 0–1.
    pub memory: f32,
    /// Executions running on it.
    pub running: u32,
}

/// The samples of the last hour.
#[derive(Debug, Default)]
pub struct Timeline {
    cluster: Mutex<VecDeque<Sample>>,
    nodes: Mutex<HashMap<NodeId, VecDeque<NodeSample>>>,
    /// Submit → terminal times of jobs ended since the last sample, in seconds.
    durations: Mutex<Vec<f64>>,
    /// Completed jobs at the last sample.
    completed: Mutex<Option<(Timestamp, u64)>>,
}

impl Timeline {
    /// The cluster's samples, oldest first.
    pub fn cluster(&self) -> Vec<Sample> {
        lock(&self.cluster).iter().cloned().collect()
    }

    /// A node's samples, oldest first (empty for a node not sampled).
    pub fn node(&self, id: &NodeId) -> Vec<NodeSample> {
        lock(&self.nodes)
            .get(id)
            .map(|samples| samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Notes a job's submit → terminal time for the next sample's percentiles.
    pub(crate) fn job_ended(&self, seconds: f64) {
        let mut durations = lock(&self.durations);
        if durations.len() < MAX_DURATIONS {
            durations.push(seconds);
        }
    }

    /// Takes a sample of `figures` at `now`, dropping samples older than [`SPAN`]; `nodes`
    /// (at most [`MAX_NODES_KEPT`]) are the connected nodes sampled, and the samples of any
    /// other node go.
    fn record(&self, now: Timestamp, figures: &Figures, nodes: Vec<(NodeId, NodeSample)>) {
        let completed = figures.jobs_in(JobStateType::Completed);
        let completed_per_second = {
            let mut previous = lock(&self.completed);
            let rate = match *previous {
                Some((then, before)) if now > then => {
                    completed.saturating_sub(before) as f64
                        / Duration::from_nanos(u64::try_from(now - then).unwrap_or(1)).as_secs_f64()
                }
                _ => 0.0,
            };
            *previous = Some((now, completed));
            rate
        };
        let mut durations = std::mem::take(&mut *lock(&self.durations));
        durations.sort_by(f64::total_cmp);
        let percentile = |q: f64| {
            let last = durations.len().checked_sub(1)?;
            let index = ((last as f64) * q).round() as usize;
            durations
                .get(index)
                .map(|s| Duration::from_secs_f64(s.max(0.0)))
        };
        let sample = Sample {
            time: now,
            completed_per_second,
            queue_depth: figures.evaluations_queued,
            running: figures.running_executions,
            nodes_connected: figures.nodes_connected(),
            p50: percentile(0.5),
            p99: percentile(0.99),
        };
        let oldest = now.saturating_sub(i64::try_from(SPAN.as_nanos()).unwrap_or(i64::MAX));
        let mut cluster = lock(&self.cluster);
        cluster.push_back(sample);
        while cluster.front().is_some_and(|s| s.time < oldest) {
            cluster.pop_front();
        }
        drop(cluster);
        // `nodes` holds up to MAX_NODES_KEPT: a set, or the check would be quadratic.
        let sampled: HashSet<&NodeId> = nodes.iter().map(|(id, _)| id).collect();
        let mut kept = lock(&self.nodes);
        kept.retain(|id, _| sampled.contains(id));
        drop(sampled);
        for (id, sample) in nodes {
            let samples = kept.entry(id).or_default();
            samples.push_back(sample);
            while samples.front().is_some_and(|s| s.time < oldest) {
                samples.pop_front();
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A sample is whole or not there; a panic mid-update leaves nothing worse than a gap.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The share of `total` that `available` leaves held, 0–1.
fn used_share(total: f64, available: f64) -> f32 {
    if total <= 0.0 {
        0.0
    } else {
        ((total - available) / total).clamp(0.0, 1.0) as f32
    }
}

impl Orchestrator {
    /// Samples the cluster every `interval` while the orchestrator lives.
    pub fn record_timeline(
        orchestrator: &Arc<Orchestrator>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let watched = Arc::downgrade(orchestrator);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(orchestrator) = watched.upgrade() else {
                    return;
                };
                // Reading every active job and node is blocking work.
                let sampled = tokio::task::spawn_blocking(move || orchestrator.sample()).await;
                if let Ok(Err(e)) = sampled {
                    tracing::warn!(error = %e, "cannot sample the cluster's figures");
                }
            }
        })
    }

    fn sample(&self) -> Result<(), crate::OrchestratorError> {
        let figures = self.figures()?;
        let now = self.clock().now();
        let nodes = self
            .node_manager()
            .sample_connected(MAX_NODES_KEPT, |info| NodeSample {
                time: now,
                cpu: used_share(info.max_capacity.cpu, info.available_capacity.cpu),
                memory: used_share(
                    info.max_capacity.memory as f64,
                    info.available_capacity.memory as f64,
                ),
                running: u32::try_from(info.running_executions).unwrap_or(u32::MAX),
            });
        self.timeline().record(now, &figures, nodes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(completed: u64, queued: u64) -> Figures {
        Figures {
            jobs: vec![("batch".into(), JobStateType::Completed, completed)],
            evaluations_queued: queued,
            nodes: vec![("APPROVED".into(), "CONNECTED".into(), 2)],
            running_executions: 3,
            ..Default::default()
        }
    }

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn samples_give_rates_and_percentiles_and_keep_one_hour() {
        let timeline = Timeline::default();
        timeline.record(0, &figures(10, 0), Vec::new());
        for seconds in [0.010, 0.020, 0.030, 0.040, 1.0] {
            timeline.job_ended(seconds);
        }
        timeline.record(5 * SECOND, &figures(60, 7), Vec::new());
        let samples = timeline.cluster();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].completed_per_second, 0.0);
        assert_eq!(samples[0].p50, None);
        assert_eq!(samples[1].completed_per_second, 10.0);
        assert_eq!(samples[1].queue_depth, 7);
        assert_eq!(samples[1].running, 3);
        assert_eq!(samples[1].nodes_connected, 2);
        assert_eq!(samples[1].p50, Some(Duration::from_millis(30)));
        assert_eq!(samples[1].p99, Some(Duration::from_secs(1)));
        // An hour later the first samples are gone.
        timeline.record(3_606 * SECOND, &figures(60, 0), Vec::new());
        let samples = timeline.cluster();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].time, 3_606 * SECOND);
    }

    #[test]
    fn node_samples_follow_the_connected_nodes() {
        let timeline = Timeline::default();
        let node = |id: &str, cpu: f32| {
            (
                NodeId::from(id),
                NodeSample {
                    time: 0,
                    cpu,
                    memory: 0.5,
                    running: 1,
                },
            )
        };
        timeline.record(0, &figures(0, 0), vec![node("a", 0.25), node("b", 1.0)]);
        timeline.record(SECOND, &figures(0, 0), vec![node("a", 0.5)]);
        assert_eq!(timeline.node(&NodeId::from("a")).len(), 2);
        assert!(timeline.node(&NodeId::from("b")).is_empty());
        assert_eq!(used_share(4.0, 1.0), 0.75);
        assert_eq!(used_share(0.0, 0.0), 0.0);
    }
}
