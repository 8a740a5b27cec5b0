//! The WASM engine against real wasmtime, with the WASI test modules of `testdata/wasm`.

mod common;

use base64::Engine as _;
use common::{Server, free_port, stderr, stdout, wasm_binary};

/// The path of a test module, as `wasm run` takes it.
fn module(name: &str) -> String {
    common::wasm_module(name).to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_print_see_env_and_report_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "wasm-basics").await;

    let hello = server.cli(&["wasm", "run", &module("noop")]);
    assert!(hello.status.success(), "{}", stderr(&hello));
    assert!(
        stdout(&hello).contains("Hello, world!"),
        "{}",
        stdout(&hello)
    );

    let env = server.cli(&["wasm", "run", "-e", "GREETING=hola", &module("env")]);
    assert!(env.status.success(), "{}", stderr(&env));
    assert!(stdout(&env).contains("GREETING=hola"), "{}", stdout(&env));
    let listing = stdout(&env);
    let variables: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| name.starts_with("BACALHAU_") || *name == "GREETING")
        .collect();
    let mut sorted = variables.clone();
    sorted.sort_unstable();
    assert_eq!(variables.len(), 4, "{listing}");
    assert_eq!(variables, sorted, "env.wat prints the variables sorted");

    let exit = server.cli(&[
        "wasm",
        "run",
        "--id-only",
        "-e",
        "EXIT_CODE=5",
        &module("exit_code"),
    ]);
    assert_eq!(exit.status.code(), Some(1));
    let id = stdout(&exit).trim().to_string();
    let executions = server.client().job_executions(&id).await.unwrap().items;
    assert_eq!(executions[0].run_output.as_ref().unwrap().exit_code, 5);
    assert!(
        stderr(&exit).contains("exited with code 5"),
        "{}",
        stderr(&exit)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_reads_a_file_from_an_input_mount() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "wasm-cat").await;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let wasm = wasm_binary("cat");
    let spec = format!(
        r#"
Name: cat-input
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: cat.wasm
        Parameters: [/inputs/greeting.txt]
    InputSources:
      - Target: /cat.wasm
        Source: {{Type: inline, Params: {{URL: "data:application/wasm;base64,{}"}}}}
      - Target: /inputs/greeting.txt
        Source: {{Type: inline, Params: {{URL: "data:text/plain;base64,{}"}}}}
"#,
        encode(&wasm),
        encode(b"from the input mount\n")
    );
    let run = server.cli_with_stdin(&["job", "run", "-"], Some(&spec));
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(
        stdout(&run).contains("from the input mount"),
        "{}",
        stdout(&run)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_module_is_stopped_by_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "wasm-spin").await;
    // WAT text: wasmtime compiles it like a binary module.
    let spin = dir.path().join("spin.wasm");
    std::fs::write(&spin, r#"(module (func (export "_start") (loop br 0)))"#).unwrap();
    let run = server.cli(&["wasm", "run", "--timeout", "1", spin.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("timed out"), "{}", stderr(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_reads_an_allow_listed_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wasm-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("note.txt"), "local to the node\n").unwrap();
    let allow = format!("Compute.AllowListedLocalPaths={}", data.display());
    let server = Server::start_with(
        &dir.path().join("wasm-local"),
        free_port(),
        &["-c", &allow, "serve", "--name", "wasm-local"],
    )
    .await;
    let mount = format!("file://{}:/data", data.display());
    let run = server.cli(&[
        "wasm",
        "run",
        "-i",
        &mount,
        &module("cat"),
        "/data/note.txt",
    ]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(
        stdout(&run).contains("local to the node"),
        "{}",
        stdout(&run)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_shows_a_modules_output_while_it_still_runs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "wasm-logs").await;
    // Prints a line, then spins until stopped: its output can only be seen live.
    let module = dir.path().join("print-then-spin.wasm");
    std::fs::write(
        &module,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "first line\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 11))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop br 0)))"#,
    )
    .unwrap();
    let run = server.cli(&[
        "wasm",
        "run",
        "--id-only",
        "--wait=false",
        module.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let id = stdout(&run).trim().to_string();
    let mut follower = std::process::Command::new(common::binary())
        .args(["job", "logs", "--follow", &id])
        .env("BACALHAU_API_HOST", "127.0.0.1")
        .env("BACALHAU_API_PORT", server.port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first = tokio::task::spawn_blocking(move || lines.next())
        .await
        .unwrap();
    assert_eq!(first.unwrap().unwrap(), "first line");
    let job = server.client().get_job(&id, "").await.unwrap().job;
    assert_eq!(job.state.state_type, bacalhau_models::JobStateType::Running);
    let stop = server.cli(&["job", "stop", &id]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    let _ = follower.kill();
    let _ = follower.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_modules_are_linked_by_their_target() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "wasm-imports").await;
    let library = dir.path().join("answer.wat");
    std::fs::write(
        &library,
        r#"(module (func (export "answer") (result i32) (i32.const 42)))"#,
    )
    .unwrap();
    // Prints "imported 42" only when the import resolves to the library's function.
    let entry = dir.path().join("entry.wat");
    std::fs::write(
        &entry,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "/lib/answer.wasm" "answer" (func $answer (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "imported 42\n")
  (func (export "_start")
    (if (i32.eq (call $answer) (i32.const 42))
      (then
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 12))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))))"#,
    )
    .unwrap();
    let import = format!("{}:/lib/answer.wasm", library.display());
    let run = server.cli(&["wasm", "run", "-I", &import, entry.to_str().unwrap()]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(stdout(&run).contains("imported 42"), "{}", stdout(&run));
    // Without the import the module cannot be instantiated, and the job says why.
    let alone = server.cli(&["wasm", "run", entry.to_str().unwrap()]);
    assert!(!alone.status.success());
    assert!(stderr(&alone).contains("instantiate"), "{}", stderr(&alone));
}
