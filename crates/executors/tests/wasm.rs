//! The `wasm` engine through the `Executor` trait, on real wasmtime, with the WASI test
//! modules of `testdata/wasm` compiled by the `wat` crate: output, exit codes, the
//! environment, read-only inputs, cancelling a spinning module, and bad specs.
//! (`crates/cli/tests/wasm.rs` runs the same modules through the binary and a node.)

mod common;

use bacalhau_compute::{Executor, ExecutorError};
use bacalhau_executors::wasm::WasmExecutor;
use bacalhau_models::{RunCommandResult, SpecConfig};
use common::Run;
use std::path::Path;
use std::time::Duration;

/// The WASI test module `testdata/wasm/NAME.wat` compiled to a binary module.
fn module(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wasm")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A run of `wasm`, the module at `/main.wasm` with `parameters`.
fn wasm_run(wasm: &[u8], parameters: &[&str]) -> Run {
    let mut engine = SpecConfig::of_type("wasm");
    engine
        .params
        .insert("EntryModule".into(), "/main.wasm".into());
    engine
        .params
        .insert("Parameters".into(), parameters.to_vec().into());
    Run::new(engine).input("/main.wasm", wasm)
}

fn engine() -> WasmExecutor {
    WasmExecutor::new().expect("wasmtime starts")
}

async fn run(run: &Run) -> Result<RunCommandResult, ExecutorError> {
    tokio::time::timeout(Duration::from_secs(60), engine().run(run.context()))
        .await
        .expect("the module ends within 60s")
}

#[tokio::test]
async fn stdout_is_captured_in_the_result_and_the_log() {
    let hello = wasm_run(&module("noop"), &[]);
    let output = run(&hello).await.expect("noop.wat runs");
    assert_eq!(output.exit_code, 0);
    assert_eq!(output.stdout, "Hello, world!\n");
    assert_eq!(output.stderr, "");
    assert!(!output.stdout_truncated);
    assert_eq!(hello.log("stdout"), "Hello, world!\n");
}

#[tokio::test]
async fn the_exit_code_is_the_result_not_an_error() {
    for code in ["0", "5"] {
        let exiting = wasm_run(&module("exit_code"), &[]).env("EXIT_CODE", code);
        let output = run(&exiting).await.expect("exit_code.wat runs");
        assert_eq!(output.exit_code.to_string(), code);
        assert_eq!(output.stdout, format!("Exiting with {code}\n"));
    }
}

#[tokio::test]
async fn the_task_env_and_the_execution_s_variables_are_visible() {
    let env = wasm_run(&module("env"), &[]).env("GREETING", "hola");
    let output = run(&env).await.expect("env.wat runs");
    assert_eq!(output.exit_code, 0);
    let id = env.execution.id.as_str();
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert!(lines.contains(&"GREETING=hola"), "{}", output.stdout);
    assert!(
        lines.contains(&format!("BACALHAU_EXECUTION_ID={id}").as_str()),
        "{}",
        output.stdout
    );
    assert!(
        lines.contains(&"BACALHAU_JOB_ID=j-engine-test"),
        "{}",
        output.stdout
    );
    // Nothing of the host's environment leaks in.
    assert!(
        !lines.iter().any(|l| l.starts_with("PATH=")),
        "{}",
        output.stdout
    );
}

#[tokio::test]
async fn an_input_is_readable_at_its_target() {
    let cat = wasm_run(&module("cat"), &["/inputs/greeting.txt"])
        .input("/inputs/greeting.txt", b"from the input mount\n");
    let output = run(&cat).await.expect("cat.wat runs");
    assert_eq!(output.exit_code, 0, "{}", output.stdout);
    assert_eq!(output.stdout, "from the input mount\n");
}

#[tokio::test]
async fn a_missing_file_is_the_module_s_own_failure() {
    let cat = wasm_run(&module("cat"), &["/inputs/absent.txt"]);
    let output = run(&cat).await.expect("cat.wat runs");
    assert_eq!(output.exit_code, 1);
    assert!(
        output.stderr.contains("cat: cannot read"),
        "{}",
        output.stderr
    );
}

/// Tries to create `/written.txt` under the preopened input tree (fd 3) and exits with the
/// WASI errno `path_open` returned (0 when the file was created).
const WRITE_ATTEMPT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "written.txt")
  (func (export "_start")
    ;; oflags 1: create; rights: fd_write (1 << 6).
    (call $proc_exit
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 11)
                       (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0)
                       (i32.const 0)))))
"#;

#[tokio::test]
async fn inputs_are_mounted_read_only() {
    let wasm = wat::parse_str(WRITE_ATTEMPT).expect("the module compiles");
    let writer = wasm_run(&wasm, &[]);
    let output = run(&writer).await.expect("the module runs");
    assert_ne!(
        output.exit_code, 0,
        "the module created a file in its inputs"
    );
    let root = bacalhau_compute::inputs::root(&writer.work_dir);
    assert!(!root.join("written.txt").exists());
}

#[tokio::test]
async fn a_cancel_stops_a_spinning_module() {
    let wasm = wat::parse_str(r#"(module (func (export "_start") (loop br 0)))"#)
        .expect("the module compiles");
    let spin = wasm_run(&wasm, &[]);
    let engine = engine();
    let pending = engine.run(spin.context());
    let cancel = spin.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.send_replace(true);
    });
    let output = tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("the cancel stops the module within 20s");
    assert!(
        matches!(output, Err(ExecutorError::Cancelled)),
        "{output:?}"
    );
}

#[tokio::test]
async fn a_trap_is_the_job_s_fault() {
    let wasm = wat::parse_str(r#"(module (func (export "_start") unreachable))"#)
        .expect("the module compiles");
    let trap = wasm_run(&wasm, &[]);
    match run(&trap).await {
        Err(e @ ExecutorError::JobFault(_)) => {
            assert!(e.to_string().contains("trapped"), "{e}");
            assert!(!e.retryable());
        }
        other => panic!("expected a job fault, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_specs_are_refused_as_invalid() {
    // Not WebAssembly at all.
    let garbage = wasm_run(b"not a module", &[]);
    // An entry module no input provides.
    let mut elsewhere = wasm_run(&module("noop"), &[]);
    elsewhere
        .task()
        .engine
        .params
        .insert("EntryModule".into(), "/other.wasm".into());
    // No entry module at all.
    let mut unnamed = wasm_run(&module("noop"), &[]);
    unnamed.task().engine.params.remove("EntryModule");
    for (case, reason) in [
        (garbage, "invalid WebAssembly module"),
        (elsewhere, r#"EntryModule "/other.wasm" is no file"#),
        (unnamed, "Engine.Params.EntryModule is required"),
    ] {
        match run(&case).await {
            Err(ExecutorError::InvalidSpec(message)) => {
                assert!(message.contains(reason), "{message}")
            }
            other => panic!("expected {reason:?}, got {other:?}"),
        }
    }
}
