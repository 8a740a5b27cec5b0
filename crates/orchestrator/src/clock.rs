//! The orchestrator's one clock. Every timestamp it writes (submissions, plans, node events,
//! deadlines) and every wait it makes (delayed evaluations, the node-loss grace period) reads
//! this clock, handed down from [`crate::endpoint::Orchestrator::start_with_clock`], instead of
//! each part reading the system's.
//!
//! [`Clock::system`] is wall-clock time. [`Clock::following_tokio`] starts at a given time and
//! advances with tokio's timer, so a test on a paused runtime (`start_paused`) moves time by
//! sleeping on the timer, which returns at once: deadlines and delays are tested without
//! waiting.

use bacalhau_models::{Timestamp, time};
use std::time::SystemTime;

/// Where "now" comes from.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Source);

#[derive(Debug, Clone, Copy)]
enum Source {
    System,
    Tokio {
        at_start: Timestamp,
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// Wall-clock time.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// `at_start` now, then advancing with tokio's timer (paused in tests).
    pub fn following_tokio(at_start: Timestamp) -> Self {
        Self(Source::Tokio {
            at_start,
            start: tokio::time::Instant::now(),
        })
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now(&self) -> Timestamp {
        match self.0 {
            Source::System => time::to_nanos(SystemTime::now()),
            Source::Tokio { at_start, start } => {
                let elapsed = start.elapsed().as_nanos().min(i64::MAX as u128) as i64;
                at_start.saturating_add(elapsed)
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_with_the_paused_timer() {
        let clock = Clock::following_tokio(1_000);
        assert_eq!(clock.now(), 1_000);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), 1_000 + 3_600_000_000_000);
    }
}
