//! Retention (ours: `Orchestrator.JobRetention`, off by default): the records of jobs that
//! ended long enough ago are dropped, oldest first, while their history stays, so the
//! hash-chained audit log keeps every event (each drop is one more event). The file does not
//! shrink by itself; `Store::compact` gives the space back (`Orchestrator.CompactOnStart`).

use super::Orchestrator;
use crate::error::OrchestratorError;
use crate::scheduler::job_event;
use bacalhau_models::history::Topic;
use bacalhau_models::{JobId, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Jobs dropped per store transaction.
const BATCH: usize = 500;
/// Jobs read per page while looking for ones to drop.
const PAGE: usize = 2_000;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Orchestrator {
    /// Drops the records of every job that ended more than `age` ago; answers how many.
    pub async fn drop_ended_jobs(&self, age: Duration) -> Result<usize, OrchestratorError> {
        let cutoff = self.clock().now().saturating_sub(nanos(age));
        let mut dropped = 0;
        let mut after: Option<(i64, String)> = None;
        loop {
            let (candidates, next) = self.expired(cutoff, after.as_ref())?;
            for batch in candidates.chunks(BATCH) {
                dropped += self.drop_jobs(batch.to_vec(), cutoff, age).await?;
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(dropped),
            }
        }
    }

    /// One page of the creation index after `after`: the jobs in it that ended before
    /// `cutoff`, and where the next page starts (`None`: no job created before `cutoff` is
    /// left to look at).
    #[allow(clippy::type_complexity)]
    fn expired(
        &self,
        cutoff: Timestamp,
        after: Option<&(i64, String)>,
    ) -> Result<(Vec<JobId>, Option<(i64, String)>), OrchestratorError> {
        let reader = self.store.read()?;
        let page =
            reader.job_ids_by_create_time(false, after.map(|(t, id)| (*t, id.as_str())), PAGE)?;
        let mut expired = Vec::new();
        let mut last = None;
        for (created, id) in &page {
            // Created after the cutoff: it cannot have ended before it.
            if *created >= cutoff {
                return Ok((expired, None));
            }
            if let Some(job) = reader.job(id)?
                && job.state.state_type.is_terminal()
                && job.modify_time < cutoff
            {
                expired.push(id.clone());
            }
            last = Some((*created, id.to_string()));
        }
        let next = last.filter(|_| page.len() == PAGE);
        Ok((expired, next))
    }

    async fn drop_jobs(
        &self,
        ids: Vec<JobId>,
        cutoff: Timestamp,
        age: Duration,
    ) -> Result<usize, OrchestratorError> {
        let now = self.clock().now();
        let message = format!(
            "Job record dropped: ended more than {} s ago (Orchestrator.JobRetention); its history stays in the audit log",
            age.as_secs()
        );
        self.store
            .write(move |w| {
                let mut dropped = 0;
                for id in &ids {
                    // Read again in this transaction: a rerun may have brought it back.
                    let Some(job) = w.job(id)? else { continue };
                    if !job.state.state_type.is_terminal() || job.modify_time >= cutoff {
                        continue;
                    }
                    w.add_history(job_event(
                        &job,
                        Topic::Retention,
                        message.clone(),
                        BTreeMap::new(),
                        now,
                    ))?;
                    if w.delete_job(id)? {
                        dropped += 1;
                    }
                }
                Ok::<_, OrchestratorError>(dropped)
            })
            .await
    }

    /// Drops ended jobs older than `age` every `age / 4` (from 1 s to 10 min) while the
    /// orchestrator lives and leads.
    pub fn keep_jobs_for(
        orchestrator: &Arc<Orchestrator>,
        age: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let watched = Arc::downgrade(orchestrator);
        let every = (age / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(orchestrator) = watched.upgrade() else {
                    return;
                };
                if !orchestrator.nodes.is_leading() {
                    continue;
                }
                match orchestrator.drop_ended_jobs(age).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "dropped the records of ended jobs"),
                    Err(e) => tracing::warn!(error = %e, "cannot drop the records of ended jobs"),
                }
            }
        })
    }
}
