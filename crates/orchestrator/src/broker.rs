//! The evaluation broker: hands pending evaluations to workers, one at a time per job, by
//! priority, holding delayed ones until their time.
//!
//! The scheduler reads state rather than events, so several evaluations waiting for the same
//! job are one piece of work: they are coalesced, and the extras handed back for deletion.

use crate::clock::Clock;
use bacalhau_models::{Evaluation, EvaluationId, JobId, Timestamp};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Work for one worker: an evaluation and the evaluations of the same job it supersedes.
#[derive(Debug)]
pub struct Work {
    /// The evaluation to schedule.
    pub evaluation: Evaluation,
    /// Evaluations of the same job that this one covers; delete them with its plan.
    pub superseded: Vec<EvaluationId>,
}

struct Ready {
    priority: i64,
    seq: u64,
    job_id: JobId,
}

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        // Higher priority first, then first come first served.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct Inner {
    /// Jobs with waiting evaluations, by priority.
    ready: BinaryHeap<Ready>,
    /// Waiting evaluations per job; a job appears in `ready` once while it has any.
    waiting: HashMap<JobId, Vec<Evaluation>>,
    /// Jobs a worker holds now; their new evaluations wait until it acks.
    in_flight: HashSet<JobId>,
    /// Evaluations whose time has not come, by due time.
    delayed: BTreeMap<(Timestamp, u64), Evaluation>,
    seq: u64,
    closed: bool,
    /// A member of an orchestrator cluster that does not lead it hands out nothing and
    /// keeps nothing: its leader schedules.
    paused: bool,
}

impl Inner {
    /// Forgets every evaluation, paused (a follower) or not.
    fn reset(&mut self, paused: bool) {
        self.paused = paused;
        self.ready.clear();
        self.waiting.clear();
        self.delayed.clear();
        self.in_flight.clear();
    }

    fn make_ready(&mut self, evaluation: Evaluation) {
        let job_id = evaluation.job_id.clone();
        let first = !self.waiting.contains_key(&job_id);
        self.waiting
            .entry(job_id.clone())
            .or_default()
            .push(evaluation);
        if first && !self.in_flight.contains(&job_id) {
            self.push_ready(job_id);
        }
    }

    fn push_ready(&mut self, job_id: JobId) {
        let priority = self.waiting.get(&job_id).map_or(0, |evals| {
            evals.iter().map(|e| e.priority).max().unwrap_or(0)
        });
        self.seq += 1;
        self.ready.push(Ready {
            priority,
            seq: self.seq,
            job_id,
        });
    }

    fn promote_due(&mut self, now: Timestamp) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let evaluation = entry.remove();
            self.make_ready(evaluation);
        }
    }
}

/// Hands out evaluations to scheduler workers.
#[derive(Default)]
pub struct EvaluationBroker {
    inner: Mutex<Inner>,
    wake: Notify,
    clock: Clock,
}

impl EvaluationBroker {
    /// An empty broker on the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty broker whose delays follow `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            ..Self::default()
        }
    }

    /// The clock delays are measured by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the queues half-updated in a way that
        // matters more than stopping all scheduling, so keep going with the data as it is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an evaluation; one with a future `WaitUntil` waits until then.
    pub fn enqueue(&self, evaluation: Evaluation) {
        let mut inner = self.lock();
        if inner.paused {
            return;
        }
        let delayed = evaluation.wait_until > self.now();
        if delayed {
            inner.seq += 1;
            let key = (evaluation.wait_until, inner.seq);
            inner.delayed.insert(key, evaluation);
        } else {
            inner.make_ready(evaluation);
        }
        drop(inner);
        if delayed {
            // Sleeping workers recompute how long to wait: this one may be due first.
            self.wake.notify_waiters();
        }
        // Ready work needs one worker; waking all of them (64 by default) on every submission
        // would cost more than the work.
        self.wake.notify_one();
    }

    /// Waits for the next evaluation; `None` once the broker is closed.
    pub async fn dequeue(&self) -> Option<Work> {
        loop {
            let notified = self.wake.notified();
            let next_due = {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                if inner.paused {
                    None
                } else {
                    inner.promote_due(self.now());
                    while let Some(ready) = inner.ready.pop() {
                        let Some(mut evaluations) = inner.waiting.remove(&ready.job_id) else {
                            continue;
                        };
                        inner.in_flight.insert(ready.job_id.clone());
                        // The newest evaluation carries the most recent trigger; the rest are covered.
                        // A queue deadline is kept: it is what lets a waiting job fail on time.
                        evaluations.sort_by_key(|e| (e.wait_until > 0, e.create_time));
                        let Some(evaluation) = evaluations.pop() else {
                            continue;
                        };
                        let superseded = evaluations.into_iter().map(|e| e.id).collect();
                        return Some(Work {
                            evaluation,
                            superseded,
                        });
                    }
                    inner.delayed.keys().next().map(|(due, _)| *due)
                }
            };
            match next_due {
                Some(due) => {
                    let wait = u64::try_from(due.saturating_sub(self.now())).unwrap_or(0);
                    let _ = tokio::time::timeout(Duration::from_nanos(wait), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Holds `job_id` as a worker would, for a caller that plans the job in its own
    /// transaction: `false` (nothing held) when a worker holds it, evaluations of it wait,
    /// or the broker is paused or closed. Release it with [`EvaluationBroker::ack`].
    pub fn claim(&self, job_id: &JobId) -> bool {
        let mut inner = self.lock();
        if inner.paused
            || inner.closed
            || inner.in_flight.contains(job_id)
            || inner.waiting.contains_key(job_id)
        {
            return false;
        }
        inner.in_flight.insert(job_id.clone())
    }

    /// Marks the job's evaluation done, releasing the job's next waiting evaluation.
    pub fn ack(&self, job_id: &JobId) {
        let mut inner = self.lock();
        inner.in_flight.remove(job_id);
        if inner.waiting.contains_key(job_id) {
            inner.push_ready(job_id.clone());
            drop(inner);
            self.wake.notify_one();
        }
    }

    /// Gives an evaluation back after a failed attempt, to retry after `delay`.
    pub fn nack(&self, mut evaluation: Evaluation, delay: Duration) {
        let job_id = evaluation.job_id.clone();
        evaluation.wait_until = self
            .now()
            .saturating_add(delay.as_nanos().min(i64::MAX as u128) as i64);
        self.ack(&job_id);
        self.enqueue(evaluation);
    }

    /// Drops every queued evaluation and takes no more until [`EvaluationBroker::resume`]:
    /// this orchestrator no longer leads its cluster (the evaluations stay stored, and the
    /// leader requeues them). An evaluation in flight fails at its plan's commit.
    pub fn pause(&self) {
        self.lock().reset(true);
    }

    /// Takes work again, starting from `pending` (the stored evaluations): this orchestrator
    /// now leads its cluster.
    pub fn resume(&self, pending: Vec<Evaluation>) {
        self.lock().reset(false);
        for evaluation in pending {
            self.enqueue(evaluation);
        }
        self.wake.notify_waiters();
    }

    /// Stops handing out work; waiting workers get `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    /// Evaluations waiting or delayed (not in flight).
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.waiting.values().map(Vec::len).sum::<usize>() + inner.delayed.len()
    }

    /// Evaluations a worker holds now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::TriggeredBy;

    fn eval(job: &str, priority: i64) -> Evaluation {
        Evaluation::new(
            JobId::from(job),
            "default",
            "batch",
            priority,
            TriggeredBy::JobRegister,
            0,
        )
    }

    /// A broker on a paused clock: its waits return as soon as nothing else can run.
    fn broker() -> EvaluationBroker {
        EvaluationBroker::with_clock(Clock::following_tokio(1_000_000_000_000))
    }

    /// A claimed job is held as a worker holds it: its new evaluations wait for the release,
    /// and a job a worker holds, or with evaluations waiting, cannot be claimed.
    #[tokio::test(start_paused = true)]
    async fn a_claimed_job_is_held_like_a_dequeued_one() {
        let broker = broker();
        let job = JobId::from("j-inline");
        assert!(broker.claim(&job));
        assert!(!broker.claim(&job), "held once");
        broker.enqueue(eval("j-inline", 0));
        assert!(
            tokio::time::timeout(Duration::from_secs(60), broker.dequeue())
                .await
                .is_err(),
            "its evaluation waits while it is claimed"
        );
        broker.ack(&job);
        let work = broker.dequeue().await.unwrap();
        assert_eq!(work.evaluation.job_id, job);
        assert!(!broker.claim(&job), "a worker holds it");
        broker.ack(&job);

        broker.enqueue(eval("j-waiting", 0));
        assert!(
            !broker.claim(&JobId::from("j-waiting")),
            "it has work waiting"
        );
        broker.pause();
        assert!(
            !broker.claim(&JobId::from("j-new")),
            "a follower plans nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_broker_keeps_nothing_and_resumes_from_what_it_is_given() {
        let broker = broker();
        broker.enqueue(eval("j-before", 0));
        broker.pause();
        broker.enqueue(eval("j-while-following", 0));
        assert!(broker.is_empty(), "a follower keeps no work");
        assert!(
            tokio::time::timeout(Duration::from_secs(60), broker.dequeue())
                .await
                .is_err(),
            "a paused broker hands out nothing"
        );
        broker.resume(vec![eval("j-stored", 0)]);
        let work = broker.dequeue().await.expect("work after resuming");
        assert_eq!(work.evaluation.job_id.as_str(), "j-stored");
        assert!(
            broker.is_empty(),
            "what was queued before the pause is gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn higher_priority_first_then_fifo() {
        let broker = broker();
        broker.enqueue(eval("j-low", 0));
        broker.enqueue(eval("j-high", 5));
        broker.enqueue(eval("j-low2", 0));
        let mut order = Vec::new();
        for _ in 0..3 {
            let work = broker.dequeue().await.unwrap();
            order.push(work.evaluation.job_id.to_string());
        }
        assert_eq!(order, vec!["j-high", "j-low", "j-low2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_evaluation_per_job_in_flight_and_extras_coalesce() {
        let broker = broker();
        broker.enqueue(eval("j-1", 0));
        let first = broker.dequeue().await.unwrap();
        broker.enqueue(eval("j-1", 0));
        broker.enqueue(eval("j-1", 0));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), broker.dequeue())
                .await
                .is_err(),
            "a second evaluation of an in-flight job must wait"
        );
        broker.ack(&first.evaluation.job_id);
        let second = broker.dequeue().await.unwrap();
        assert_eq!(second.superseded.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_evaluations_wait_for_their_time() {
        let broker = broker();
        let due = broker.clock().now() + 3_600_000_000_000;
        let mut delayed = eval("j-later", 0);
        delayed.wait_until = due;
        broker.enqueue(delayed);
        broker.enqueue(eval("j-now", 0));
        let first = broker.dequeue().await.unwrap();
        assert_eq!(first.evaluation.job_id.as_str(), "j-now");
        let work = tokio::time::timeout(Duration::from_secs(7200), broker.dequeue())
            .await
            .expect("delayed evaluation never came")
            .unwrap();
        assert_eq!(work.evaluation.job_id.as_str(), "j-later");
        assert!(broker.clock().now() >= due, "handed out before it was due");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_evaluation_comes_back_after_its_delay() {
        let broker = broker();
        broker.enqueue(eval("j-retry", 0));
        let work = broker.dequeue().await.unwrap();
        let failed_at = broker.clock().now();
        broker.nack(work.evaluation, Duration::from_secs(1));
        let again = broker.dequeue().await.unwrap();
        assert_eq!(again.evaluation.job_id.as_str(), "j-retry");
        assert!(broker.clock().now() >= failed_at + 1_000_000_000);
    }
}
