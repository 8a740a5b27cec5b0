//! The Docker engine against the real Docker engine: output, exit codes, memory limits,
//! timeouts, networks as upstream's, stop, and cleanup. Needs the busybox test images
//! (`scripts/build-test-images.sh`, run by `scripts/test.sh`).

mod common;

use bacalhau_models::{ExecutionStateType, JobStateType};
use common::{Server, eventually, free_port, stderr, stdout};
use std::process::Command;

async fn hybrid(dir: &std::path::Path, name: &str) -> Server {
    assert!(
        Command::new("docker")
            .args(["image", "inspect", "busybox:1.37.0"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "busybox:1.37.0 is missing: run scripts/build-test-images.sh"
    );
    Server::start_with(&dir.join(name), free_port(), &["serve", "--name", name]).await
}

fn containers_with_label(label: &str) -> String {
    let output = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world_prints_and_completes_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = hybrid(dir.path(), "docker-hello").await;
    let run = server.cli(&[
        "docker",
        "run",
        "busybox:1.37.0",
        "--",
        "echo",
        "Hello World",
    ]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(stdout(&run).contains("\nHello World\n"), "{}", stdout(&run));
    let jobs = server
        .client()
        .list_jobs(&Default::default())
        .await
        .unwrap()
        .items;
    let job = &jobs[0];
    assert_eq!(job.state.state_type, JobStateType::Completed);
    let executions = server
        .client()
        .job_executions(job.id.as_str())
        .await
        .unwrap()
        .items;
    let output = executions[0].run_output.clone().unwrap();
    assert_eq!(output.exit_code, 0);
    assert_eq!(output.stdout, "Hello World\n");
    // Removed after the end is reported, so looked for until it is gone.
    let label = format!("bacalhau.org/execution-id={}", executions[0].id);
    eventually(30, "the container to be removed", || async {
        containers_with_label(&label).is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_zero_exit_fails_the_job_with_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = hybrid(dir.path(), "docker-exit").await;
    let run = server.cli(&[
        "docker",
        "run",
        "--id-only",
        "busybox:1.37.0",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(run.status.code(), Some(1));
    let id = stdout(&run).trim().to_string();
    assert!(
        stderr(&run).contains("exited with code 3"),
        "{}",
        stderr(&run)
    );
    let describe = stdout(&server.cli(&["job", "describe", &id]));
    assert!(describe.contains("State         = Failed"), "{describe}");
    assert!(describe.contains("exited with code 3"), "{describe}");
    let executions = server.client().job_executions(&id).await.unwrap().items;
    assert_eq!(
        executions.len(),
        1,
        "a program's own failure is not retried"
    );
    assert_eq!(executions[0].run_output.as_ref().unwrap().exit_code, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_and_timeout_stop_the_container_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = hybrid(dir.path(), "docker-limits").await;
    let hog = server.cli(&[
        "docker",
        "run",
        "--memory",
        "64mb",
        "busybox:1.37.0",
        "--",
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(hog.status.code(), Some(1));
    assert!(
        stderr(&hog).contains("memory limit exceeded"),
        "{}",
        stderr(&hog)
    );

    let sleeper = server.cli(&[
        "docker",
        "run",
        "--timeout",
        "2",
        "busybox:1.37.0",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(sleeper.status.code(), Some(1));
    assert!(
        stderr(&sleeper).contains("timed out"),
        "{}",
        stderr(&sleeper)
    );
}

/// Upstream v1.7+: `Default` networking is a bridge, unless the node rejects networked jobs;
/// then it is none, and a job that asks for a network is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_network_is_a_bridge_unless_the_node_rejects_networked_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let open = hybrid(dir.path(), "docker-net-open").await;
    let interfaces = [
        "docker",
        "run",
        "busybox:1.37.0",
        "--",
        "cat",
        "/proc/net/dev",
    ];
    let run = open.cli(&interfaces);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains("eth0"), "{}", stdout(&run));
    drop(open);

    let strict = Server::start_with(
        &dir.path().join("docker-net-strict"),
        free_port(),
        &[
            "serve",
            "--name",
            "docker-net-strict",
            "-c",
            "JobAdmissionControl.RejectNetworkedJobs=true",
        ],
    )
    .await;
    // Only the loopback interface exists: nothing can leave the container.
    let run = strict.cli(&interfaces);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = stdout(&run);
    assert!(text.contains("lo:"), "{text}");
    assert!(!text.contains("eth0"), "{text}");
    let refused = strict.cli(&[
        "docker",
        "run",
        "--network",
        "full",
        "busybox:1.37.0",
        "--",
        "true",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("rejects networked jobs"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_the_container_and_orphans_are_reaped_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let orphan = Command::new("docker")
        .args([
            "create",
            "--label",
            "bacalhau.org/node-id=docker-stop",
            "busybox:1.37.0",
            "true",
        ])
        .output()
        .unwrap();
    assert!(orphan.status.success());
    let server = hybrid(dir.path(), "docker-stop").await;
    eventually(20, "the orphan to be removed", || async {
        containers_with_label("bacalhau.org/node-id=docker-stop")
            .is_empty()
            .then_some(())
    })
    .await;

    let run = server.cli(&[
        "docker",
        "run",
        "--id-only",
        "--wait=false",
        "busybox:1.37.0",
        "--",
        "sleep",
        "60",
    ]);
    let id = stdout(&run).trim().to_string();
    let client = server.client();
    eventually(20, "the container to run", || async {
        let executions = client.job_executions(&id).await.ok()?.items;
        executions
            .iter()
            .any(|e| e.compute_state.state_type == ExecutionStateType::Running)
            .then_some(())
    })
    .await;
    let stop = server.cli(&["job", "stop", &id]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    eventually(20, "the container to be gone", || async {
        containers_with_label("bacalhau.org/node-id=docker-stop")
            .is_empty()
            .then_some(())
    })
    .await;
    let job = client.get_job(&id, "").await.unwrap().job;
    assert_eq!(job.state.state_type, JobStateType::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_shows_lines_while_the_job_runs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let server = hybrid(dir.path(), "docker-logs").await;
    let run = server.cli(&[
        "docker",
        "run",
        "--id-only",
        "--wait=false",
        "busybox:1.37.0",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4; do echo line $i; sleep 1; done; echo done >&2",
    ]);
    let id = stdout(&run).trim().to_string();
    let mut follower = Command::new(common::binary())
        .args(["job", "logs", "--follow", &id])
        .env("BACALHAU_API_HOST", "127.0.0.1")
        .env("BACALHAU_API_PORT", server.port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first = tokio::task::spawn_blocking(move || {
        let first = lines.next();
        (first, lines)
    })
    .await
    .unwrap();
    let (first, lines) = first;
    assert_eq!(first.unwrap().unwrap(), "line 1");
    // The first line arrived while the job was still running.
    let job = server.client().get_job(&id, "").await.unwrap().job;
    assert_eq!(job.state.state_type, JobStateType::Running);
    let rest: Vec<String> =
        tokio::task::spawn_blocking(move || lines.map_while(Result::ok).collect())
            .await
            .unwrap();
    assert_eq!(rest, vec!["line 2", "line 3", "line 4", "done"]);
    assert!(follower.wait().unwrap().success());

    let tail = server.cli(&["job", "logs", "--tail=2", &id]);
    assert_eq!(stdout(&tail), "line 4\ndone\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_inputs_mount_only_allow_listed_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shared-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "from the host\n").unwrap();
    let allow = format!("Compute.AllowListedLocalPaths={}", data.display());
    let server = Server::start_with(
        &dir.path().join("docker-local"),
        free_port(),
        &["-c", &allow, "serve", "--name", "docker-local"],
    )
    .await;
    let mount = format!("file://{}:/data", data.display());
    let run = server.cli(&[
        "docker",
        "run",
        "-i",
        &mount,
        "busybox:1.37.0",
        "--",
        "cat",
        "/data/hello.txt",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains("from the host"), "{}", stdout(&run));
    // The mount is read-only.
    let write = server.cli(&[
        "docker",
        "run",
        "-i",
        &mount,
        "busybox:1.37.0",
        "--",
        "touch",
        "/data/new",
    ]);
    assert_eq!(write.status.code(), Some(1));
    assert!(!data.join("new").exists());

    let outside = server.cli(&[
        "docker",
        "run",
        "-i",
        "file:///etc:/data",
        "busybox:1.37.0",
        "--",
        "ls",
        "/data",
    ]);
    assert_eq!(outside.status.code(), Some(1));
    assert!(
        stderr(&outside).contains("does not allow-list local path /etc"),
        "{}",
        stderr(&outside)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_confined_and_run_as_the_user_the_job_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = hybrid(dir.path(), "docker-confined").await;
    let spec = dir.path().join("confined.yaml");
    std::fs::write(
        &spec,
        "Name: confined\nType: batch\nTasks:\n - Name: main\n   Engine:\n     Type: docker\n     Params:\n       Image: busybox:1.37.0\n       User: '1000:1000'\n       Entrypoint: [sh, -c, 'id -u; grep NoNewPrivs /proc/self/status; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max']\n",
    )
    .unwrap();
    let run = server.cli(&["job", "run", spec.to_str().unwrap()]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let out = stdout(&run);
    assert!(out.contains("\n1000\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("\n1024\n"), "{out}");

    // A spec cannot bind-mount host paths of its own.
    std::fs::write(
        &spec,
        "Name: binds\nType: batch\nTasks:\n - Name: main\n   Engine:\n     Type: docker\n     Params: {Image: 'busybox:1.37.0', Binds: ['/etc:/host-etc'], Entrypoint: [cat, /host-etc/hostname]}\n",
    )
    .unwrap();
    let run = server.cli(&["job", "run", spec.to_str().unwrap()]);
    assert!(!run.status.success());
    let text = format!("{}{}", stdout(&run), stderr(&run));
    assert!(
        text.contains("Engine.Params.Binds is not allowed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_networking_reaches_only_the_allowed_domains() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::FileServer::start(vec![(
        "hello.txt".into(),
        b"hello through the proxy".to_vec(),
    )]);
    let port = files.url.rsplit(':').next().unwrap().to_string();
    let server = Server::start_with(
        &dir.path().join("docker-http"),
        free_port(),
        &["serve", "--name", "docker-http"],
    )
    .await;
    // `localhost` is allowed (the proxy on the host resolves it to the file server);
    // 127.0.0.1 is the same server under a name the job did not list; without the proxy there
    // is no way out, not even to the host's own services.
    let script = format!(
        "wget -q -O- http://localhost:{port}/hello.txt; echo; \
         wget -q -O- http://127.0.0.1:{port}/hello.txt 2>&1 || echo refused-by-name; \
         gw=$(ip route | awk '/default/ {{print $3}}'); \
         wget -q -Y off -O- http://$gw:{api}/api/v1/agent/alive 2>&1 || echo no-way-to-host; \
         wget -q -Y off -O- http://1.1.1.1/ 2>&1 || echo no-way-out",
        api = server.port
    );
    let spec = dir.path().join("http.yaml");
    std::fs::write(
        &spec,
        serde_json::json!({
            "Name": "http-net", "Type": "batch",
            "Tasks": [{
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {"Image": "busybox:1.37.0", "Entrypoint": ["sh", "-c", script]}},
                "Network": {"Type": "HTTP", "Domains": ["localhost"]}
            }]
        })
        .to_string(),
    )
    .unwrap();
    let run = server.cli(&["job", "run", spec.to_str().unwrap()]);
    let out = stdout(&run);
    assert!(run.status.success(), "{out}{}", stderr(&run));
    assert!(out.contains("hello through the proxy"), "{out}");
    assert!(
        out.contains("403 Forbidden") && out.contains("refused-by-name"),
        "{out}"
    );
    assert!(out.contains("no-way-to-host"), "{out}");
    assert!(out.contains("no-way-out"), "{out}");
    assert!(
        !out.contains("\"Version\""),
        "the job reached the host's API:\n{out}"
    );
}
