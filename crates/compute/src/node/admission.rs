//! Admission: whether this node takes an execution. [`Admission::check`] decides from what
//! the node has (engines, input sources, publishers, host variables, its whole capacity) and
//! what it allows; `accept` records the answer and queues an accepted execution.

use super::ComputeNode;
use super::queue::needs;
use super::report::{Report, update};
use super::runner::Started;
use crate::env::EnvAllowList;
use crate::executor::Executor;
use crate::inputs::Storages;
use crate::publisher::Publishers;
use crate::store::{LocalExecution, StoreError};
use bacalhau_models::task::NetworkType;
use bacalhau_models::{Execution, ExecutionStateType, Resources};
use std::collections::HashMap;
use std::sync::Arc;

/// What the admission checks look at: what the node has and what it allows.
pub(super) struct Admission<'a> {
    /// The node's engines, by name.
    pub(super) executors: &'a HashMap<&'static str, Arc<dyn Executor>>,
    /// The node's input sources.
    pub(super) storages: &'a Storages,
    /// The node's publishers.
    pub(super) publishers: &'a Publishers,
    /// The host variables jobs may read.
    pub(super) env_allow_list: &'a EnvAllowList,
    /// `JobAdmissionControl.RejectNetworkedJobs`.
    pub(super) reject_networked_jobs: bool,
    /// Everything the node offers: an execution needing more could never run here.
    pub(super) total: &'a Resources,
}

impl Admission<'_> {
    /// Decides whether this node runs `execution`: the engine must exist, the node must be
    /// able to fetch the inputs and publish the results, and the job must fit. The reason
    /// goes back to the orchestrator with the rejection.
    pub(super) fn check(&self, execution: &Execution) -> Result<(), String> {
        let Some(task) = execution.job.as_ref().and_then(|j| j.task()) else {
            return Err("the execution carries no task".into());
        };
        let engine = &task.engine.r#type;
        if !self.executors.contains_key(engine.as_str()) {
            return Err(format!("this node does not support engine {engine:?}"));
        }
        self.storages.check(task).map_err(|e| e.to_string())?;
        self.publishers.check(task).map_err(|e| e.to_string())?;
        self.env_allow_list.check(task)?;
        let network = task.network.r#type;
        if !matches!(network, NetworkType::Default | NetworkType::None)
            && self.reject_networked_jobs
        {
            return Err(format!(
                "this node rejects networked jobs (network {network}); see JobAdmissionControl.RejectNetworkedJobs"
            ));
        }
        if !needs(execution).fits_in(self.total) {
            return Err("this node does not have enough capacity to ever run the job".into());
        }
        Ok(())
    }
}

impl ComputeNode {
    /// The admission checks over this node's providers and configuration.
    fn admission(&self) -> Admission<'_> {
        Admission {
            executors: &self.executors,
            storages: &self.storages,
            publishers: &self.publishers,
            env_allow_list: &self.config.env_allow_list,
            reject_networked_jobs: self.config.reject_networked_jobs,
            // The capacity tracker's total, which never changes.
            total: &self.config.capacity,
        }
    }

    /// Answers a `RunExecution`: records the execution as accepted or rejected (with the
    /// reason) and its report in one transaction with `seq`, then starts an accepted one (when
    /// it can start at once, recorded Running in the same transaction) or queues it.
    pub(super) async fn accept(
        self: &Arc<Self>,
        seq: u64,
        execution: Execution,
    ) -> Result<Option<u64>, StoreError> {
        let mut bid = crate::trace::start(&execution, "bid", None);
        let verdict = self.admission().check(&execution);
        let accepted = verdict.is_ok();
        {
            use opentelemetry::trace::Span as _;
            bid.set_attribute(opentelemetry::KeyValue::new(
                "bacalhau.bid.accepted",
                accepted,
            ));
            if let Err(reason) = &verdict {
                bid.set_attribute(opentelemetry::KeyValue::new(
                    "bacalhau.bid.reason",
                    reason.clone(),
                ));
            }
            bid.end();
        }
        if !accepted {
            self.lock_peers().remove(&execution.id);
        }
        // An execution that can start at once is recorded Running with its acceptance, both
        // reports in one transaction: one commit fewer on the node and one batch fewer for
        // the orchestrator to apply. The reservation is given back if the store has it already.
        let at_once = accepted && {
            let mut queue = self.lock_queue();
            queue.start_now(&execution, &mut self.lock_capacity())
        };
        let queued = execution.clone();
        let fresh = self
            .store
            .apply(seq, move |t| {
                // Already here under another message (the orchestrator resent it).
                if t.execution(execution.id.as_str())?.is_some() {
                    return Ok(false);
                }
                let (state, message) = match verdict {
                    Ok(()) if at_once => (ExecutionStateType::Running, String::new()),
                    Ok(()) => (ExecutionStateType::BidAccepted, String::new()),
                    Err(reason) => (ExecutionStateType::AskForBidRejected, reason),
                };
                t.put_execution(&LocalExecution {
                    execution: execution.clone(),
                    state,
                    message: message.clone(),
                })?;
                if at_once {
                    t.enqueue(&update(
                        &execution,
                        ExecutionStateType::BidAccepted,
                        Report::default(),
                    ))?;
                }
                t.enqueue(&update(&execution, state, Report::message(message)))?;
                Ok(true)
            })
            .await;
        let fresh = match fresh {
            Ok(fresh) => fresh,
            Err(e) => {
                if at_once {
                    self.unreserve(&queued);
                }
                return Err(e);
            }
        };
        let missing = fresh.missing();
        if fresh.done().unwrap_or(false) {
            self.outbox_wake.notify_waiters();
            if at_once {
                tokio::spawn(Arc::clone(self).execute(queued, Started::AtAcceptance));
            } else if accepted {
                self.lock_queue().push(queued);
                self.runner_wake.notify_one();
            }
        } else if at_once {
            self.unreserve(&queued);
        }
        Ok(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{BoxFuture, ExecutionContext, ExecutorError};
    use bacalhau_models::{InputSource, Job, RunCommandResult, SpecConfig, Task};

    /// An engine that is only ever looked up by name.
    struct Engine(&'static str);

    impl Executor for Engine {
        fn engine(&self) -> &'static str {
            self.0
        }

        fn run(
            &self,
            _context: ExecutionContext,
        ) -> BoxFuture<'_, Result<RunCommandResult, ExecutorError>> {
            Box::pin(async { Ok(RunCommandResult::default()) })
        }
    }

    /// A node with the `wasm` and `noop` engines, no input sources or publishers, and
    /// 2 cores, 1 GiB of memory and 10 GiB of disk.
    struct Node {
        executors: HashMap<&'static str, Arc<dyn Executor>>,
        storages: Storages,
        publishers: Publishers,
        env_allow_list: EnvAllowList,
        reject_networked_jobs: bool,
        total: Resources,
    }

    impl Node {
        fn new() -> Self {
            let executors: Vec<Arc<dyn Executor>> =
                vec![Arc::new(Engine("wasm")), Arc::new(Engine("noop"))];
            Self {
                executors: executors.into_iter().map(|e| (e.engine(), e)).collect(),
                storages: Storages::default(),
                publishers: Publishers::default(),
                env_allow_list: EnvAllowList::default(),
                reject_networked_jobs: false,
                total: Resources {
                    cpu: 2.0,
                    memory: 1 << 30,
                    disk: 10 << 30,
                    ..Default::default()
                },
            }
        }

        fn check(&self, execution: &Execution) -> Result<(), String> {
            Admission {
                executors: &self.executors,
                storages: &self.storages,
                publishers: &self.publishers,
                env_allow_list: &self.env_allow_list,
                reject_networked_jobs: self.reject_networked_jobs,
                total: &self.total,
            }
            .check(execution)
        }
    }

    /// An execution of one task on `engine` needing `resources`.
    fn execution(engine: &str, resources: Resources) -> Execution {
        let task = Task {
            name: "main".into(),
            engine: SpecConfig::of_type(engine),
            ..Default::default()
        };
        let mut execution = Execution {
            job: Some(Box::new(Job {
                tasks: vec![task],
                ..Default::default()
            })),
            ..Default::default()
        };
        execution
            .allocated_resources
            .tasks
            .insert("main".into(), resources);
        execution
    }

    fn small() -> Resources {
        Resources {
            cpu: 0.5,
            memory: 64 << 20,
            ..Default::default()
        }
    }

    fn task_mut(execution: &mut Execution) -> &mut Task {
        let job = execution.job.as_mut().expect("the execution has a job");
        &mut job.tasks[0]
    }

    #[test]
    fn a_job_that_fits_on_an_engine_the_node_has_is_accepted() {
        let node = Node::new();
        assert_eq!(node.check(&execution("wasm", small())), Ok(()));
        // Exactly the node's whole capacity still fits.
        assert_eq!(node.check(&execution("noop", node.total.clone())), Ok(()));
    }

    #[test]
    fn an_execution_without_a_task_is_refused() {
        let node = Node::new();
        assert_eq!(
            node.check(&Execution::default()),
            Err("the execution carries no task".into())
        );
    }

    #[test]
    fn an_engine_the_node_lacks_is_refused() {
        let node = Node::new();
        assert_eq!(
            node.check(&execution("docker", small())),
            Err(r#"this node does not support engine "docker""#.into())
        );
    }

    #[test]
    fn a_job_needing_more_than_the_node_has_is_refused_whatever_the_resource() {
        let node = Node::new();
        let too_much = [
            Resources {
                cpu: 2.5,
                ..small()
            },
            Resources {
                memory: (1 << 30) + 1,
                ..small()
            },
            Resources {
                disk: 11 << 30,
                ..small()
            },
            Resources { gpu: 1, ..small() },
        ];
        for resources in too_much {
            assert_eq!(
                node.check(&execution("wasm", resources.clone())),
                Err("this node does not have enough capacity to ever run the job".into()),
                "{resources:?}"
            );
        }
    }

    #[test]
    fn capacity_counts_every_task_of_the_execution() {
        let node = Node::new();
        let mut execution = execution(
            "wasm",
            Resources {
                cpu: 1.5,
                ..small()
            },
        );
        execution.allocated_resources.tasks.insert(
            "side".into(),
            Resources {
                cpu: 1.0,
                ..small()
            },
        );
        assert!(node.check(&execution).is_err());
    }

    #[test]
    fn networked_jobs_are_refused_only_when_the_node_rejects_them() {
        let mut node = Node::new();
        let mut networked = execution("wasm", small());
        task_mut(&mut networked).network.r#type = NetworkType::Host;
        assert_eq!(node.check(&networked), Ok(()));

        node.reject_networked_jobs = true;
        assert_eq!(
            node.check(&networked),
            Err("this node rejects networked jobs (network Host); see JobAdmissionControl.RejectNetworkedJobs".into())
        );
        // No network, or the default one (run without a network on such a node), still runs.
        for network in [NetworkType::Default, NetworkType::None] {
            let mut quiet = execution("wasm", small());
            task_mut(&mut quiet).network.r#type = network;
            assert_eq!(node.check(&quiet), Ok(()), "network {network:?}");
        }
    }

    #[test]
    fn an_input_source_the_node_lacks_is_refused() {
        let node = Node::new();
        let mut execution = execution("wasm", small());
        task_mut(&mut execution).input_sources.push(InputSource {
            source: SpecConfig::of_type("s3"),
            target: "/data".into(),
            ..Default::default()
        });
        let reason = node.check(&execution).err().unwrap_or_default();
        assert!(
            reason.contains(r#"does not support input source type "s3""#),
            "{reason}"
        );
    }

    #[test]
    fn a_publisher_the_node_lacks_is_refused() {
        let node = Node::new();
        let mut execution = execution("wasm", small());
        task_mut(&mut execution).publisher = SpecConfig::of_type("s3");
        let reason = node.check(&execution).err().unwrap_or_default();
        assert!(
            reason.contains(r#"does not support publisher "s3""#),
            "{reason}"
        );
    }

    #[test]
    fn a_host_variable_outside_the_allow_list_is_refused() {
        let mut node = Node::new();
        node.env_allow_list = EnvAllowList::new(vec!["AWS_*".into()]);
        let mut execution = execution("wasm", small());
        task_mut(&mut execution)
            .env
            .insert("TOKEN".into(), "env:SECRET_TOKEN".into());
        let reason = node.check(&execution).err().unwrap_or_default();
        assert!(
            reason.contains("'SECRET_TOKEN' is not in allowed patterns"),
            "{reason}"
        );
    }

    #[test]
    fn the_engine_is_checked_before_capacity() {
        // The first failing check gives the reason, in the order of `check`.
        let node = Node::new();
        let reason = node.check(&execution(
            "docker",
            Resources {
                cpu: 64.0,
                ..small()
            },
        ));
        assert_eq!(
            reason,
            Err(r#"this node does not support engine "docker""#.into())
        );
    }
}
