//! The wait queue and capacity: accepted executions wait in arrival order and start while the
//! capacity tracker has room for the one at the head; a cancel takes one out of the queue or
//! signals it to stop.

use super::ComputeNode;
use super::report::{Report, update};
use super::runner::Started;
use crate::capacity::CapacityTracker;
use crate::store::StoreError;
use bacalhau_models::{Execution, ExecutionId, ExecutionStateType, Resources};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::watch;

/// What an execution needs: the resources of all its tasks together.
pub(super) fn needs(execution: &Execution) -> Resources {
    let mut total = Resources::default();
    for resources in execution.allocated_resources.tasks.values() {
        total.add(resources);
    }
    total
}

/// Executions waiting for capacity, in arrival order, and the stop signals of running ones.
#[derive(Default)]
pub(super) struct Queue {
    waiting: VecDeque<Execution>,
    running: HashMap<ExecutionId, watch::Sender<bool>>,
}

impl Queue {
    /// Puts an execution at the back of the queue.
    pub(super) fn push(&mut self, execution: Execution) {
        self.waiting.push_back(execution);
    }

    /// The waiting executions, head first.
    pub(super) fn waiting(&self) -> impl Iterator<Item = &Execution> {
        self.waiting.iter()
    }

    /// How many executions wait.
    pub(super) fn n_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// How many executions run.
    pub(super) fn n_running(&self) -> usize {
        self.running.len()
    }

    /// Takes the execution at the head when its needs fit in what `capacity` has free,
    /// reserving them and registering it as running; `None` when the queue is empty or the
    /// head does not fit.
    ///
    /// First come, first served: a large execution at the head waits for room rather than
    /// being overtaken forever by small ones, so the ones behind it wait too.
    pub(super) fn start_next(&mut self, capacity: &mut CapacityTracker) -> Option<Execution> {
        let front = self.waiting.front()?;
        if !capacity.try_reserve(&needs(front)) {
            return None;
        }
        let execution = self.waiting.pop_front()?;
        let (cancel, _) = watch::channel(false);
        self.running.insert(execution.id.clone(), cancel);
        Some(execution)
    }

    /// Starts `execution` at once when nothing waits before it and its needs fit, reserving
    /// them and registering it as running; `false` leaves everything as it was (it is
    /// already running here, others wait, or it does not fit).
    pub(super) fn start_now(
        &mut self,
        execution: &Execution,
        capacity: &mut CapacityTracker,
    ) -> bool {
        if !self.waiting.is_empty()
            || self.running.contains_key(&execution.id)
            || !capacity.try_reserve(&needs(execution))
        {
            return false;
        }
        let (cancel, _) = watch::channel(false);
        self.running.insert(execution.id.clone(), cancel);
        true
    }

    /// A running execution's stop signal; `None` when it is not running.
    pub(super) fn cancel_signal(&self, id: &ExecutionId) -> Option<watch::Receiver<bool>> {
        self.running.get(id).map(|sender| sender.subscribe())
    }

    /// Tells a running execution to stop; nothing when it is not running.
    pub(super) fn stop(&self, id: &ExecutionId) {
        if let Some(stop) = self.running.get(id) {
            // Kept even with no receiver yet: a run that subscribes later sees it.
            stop.send_replace(true);
        }
    }

    /// Takes a waiting execution out of the queue; whether it was waiting.
    pub(super) fn remove_waiting(&mut self, id: &ExecutionId) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|e| &e.id != id);
        self.waiting.len() != before
    }

    /// Forgets a running execution once it ended.
    pub(super) fn finish(&mut self, id: &ExecutionId) {
        self.running.remove(id);
    }
}

impl ComputeNode {
    /// The queue runner: starts waiting executions in order as capacity allows.
    pub(super) async fn run_queue(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let notified = self.runner_wake.notified();
            loop {
                let next = self.lock_queue().start_next(&mut self.lock_capacity());
                let Some(execution) = next else { break };
                tokio::spawn(Arc::clone(&self).execute(execution, Started::Queued));
            }
            tokio::select! {
                _ = notified => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Gives back what [`Queue::start_now`] reserved for an execution that did not start.
    pub(super) fn unreserve(&self, execution: &Execution) {
        self.lock_queue().finish(&execution.id);
        self.lock_capacity().release(&needs(execution));
    }

    /// Stops an execution at the orchestrator's request: a waiting one leaves the queue and is
    /// reported cancelled here; a running one is told to stop and reports its own end.
    pub(super) async fn cancel(
        &self,
        seq: u64,
        id: ExecutionId,
        reason: String,
    ) -> Result<Option<u64>, StoreError> {
        self.lock_queue().stop(&id);
        let was_waiting = self.lock_queue().remove_waiting(&id);
        let cancelled = self
            .store
            .apply(seq, move |t| {
                let Some(local) = t.execution(id.as_str())? else {
                    return Ok(false);
                };
                if local.state.is_terminal() || !was_waiting {
                    return Ok(false);
                }
                t.put_state(id.as_str(), ExecutionStateType::Cancelled, &reason)?;
                t.enqueue(&update(
                    &local.execution,
                    ExecutionStateType::Cancelled,
                    Report::message(reason),
                ))?;
                Ok(true)
            })
            .await?;
        let missing = cancelled.missing();
        if cancelled.done().unwrap_or(false) {
            self.outbox_wake.notify_waiters();
        }
        Ok(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(cpu: f64) -> Resources {
        Resources {
            cpu,
            memory: 1 << 20,
            ..Default::default()
        }
    }

    /// A node with `cpu` cores and memory to spare.
    fn node(cpu: f64) -> Resources {
        Resources {
            cpu,
            memory: 1 << 30,
            ..Default::default()
        }
    }

    /// An execution whose one task needs `cpu` cores and 1 MiB.
    fn execution(id: &str, cpu: f64) -> Execution {
        let mut execution = Execution {
            id: ExecutionId::from(id),
            ..Default::default()
        };
        execution
            .allocated_resources
            .tasks
            .insert("main".into(), cpus(cpu));
        execution
    }

    fn ids(queue: &Queue) -> Vec<&str> {
        queue.waiting().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn needs_adds_up_every_task() {
        let mut execution = execution("e", 1.5);
        execution
            .allocated_resources
            .tasks
            .insert("side".into(), cpus(0.5));
        let total = needs(&execution);
        assert_eq!(total.cpu, 2.0);
        assert_eq!(total.memory, 2 << 20);
    }

    #[test]
    fn executions_start_in_arrival_order_while_they_fit() {
        let mut capacity = CapacityTracker::new(node(2.0));
        let mut queue = Queue::default();
        for id in ["a", "b", "c"] {
            queue.push(execution(id, 1.0));
        }
        let started = queue.start_next(&mut capacity).map(|e| e.id);
        assert_eq!(started.as_ref().map(|id| id.as_str()), Some("a"));
        let started = queue.start_next(&mut capacity).map(|e| e.id);
        assert_eq!(started.as_ref().map(|id| id.as_str()), Some("b"));
        // Two cores in use: the third waits at the head.
        assert!(queue.start_next(&mut capacity).is_none());
        assert_eq!(ids(&queue), ["c"]);
        assert_eq!((queue.n_running(), queue.n_waiting()), (2, 1));
        assert_eq!(capacity.available().cpu, 0.0);
    }

    #[test]
    fn a_head_that_does_not_fit_holds_back_a_smaller_one_behind_it() {
        let mut capacity = CapacityTracker::new(node(2.0));
        let mut queue = Queue::default();
        queue.push(execution("small-first", 1.0));
        queue.push(execution("large", 2.0));
        queue.push(execution("small-behind", 1.0));
        let first = queue.start_next(&mut capacity);
        assert!(first.is_some());
        // One core is free: enough for `small-behind`, but `large` is at the head and waits,
        // and so does everything behind it.
        assert!(queue.start_next(&mut capacity).is_none());
        assert_eq!(ids(&queue), ["large", "small-behind"]);
        assert_eq!(capacity.available().cpu, 1.0);

        // When the first one ends and gives its core back, the head starts.
        let first = first.map(|e| e.id).unwrap_or_default();
        queue.finish(&first);
        capacity.release(&cpus(1.0));
        let started = queue.start_next(&mut capacity).map(|e| e.id);
        assert_eq!(started.as_ref().map(|id| id.as_str()), Some("large"));
        assert!(queue.start_next(&mut capacity).is_none());
        assert_eq!(ids(&queue), ["small-behind"]);
    }

    #[test]
    fn an_execution_larger_than_the_node_stays_at_the_head() {
        // Admission refuses these; the queue itself never reserves past the total.
        let mut capacity = CapacityTracker::new(node(1.0));
        let mut queue = Queue::default();
        queue.push(execution("too-large", 4.0));
        assert!(queue.start_next(&mut capacity).is_none());
        assert_eq!(ids(&queue), ["too-large"]);
        assert_eq!(capacity.available().cpu, 1.0);
    }

    #[test]
    fn an_empty_queue_starts_nothing() {
        let mut capacity = CapacityTracker::new(node(1.0));
        assert!(Queue::default().start_next(&mut capacity).is_none());
        assert_eq!(capacity.available().cpu, 1.0);
    }

    #[test]
    fn a_running_execution_is_told_to_stop_and_a_waiting_one_leaves_the_queue() {
        let mut capacity = CapacityTracker::new(node(1.0));
        let mut queue = Queue::default();
        queue.push(execution("running", 1.0));
        queue.push(execution("waiting", 1.0));
        let running = queue
            .start_next(&mut capacity)
            .map(|e| e.id)
            .unwrap_or_default();
        let signal = queue.cancel_signal(&running);
        assert!(signal.as_ref().is_some_and(|s| !*s.borrow()));
        queue.stop(&running);
        assert!(signal.as_ref().is_some_and(|s| *s.borrow()));

        let waiting = ExecutionId::from("waiting");
        assert!(queue.cancel_signal(&waiting).is_none());
        assert!(queue.remove_waiting(&waiting));
        assert!(!queue.remove_waiting(&waiting));
        assert_eq!(queue.n_waiting(), 0);

        queue.finish(&running);
        assert_eq!(queue.n_running(), 0);
        assert!(queue.cancel_signal(&running).is_none());
    }
}
