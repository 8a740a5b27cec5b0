//! Starts the real `bacalhau` binary on loopback with a temporary data dir, for integration
//! tests. Server output goes to a log file that is printed when a test fails.

#![allow(dead_code)]

pub mod runs;
pub mod webdriver;

use bacalhau_client::{ApiClient, ClientOptions, Credentials};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_bacalhau")
}

/// A free loopback port.
/// The WASI test module `testdata/wasm/NAME.wat` (WebAssembly text; `wasm run` compiles it).
pub fn wasm_module(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wasm")
        .join(format!("{name}.wat"));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The WASI test module `testdata/wasm/NAME.wat` compiled to a binary module.
pub fn wasm_binary(name: &str) -> Vec<u8> {
    let path = wasm_module(name);
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A port free on loopback for a server under test to listen on, taken from below the
/// kernel's ephemeral range: a port from that range, once released here, can be taken by any
/// outgoing connection or `bind(0)` (another test's, or the server's own) before the server
/// binds it, and the server then fails with "Address already in use". Each call in a process
/// moves on to the next port, so parallel tests do not pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOWEST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_from <= LOWEST + 1_000 {
        // No room below the range: fall back to one the kernel hands out.
        return std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on loopback");
    }
    let span = ephemeral_from - LOWEST;
    // Test binaries run one after another, but spread them anyway.
    let start = std::process::id().wrapping_mul(7_919);
    for _ in 0..span {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(LOWEST + offset).expect("below the ephemeral range");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on loopback between {LOWEST} and {ephemeral_from}");
}

/// Settings that make node loss visible in about a second, for tests.
pub const FAST_HEARTBEATS: &[&str] = &[
    "-c",
    "Compute.Heartbeat.Interval=100ms",
    "-c",
    "Orchestrator.NodeManager.DisconnectTimeout=1s",
    "-c",
    "Orchestrator.NodeManager.RescheduleGracePeriod=2s",
];

/// Settings every test node gets: its local results server on a free port, so tests in
/// parallel do not fight over the default 6001.
pub const TEST_PORTS: &[&str] = &["-c", "Publishers.Types.Local.Port=0"];

/// Credentials for the test S3 server (moto accepts any).
pub const S3_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

fn spawn_logged(command: &mut Command, log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("cannot create log");
    command
        .stdout(Stdio::from(log_file.try_clone().expect("log handle")))
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("cannot start bacalhau")
}

/// A compute-only node process dialing an orchestrator.
pub struct ComputeProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl ComputeProcess {
    /// Starts `bacalhau serve --compute --name NAME` against `orchestrator` (`host:port`).
    pub fn start(data_dir: &Path, name: &str, orchestrator: &str, extra: &[&str]) -> Self {
        Self::start_with_env(data_dir, name, orchestrator, extra, &[])
    }

    /// [`ComputeProcess::start`] with extra environment variables.
    pub fn start_with_env(
        data_dir: &Path,
        name: &str,
        orchestrator: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let log = data_dir.with_extension("compute.log");
        let child = spawn_logged(
            Command::new(binary())
                .args(FAST_HEARTBEATS)
                .args(TEST_PORTS)
                .args([
                    "serve",
                    "--compute",
                    "--name",
                    name,
                    "--orchestrators",
                    orchestrator,
                ])
                .arg("--data-dir")
                .arg(data_dir)
                .args(extra)
                .envs(env.iter().copied())
                .env("HOME", data_dir),
            &log,
        );
        Self { child, log }
    }

    /// Kills the node with SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ComputeProcess {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- compute log ({}) ---\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// Polls `check` until it returns `Some`, failing loudly after `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {seconds}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until job `id` is Completed, failing loudly after `seconds`.
pub async fn wait_completed(client: &ApiClient, id: &str, seconds: u64) {
    eventually(seconds, &format!("job {id} to complete"), || async {
        let job = client.get_job(id, "").await.ok()?.job;
        (job.state.state_type == bacalhau_models::JobStateType::Completed).then_some(())
    })
    .await
}

/// Waits until at least `n` compute nodes are connected, failing loudly after 30 s.
pub async fn wait_nodes(client: &ApiClient, n: usize) {
    eventually(30, &format!("{n} connected nodes"), || async {
        let nodes = client.list_nodes().await.ok()?.nodes;
        let connected = nodes
            .iter()
            .filter(|n| {
                n.connection_state.status == bacalhau_models::node::ConnectionStatus::Connected
                    && n.info.node_type == bacalhau_models::node::NodeType::Compute
            })
            .count();
        (connected >= n).then_some(())
    })
    .await
}

/// Runs the CLI against `server` and returns its stdout, failing the test with its output if
/// it fails.
pub fn run_ok(server: &Server, args: &[&str]) -> String {
    let run = server.cli(args);
    assert!(
        run.status.success(),
        "{args:?}: {}{}",
        stdout(&run),
        stderr(&run)
    );
    stdout(&run)
}

/// A running `bacalhau serve`.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// The CA that a TLS server's certificate chains to; `None` for plain HTTP.
    pub tls_ca: Option<PathBuf>,
}

impl Server {
    /// Starts an orchestrator on a free port with `data_dir`, and waits until it answers.
    pub async fn start(data_dir: &Path) -> Server {
        Self::start_on(data_dir, free_port()).await
    }

    /// Starts an orchestrator on `port`.
    pub async fn start_on(data_dir: &Path, port: u16) -> Server {
        Self::start_with(data_dir, port, &["serve", "--orchestrator"]).await
    }

    /// Starts a hybrid node named `name` with its data under `dir`.
    pub async fn hybrid(dir: &Path, name: &str) -> Server {
        Self::start_with(&dir.join(name), free_port(), &["serve", "--name", name]).await
    }

    /// Starts `bacalhau ARGS...` listening on `port`, e.g. a devstack or a hybrid node, with
    /// fast heartbeats so node loss is noticed within seconds.
    pub async fn start_with(data_dir: &Path, port: u16, args: &[&str]) -> Server {
        Self::start_with_env(data_dir, port, args, &[]).await
    }

    /// [`Server::start_with`] with extra environment variables.
    pub async fn start_with_env(
        data_dir: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Self::start_full(data_dir, port, args, env, None).await
    }

    /// [`Server::start_with_env`] for a server that serves TLS with a certificate signed by
    /// `tls_ca`, when given.
    pub async fn start_full(
        data_dir: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
        tls_ca: Option<&Path>,
    ) -> Server {
        let log = data_dir.with_extension(format!("{port}.log"));
        let child = spawn_logged(
            Command::new(binary())
                // Global settings first, so `-c` pairs in `args` override them.
                .args(FAST_HEARTBEATS)
                .args(TEST_PORTS)
                .envs(env.iter().copied())
                .args(args)
                .args(["--api-host", "127.0.0.1", "--api-port"])
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(data_dir)
                .env("HOME", data_dir),
            &log,
        );
        let mut server = Server {
            child,
            port,
            data_dir: data_dir.to_path_buf(),
            log,
            tls_ca: tls_ca.map(Path::to_path_buf),
        };
        server.wait_alive().await;
        server
    }

    /// A client of this server (trusting its CA when it serves TLS).
    pub fn client(&self) -> ApiClient {
        self.client_with(None)
    }

    /// A client of this server sending `credentials`.
    pub fn client_with(&self, credentials: Option<Credentials>) -> ApiClient {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let options = ClientOptions {
            credentials,
            ca_file: self.tls_ca.clone(),
            insecure: false,
        };
        ApiClient::with_options(&format!("{scheme}://127.0.0.1:{}", self.port), &options)
            .expect("client")
    }

    async fn wait_alive(&mut self) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.alive().await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "server exited with {status} before answering:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server did not answer within 30s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's output so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    /// Runs the CLI against this server, feeding `stdin`.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.cli_full(args, stdin, &[])
    }

    /// Runs the CLI against this server with extra environment variables.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cli_full(args, None, env)
    }

    fn cli_full(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        use std::io::Write;
        let mut child = Command::new(binary())
            .args(args)
            .envs(env.iter().copied())
            .env("BACALHAU_API_HOST", "127.0.0.1")
            .env("BACALHAU_API_PORT", self.port.to_string())
            .envs(
                self.tls_ca
                    .iter()
                    .map(|ca| ("BACALHAU_API_TLS_CAFILE", ca.as_os_str())),
            )
            .env("HOME", &self.data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run bacalhau");
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("bacalhau did not finish")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- server log ({}) ---\n{}",
                self.log.display(),
                self.logs()
            );
        }
    }
}

/// Text of a command's stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Text of a command's stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An S3 server (moto, from the test venv that `scripts/setup-test-env.sh` makes) on a free
/// loopback port, killed on drop.
pub struct S3Server {
    child: Child,
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts it and waits until it answers.
    pub async fn start(dir: &Path) -> S3Server {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
        assert!(
            venv.exists(),
            "{} is missing: run scripts/setup-test-env.sh",
            venv.display()
        );
        let port = free_port();
        let child = spawn_logged(
            Command::new(&venv).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
            &dir.join("moto.log"),
        );
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        eventually(30, "the S3 server to answer", || {
            let request = http.get(&server.endpoint).send();
            async move { request.await.ok() }
        })
        .await;
        server
    }

    /// Creates a bucket (moto takes unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(response.status().is_success(), "{:?}", response.status());
    }

    fn bucket(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("s3 client")
    }

    /// Writes an object.
    pub async fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        use object_store::ObjectStore;
        self.bucket(bucket)
            .put(&key.into(), body.to_vec().into())
            .await
            .expect("put object");
    }

    /// Reads an object, `None` when it is not there.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStore;
        let got = self.bucket(bucket).get(&key.into()).await.ok()?;
        Some(got.bytes().await.ok()?.to_vec())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP server on loopback that serves fixed files, for `urlDownload` inputs.
pub struct FileServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl FileServer {
    /// Serves `files` (path without the leading `/`, content) until the test ends.
    pub fn start(files: Vec<(String, Vec<u8>)>) -> FileServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                let found = files.iter().find(|(name, _)| path == format!("/{name}"));
                let mut stream = &stream;
                let _ = match found {
                    Some((_, body)) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        FileServer { url }
    }
}

/// Runs the CLI with only `env` added (no server of this harness behind it).
pub fn cli_raw(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().expect("home");
    Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .env("HOME", home.path())
        .output()
        .expect("cannot run bacalhau")
}

/// A bcrypt hash of `password` from `bacalhau auth hash-password`, as an operator makes one.
pub fn hash_password(password: &str) -> String {
    use std::io::Write as _;
    let output = Command::new(binary())
        .args(["auth", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{password}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("bacalhau auth hash-password");
    assert!(output.status.success(), "{}", stderr(&output));
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(hash.starts_with("$2"), "{hash}");
    hash
}

/// Set in the re-run of a test inside a network namespace.
const INSIDE_NETNS: &str = "BACALHAU_TEST_IN_NETNS";

/// Runs test `name` again inside a network namespace with only loopback up (`unshare -n`, as
/// root), so no peer-to-peer packet can leave the machine; true when this is that run (the
/// caller then does the work), false in the outer run (which has checked the inner one passed).
pub fn inside_netns(name: &str) -> bool {
    if std::env::var_os(INSIDE_NETNS).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", name, "--nocapture"])
        .env(INSIDE_NETNS, "1")
        .status()
        .expect("unshare (util-linux, as root) runs the test without a network");
    assert!(
        status.success(),
        "{name} failed inside its network namespace"
    );
    false
}

/// Held while a devstack runs Docker jobs. Devstacks name their nodes `node-0`, `node-1`...,
/// and a node removes the Docker containers labelled with its name when it starts (what a
/// crash left behind), so two devstacks on one Docker engine at once (tests of one binary run
/// in parallel, and `inside_netns` re-runs a test in a child process) could remove each
/// other's just-created containers. An exclusive lock on a file serialises them.
pub fn devstack_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("bacalhau-tests-devstack.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("the devstack lock file");
    file.lock().expect("the devstack lock");
    file
}

/// A TCP forwarder that can cut every connection and refuse new ones until healed.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cut);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused in effect
                }
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let watch = async {
                        while !flag.load(Ordering::SeqCst) {
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
        Proxy { port, cut }
    }

    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}
