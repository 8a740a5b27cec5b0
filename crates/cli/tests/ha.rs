//! No single point of failure: three orchestrators form a Raft group
//! (`Orchestrator.Cluster.*`), three compute nodes know all three, and a stream of WASM jobs
//! goes to any member while the leader is killed with SIGKILL. A new leader must take over
//! within seconds; afterwards every acknowledged job is in one terminal state, no execution
//! ran twice (each run of `record_run.wat` appends a byte to a file named by its execution ID,
//! counted outside the system), and the audit chain verifies on every member and is the same
//! on the two that lived. Also: a leader cut off from the others, a member that missed 10 000
//! entries, and members joining and leaving at run time.

mod common;

use bacalhau_client::ApiClient;
use bacalhau_models::{ExecutionStateType, Job, JobId, JobStateType, parse_job_spec};
use common::{ComputeProcess, Server, free_port, stderr, stdout};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const JOBS: usize = 1000;
const MEMBERS: usize = 3;
const NODES: usize = 3;
/// The whole test ends well within this.
const LIMIT: Duration = Duration::from_secs(300);

/// Submits jobs `range`, each to the next member in turn, retrying (under a new name) while
/// a write is not acknowledged; returns the acknowledged.
async fn submit(
    clients: Arc<Vec<ApiClient>>,
    module: Arc<String>,
    runs: PathBuf,
    range: std::ops::Range<usize>,
    submitted: Arc<AtomicUsize>,
) -> Vec<JobId> {
    let mut acknowledged = Vec::new();
    let mut member = range.start;
    for i in range {
        let mut attempt = 0;
        loop {
            member += 1;
            let client = &clients[member % clients.len()];
            let job = common::runs::record_run_job(&format!("ha-{i}-{attempt}"), &module, &runs);
            match client.put_job(&job, false).await {
                Ok(put) => {
                    acknowledged.push(JobId::from(put.job_id.as_str()));
                    submitted.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                // Unacknowledged: it may or may not exist; only acknowledged jobs are promised.
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    acknowledged
}

/// The leader's index among the members, as `asking` sees it.
async fn leader(asking: &ApiClient, names: &[String]) -> Option<usize> {
    let status = asking.cluster_status().await.ok()?;
    let leader = status.leader?;
    names.iter().position(|n| *n == leader)
}

/// The audit log's hashes, in order, as a member holds it.
async fn chain(client: &ApiClient) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut since = 0;
    loop {
        let page = client.audit_log(since, 1000).await.expect("the audit log");
        if page.items.is_empty() {
            return hashes;
        }
        for event in page.items {
            since = event.seq_num;
            hashes.push(event.hash);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_and_repeats_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let common::runs::Recording {
        runs,
        allow,
        module,
    } = common::runs::Recording::new(dir.path());

    let api_ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let raft_ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("orchestrator-{i}")).collect();
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let peers: Vec<String> = (0..MEMBERS)
            .filter(|j| *j != i)
            .map(|j| format!("127.0.0.1:{}", raft_ports[j]))
            .collect();
        let args = [
            "serve".to_string(),
            "--orchestrator".into(),
            "--name".into(),
            names[i].clone(),
            "-c".into(),
            "Orchestrator.Cluster.Host=127.0.0.1".into(),
            "-c".into(),
            format!("Orchestrator.Cluster.Port={}", raft_ports[i]),
            "-c".into(),
            format!("Orchestrator.Cluster.Peers={}", peers.join(",")),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        members.push(Some(
            Server::start_with(&dir.path().join(&names[i]), api_ports[i], &args).await,
        ));
    }
    let clients: Arc<Vec<ApiClient>> = Arc::new(
        members
            .iter()
            .flatten()
            .map(|m| m.client())
            .collect::<Vec<_>>(),
    );
    let first_leader = common::eventually(30, "a leader", || {
        let client = clients[0].clone();
        let names = names.clone();
        async move { leader(&client, &names).await }
    })
    .await;

    let orchestrators: Vec<String> = api_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes: Vec<ComputeProcess> = (0..NODES)
        .map(|i| {
            ComputeProcess::start(
                &dir.path().join(format!("node-{i}")),
                &format!("ha-node-{i}"),
                &orchestrators.join(","),
                &["-c", &allow],
            )
        })
        .collect();
    common::eventually(30, "three connected nodes", || {
        let client = clients[first_leader].clone();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            let connected = nodes
                .iter()
                .filter(|n| n.connection == bacalhau_models::node::ConnectionStatus::Connected)
                .count();
            (connected == NODES).then_some(())
        }
    })
    .await;

    let submitted = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = [0..JOBS / 2, JOBS / 2..JOBS]
        .into_iter()
        .map(|range| {
            tokio::spawn(submit(
                Arc::clone(&clients),
                Arc::clone(&module),
                runs.clone(),
                range,
                Arc::clone(&submitted),
            ))
        })
        .collect();

    // Mid-stream, kill -9 the leader.
    common::eventually(120, "a third of the jobs submitted", || {
        let n = submitted.load(Ordering::SeqCst);
        async move { (n >= JOBS / 3).then_some(()) }
    })
    .await;
    let killed_at = Instant::now();
    if let Some(mut old) = members[first_leader].take() {
        old.kill9();
    }
    let survivor = (first_leader + 1) % MEMBERS;
    let new_leader = common::eventually(30, "a new leader", || {
        let client = clients[survivor].clone();
        let names = names.clone();
        async move { leader(&client, &names).await.filter(|l| *l != first_leader) }
    })
    .await;
    let failover = killed_at.elapsed();

    let mut acknowledged = Vec::new();
    for submitter in submitters {
        acknowledged.extend(submitter.await.expect("a submitter"));
    }
    assert_eq!(acknowledged.len(), JOBS);

    // Settle: every acknowledged job reaches a terminal state.
    let reader = &clients[new_leader];
    let states: BTreeMap<JobId, JobStateType> = common::runs::settle(
        reader,
        acknowledged.iter().cloned().collect(),
        started,
        LIMIT,
    )
    .await
    .into_iter()
    .map(|(id, state)| (id, state.state_type))
    .collect();

    // What ran, counted outside the system: one file per execution, one byte per run.
    let runs_of = common::runs::recorded(&runs);
    let duplicated: Vec<_> = runs_of.iter().filter(|(_, n)| **n > 1).collect();
    let mut completed_without_a_run = Vec::new();
    for id in &acknowledged {
        let executions = reader
            .job_executions(id.as_str())
            .await
            .expect("executions")
            .items;
        for execution in executions
            .iter()
            .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
        {
            if runs_of.get(execution.id.as_str()) != Some(&1) {
                completed_without_a_run.push(execution.id.clone());
            }
        }
    }
    let completed = states
        .values()
        .filter(|s| **s == JobStateType::Completed)
        .count();
    println!(
        "ha: {JOBS} jobs acknowledged through {MEMBERS} members, completed {completed}, lost 0; \
         leader killed with SIGKILL after {} submissions, new leader in {:.2} s; executions \
         run {}, run twice {}; {:.1} s",
        JOBS / 3,
        failover.as_secs_f64(),
        runs_of.len(),
        duplicated.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        duplicated.is_empty(),
        "executions that ran twice: {duplicated:?}"
    );
    assert!(
        completed_without_a_run.is_empty(),
        "completed executions with no recorded run: {completed_without_a_run:?}"
    );
    assert!(
        completed * 10 >= JOBS * 9,
        "only {completed} of {JOBS} jobs completed"
    );
    assert!(
        failover < Duration::from_secs(5),
        "no new leader within 5 s of the kill: {failover:?}"
    );

    // The audit chain verifies on every living member, and is the same on each.
    let mut chains = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let Some(member) = member else { continue };
        let verify = member.cli(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "the audit chain does not verify on {}:\n{}{}",
            names[i],
            stdout(&verify),
            stderr(&verify)
        );
        chains.push((i, chain(&member.client()).await));
    }
    let (first, reference) = &chains[0];
    for (i, other) in &chains[1..] {
        assert!(
            other == reference,
            "{} and {} hold different audit chains ({} vs {} events)",
            names[*first],
            names[*i],
            reference.len(),
            other.len()
        );
    }
    // A client given every member's address goes past the dead one.
    let hosts: Vec<String> = (0..MEMBERS)
        .map(|i| format!("127.0.0.1:{}", api_ports[(first_leader + i) % MEMBERS]))
        .collect();
    let listed = common::cli_raw(
        &[
            "--api-host",
            &hosts.join(","),
            "job",
            "list",
            "--limit",
            "1",
        ],
        &[],
    );
    assert!(
        listed.status.success(),
        "job list past a dead member failed: {}",
        stderr(&listed)
    );
    for node in &mut nodes {
        node.kill9();
    }
}

fn noop_job(name: &str) -> Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nTasks:\n  - Name: main\n    Engine: {{Type: noop}}\n"
    ))
    .expect("the noop job spec")
}

/// A member of a test cluster, restartable on the same data.
struct Member {
    name: String,
    data: PathBuf,
    api_port: u16,
    args: Vec<String>,
    server: Option<Server>,
}

impl Member {
    async fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.server = Some(Server::start_with(&self.data, self.api_port, &args).await);
    }

    fn client(&self) -> ApiClient {
        self.server.as_ref().expect("a running member").client()
    }

    async fn status(&self) -> bacalhau_client::apimodels::ClusterStatus {
        self.client()
            .cluster_status()
            .await
            .expect("cluster status")
    }
}

/// Three members in `dir`: member `i`'s cluster listener on `hosts[i]`, advertised as
/// `advertised[i]` (a proxy in front of it, or the listener itself).
fn members(dir: &Path, hosts: &[String], ports: &[u16], advertised: &[String]) -> Vec<Member> {
    (0..hosts.len())
        .map(|i| {
            let peers: Vec<&str> = (0..hosts.len())
                .filter(|j| *j != i)
                .map(|j| advertised[j].as_str())
                .collect();
            let name = format!("member-{i}");
            Member {
                data: dir.join(&name),
                api_port: stable_port(),
                args: vec![
                    "serve".into(),
                    "--orchestrator".into(),
                    "--name".into(),
                    name.clone(),
                    "-c".into(),
                    format!("Orchestrator.Cluster.Host={}", hosts[i]),
                    "-c".into(),
                    format!("Orchestrator.Cluster.Port={}", ports[i]),
                    "-c".into(),
                    format!("Orchestrator.Cluster.Advertise={}", advertised[i]),
                    "-c".into(),
                    format!("Orchestrator.Cluster.Peers={}", peers.join(",")),
                ],
                name,
                server: None,
            }
        })
        .collect()
}

/// A free loopback port below Linux's ephemeral range (32768 and up), so no client
/// connection takes it while its member is down and restarting.
fn stable_port() -> u16 {
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 4_000) as u16;
    loop {
        let port = start + NEXT.fetch_add(1, Ordering::SeqCst) % 8_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            return port;
        }
    }
}

/// Which member leads, as `asking` sees it.
async fn leader_of(members: &[Member], asking: usize) -> Option<usize> {
    let status = members[asking].client().cluster_status().await.ok()?;
    let leader = status.leader?;
    members.iter().position(|m| m.name == leader)
}

/// A TCP proxy in front of one member's cluster listener that refuses (and cuts) connections
/// from blocked source addresses: members send Raft traffic from their own loopback address,
/// so a member is cut off by blocking its address at every other proxy and everything at its
/// own.
struct RaftProxy {
    port: u16,
    blocked: Arc<std::sync::Mutex<BTreeSet<std::net::IpAddr>>>,
    isolated: Arc<std::sync::atomic::AtomicBool>,
}

impl RaftProxy {
    async fn start(target: std::net::SocketAddr) -> RaftProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let blocked: Arc<std::sync::Mutex<BTreeSet<std::net::IpAddr>>> = Arc::default();
        let isolated = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, iso) = (Arc::clone(&blocked), Arc::clone(&isolated));
        tokio::spawn(async move {
            while let Ok((inbound, from)) = listener.accept().await {
                let (b, iso) = (Arc::clone(&b), Arc::clone(&iso));
                let cut =
                    move || iso.load(Ordering::SeqCst) || b.lock().unwrap().contains(&from.ip());
                if cut() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let watch = async {
                        while !cut() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = watch => {}
                    }
                });
            }
        });
        RaftProxy {
            port,
            blocked,
            isolated,
        }
    }
}

/// Submits noop jobs named `prefix-N` through `client` and waits for them all to complete.
async fn jobs_complete(client: &ApiClient, prefix: &str, n: usize) {
    let mut ids = Vec::new();
    for i in 0..n {
        let put = client
            .put_job(&noop_job(&format!("{prefix}-{i}")), false)
            .await
            .unwrap_or_else(|e| panic!("{prefix}-{i} not acknowledged: {e}"));
        ids.push(put.job_id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        loop {
            let state = client.get_job(&id, "").await.map(|found| found.job.state);
            match &state {
                Ok(state) if state.state_type == JobStateType::Completed => break,
                _ => assert!(
                    Instant::now() < deadline,
                    "job {id} not completed within 60 s: {state:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_stops_acknowledging_and_follows_once_healed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Each member on its own loopback address, behind a proxy that can cut it off.
    let hosts: Vec<String> = (0..MEMBERS)
        .map(|i| format!("127.0.0.{}", 11 + i))
        .collect();
    let ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let mut proxies = Vec::new();
    for i in 0..MEMBERS {
        let target = format!("{}:{}", hosts[i], ports[i]).parse().unwrap();
        proxies.push(RaftProxy::start(target).await);
    }
    let advertised: Vec<String> = proxies
        .iter()
        .map(|p| format!("127.0.0.1:{}", p.port))
        .collect();
    let mut members = members(dir.path(), &hosts, &ports, &advertised);
    for member in &mut members {
        member.start().await;
    }
    let old = common::eventually(30, "a leader", || leader_of(&members, 0)).await;
    let apis: Vec<String> = members
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.api_port))
        .collect();
    let mut node = ComputeProcess::start(&dir.path().join("node"), "ha-node", &apis.join(","), &[]);
    let other = (old + 1) % MEMBERS;
    common::eventually(30, "a connected compute node", || {
        let client = members[other].client();
        async move {
            let nodes = client.list_nodes().await.ok()?.nodes;
            nodes
                .iter()
                .any(|n| n.connection == bacalhau_models::node::ConnectionStatus::Connected)
                .then_some(())
        }
    })
    .await;
    jobs_complete(&members[other].client(), "before", 5).await;

    assert_eq!(
        leader_of(&members, old).await,
        Some(old),
        "the member to cut off must see itself as the leader"
    );
    // Cut the leader off from the other two, both ways.
    proxies[old].isolated.store(true, Ordering::SeqCst);
    for (i, proxy) in proxies.iter().enumerate() {
        if i != old {
            proxy
                .blocked
                .lock()
                .unwrap()
                .insert(hosts[old].parse().unwrap());
        }
    }
    let cut_at = Instant::now();
    // The majority elects a leader and goes on, compute node included. (Waiting for it first
    // also makes sure the cut is in effect: the proxies drop open connections within ~10 ms.)
    let new = common::eventually(30, "a leader among the majority", || {
        let members = &members;
        async move { leader_of(members, other).await.filter(|l| *l != old) }
    })
    .await;
    let elected_after = cut_at.elapsed();
    // The old leader acknowledges nothing: its write fails for want of a majority.
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        members[old]
            .client()
            .put_job(&noop_job("during-on-the-old-leader"), false),
    )
    .await
    .expect("the isolated leader answers within 30 s");
    assert!(
        refused.is_err(),
        "the isolated leader acknowledged a write: {refused:?}"
    );
    println!(
        "partition: the majority's leader known {:.2} s after the cut; the isolated leader refused a write {:.2} s after the cut",
        elected_after.as_secs_f64(),
        cut_at.elapsed().as_secs_f64()
    );
    jobs_complete(&members[other].client(), "during", 5).await;

    // Heal: the old leader follows and holds the same store.
    proxies[old].isolated.store(false, Ordering::SeqCst);
    for proxy in &proxies {
        proxy.blocked.lock().unwrap().clear();
    }
    common::eventually(30, "the old leader to follow", || {
        let members = &members;
        async move { (leader_of(members, old).await == Some(new)).then_some(()) }
    })
    .await;
    jobs_complete(&members[old].client(), "after", 3).await;
    let reference = chain(&members[new].client()).await;
    common::eventually(30, "the same audit chain on every member", || {
        let members = &members;
        let reference = reference.clone();
        async move {
            for member in members {
                if chain(&member.client()).await != reference {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    for member in &members {
        let verify = member
            .server
            .as_ref()
            .expect("running")
            .cli(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "the audit chain does not verify on {}:\n{}{}",
            member.name,
            stdout(&verify),
            stderr(&verify)
        );
    }
    node.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_missed_10_000_entries_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts: Vec<String> = (0..MEMBERS).map(|_| "127.0.0.1".to_string()).collect();
    let ports: Vec<u16> = (0..MEMBERS).map(|_| stable_port()).collect();
    let advertised: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut members = members(dir.path(), &hosts, &ports, &advertised);
    for member in &mut members {
        member.start().await;
    }
    let leader = common::eventually(30, "a leader", || leader_of(&members, 0)).await;
    let down = (leader + 1) % MEMBERS;
    let missed_from = members[down].status().await.applied_index.unwrap_or(0);
    if let Some(mut server) = members[down].server.take() {
        server.kill9();
    }

    // 10 000 entries while it is down (jobs fail at once: no compute node), from a few
    // clients at a time so the writes do not all share entries.
    let client = members[leader].client();
    let target = missed_from + 10_000;
    let mut round = 0;
    loop {
        let status = members[leader].status().await;
        if status.last_log_index.unwrap_or(0) >= target
            && status.purged_index.unwrap_or(0) > missed_from
        {
            break;
        }
        let batch: Vec<_> = (0..4)
            .map(|k| {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        // Two members on a loaded machine may miss a leadership check and
                        // answer 503 for a moment: that write is not acknowledged, and is
                        // sent again under a new name (what is measured is the catch-up).
                        let mut attempt = 0;
                        loop {
                            let job = noop_job(&format!("missed-{round}-{k}-{i}-{attempt}"));
                            match client.put_job(&job, false).await {
                                Ok(_) => break,
                                Err(_) if attempt < 200 => {
                                    attempt += 1;
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                                Err(e) => panic!("not acknowledged after 10 s of retries: {e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for task in batch {
            task.await.expect("a submitter");
        }
        round += 1;
    }
    let leader_status = members[leader].status().await;
    let caught_up_to = leader_status.last_log_index.unwrap_or(0);

    let restarted = Instant::now();
    members[down].start().await;
    let status = common::eventually(120, "the restarted member to catch up", || {
        let member = &members[down];
        async move {
            let status = member.client().cluster_status().await.ok()?;
            (status.applied_index.unwrap_or(0) >= caught_up_to).then_some(status)
        }
    })
    .await;
    println!(
        "snapshot catch-up: {} entries missed (the leader's log starts after {}), caught up in {:.2} s",
        caught_up_to - missed_from,
        leader_status.purged_index.unwrap_or(0),
        restarted.elapsed().as_secs_f64()
    );
    assert!(
        status.snapshot_index.unwrap_or(0) > missed_from,
        "the member did not install a snapshot: {status:?}"
    );
    assert_eq!(
        chain(&members[down].client()).await,
        chain(&members[leader].client()).await,
        "the caught-up member's audit chain differs from the leader's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_at_run_time_and_the_ui_shows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts: Vec<String> = (0..MEMBERS + 1).map(|_| "127.0.0.1".to_string()).collect();
    let ports: Vec<u16> = (0..MEMBERS + 1).map(|_| stable_port()).collect();
    let advertised: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut members_now = members(
        dir.path(),
        &hosts[..MEMBERS],
        &ports[..MEMBERS],
        &advertised[..MEMBERS],
    );
    // The newcomer knows the three as its peers; they do not know it.
    let mut newcomer = members(dir.path(), &hosts, &ports, &advertised)
        .pop()
        .expect("a fourth member");
    for member in &mut members_now {
        member.start().await;
    }
    let leader = common::eventually(30, "a leader", || leader_of(&members_now, 0)).await;
    jobs_complete_or_fail(&members_now[leader].client(), "before-join", 3).await;
    newcomer.start().await;

    let server = members_now[leader].server.as_ref().expect("running");
    let joined = server.cli(&["cluster", "join", &advertised[MEMBERS]]);
    assert!(
        joined.status.success(),
        "{}{}",
        stdout(&joined),
        stderr(&joined)
    );
    let status = members_now[leader].status().await;
    assert_eq!(status.members.len(), MEMBERS + 1, "{status:?}");
    assert!(
        status
            .members
            .iter()
            .any(|m| m.name == newcomer.name && m.role == "Follower"),
        "{status:?}"
    );
    // It holds what was written before it joined.
    let reference = chain(&members_now[leader].client()).await;
    assert_eq!(chain(&newcomer.client()).await, reference);

    // The web UI's Cluster page shows every member and the leader.
    let page = reqwest::get(format!("http://127.0.0.1:{}/ui/cluster", newcomer.api_port))
        .await
        .expect("the cluster page")
        .text()
        .await
        .expect("its text");
    for member in members_now.iter().chain([&newcomer]) {
        assert!(
            page.contains(&member.name),
            "{} missing:\n{page}",
            member.name
        );
    }
    assert!(
        page.contains(&format!(
            "Leader: <strong>{}</strong>",
            members_now[leader].name
        )),
        "{page}"
    );

    let removed = server.cli(&["cluster", "remove", &newcomer.name]);
    assert!(
        removed.status.success(),
        "{}{}",
        stdout(&removed),
        stderr(&removed)
    );
    let status = members_now[leader].status().await;
    assert_eq!(status.members.len(), MEMBERS, "{status:?}");
    assert!(status.members.iter().all(|m| m.name != newcomer.name));
    jobs_complete_or_fail(&members_now[leader].client(), "after-leave", 3).await;
}

/// Submits noop jobs with no compute node: each fails at once ("not enough nodes"), which is a
/// terminal state reached through the scheduler, as good a write as any for the log.
async fn jobs_complete_or_fail(client: &ApiClient, prefix: &str, n: usize) {
    for i in 0..n {
        let put = client
            .put_job(&noop_job(&format!("{prefix}-{i}")), false)
            .await
            .unwrap_or_else(|e| panic!("{prefix}-{i} not acknowledged: {e}"));
        let id = put.job_id;
        common::eventually(30, "a job to end", || {
            let client = client.clone();
            let id = id.clone();
            async move {
                let job = client.get_job(&id, "").await.ok()?.job;
                job.state.state_type.is_terminal().then_some(())
            }
        })
        .await;
    }
}
