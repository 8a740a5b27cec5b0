//! Who waits for news of a job: a caller watches a job before reading it, and the store wakes
//! the watchers of every job that got a history event once the write that added it is
//! durable. A watch is a hint to read again, never data: the reader reads the store.

use bacalhau_models::JobId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The jobs being watched, each with a counter bumped at every committed write that added
/// one of its events.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    jobs: Mutex<HashMap<JobId, watch::Sender<u64>>>,
    /// How many jobs are watched, so a write wakes no one without taking the lock.
    watched: AtomicUsize,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, watch::Sender<u64>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts watching `job`: later committed events of it wake [`JobWatch::changed`].
    pub(crate) fn watch(self: &Arc<Self>, job: &JobId) -> JobWatch {
        let mut jobs = self.lock();
        let receiver = match jobs.get(job) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                jobs.insert(job.clone(), sender);
                self.watched.store(jobs.len(), Ordering::Release);
                receiver
            }
        };
        JobWatch {
            watchers: Arc::clone(self),
            job: job.clone(),
            receiver,
        }
    }

    /// Wakes the watchers of `jobs`, whose events a write just made durable.
    pub(crate) fn wake(&self, jobs: &[JobId]) {
        if jobs.is_empty() || self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        let watched = self.lock();
        for job in jobs {
            if let Some(sender) = watched.get(job) {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

/// One caller's watch of a job; dropped, it stops watching.
#[derive(Debug)]
pub struct JobWatch {
    watchers: Arc<Watchers>,
    job: JobId,
    receiver: watch::Receiver<u64>,
}

impl JobWatch {
    /// Resolves once an event of the job has been committed since the watch began or since
    /// the last call.
    pub async fn changed(&mut self) {
        // The sender lives as long as any watch of the job does, this one included.
        let _ = self.receiver.changed().await;
    }
}

impl JobWatch {
    /// Whether an event of the job was committed since the watch began or since the last
    /// [`JobWatch::changed`].
    pub fn has_changed(&self) -> bool {
        self.receiver.has_changed().unwrap_or(false)
    }
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        let mut jobs = self.watchers.lock();
        // Counted under the lock, so no watch of the job begins meanwhile.
        if jobs
            .get(&self.job)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            jobs.remove(&self.job);
            self.watchers.watched.store(jobs.len(), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_reaches_the_watchers_of_that_job_only_and_a_dropped_watch_is_forgotten() {
        let watchers = Arc::new(Watchers::default());
        let (a, b) = (JobId::from("j-a"), JobId::from("j-b"));
        let mut first = watchers.watch(&a);
        let mut second = watchers.watch(&a);
        let other = watchers.watch(&b);
        watchers.wake(std::slice::from_ref(&a));
        tokio::time::timeout(Duration::from_secs(5), first.changed())
            .await
            .expect("the first watcher is woken");
        tokio::time::timeout(Duration::from_secs(5), second.changed())
            .await
            .expect("the second watcher is woken");
        assert!(
            !other.has_changed(),
            "a wake of another job leaves this one asleep"
        );
        drop(first);
        assert_eq!(watchers.lock().len(), 2, "a's second watch still holds it");
        drop(second);
        drop(other);
        assert!(watchers.lock().is_empty());
        assert_eq!(watchers.watched.load(Ordering::Acquire), 0);
    }
}
