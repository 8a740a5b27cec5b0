//! The `wasm` engine: WebAssembly modules with WASI preview 1 on wasmtime, in process.
//!
//! Params as upstream's: `EntryModule` (the target of the input source holding the module),
//! `Entrypoint` (default `_start`), `Parameters` (the arguments), `ImportModules` (targets of
//! modules it imports from, linked under those names). The task's env is the module's
//! environment; its inputs are one read-only tree preopened at `/`; nothing else of the host is
//! visible. Memory is capped by the task's resources; a cancel or timeout interrupts a spinning
//! module through epoch interruption. Compiled modules are cached by content hash.
//! Every write of the module goes to the execution's log as it happens (`job logs --follow`
//! sees it live).

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::logs::{LogWriter, Stream};
use bacalhau_compute::{ExecutionContext, Executor, ExecutorError, PreparedInput};
use bacalhau_models::{RunCommandResult, Task};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use wasmtime::{
    Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::docker::OutputHead;

/// How often the engine's epoch advances: the granularity of cancels and timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The most a module may write in one call (WASI asks before each write).
const MAX_WRITE: usize = 1024 * 1024;
/// Modules kept compiled.
const CACHE_SIZE: usize = 64;

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Runs WASI modules. Clones share the engine and the module cache.
#[derive(Clone)]
pub struct WasmExecutor {
    engine: Engine,
    linker: Arc<Linker<State>>,
    cache: Arc<Mutex<HashMap<[u8; 32], Module>>>,
}

impl WasmExecutor {
    /// A WASM engine with epoch interruption, ticking on a thread of its own.
    pub fn new() -> Result<Self, ExecutorError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(|e| ExecutorError::Failed(format!("cannot start wasmtime: {e}")))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| ExecutorError::Failed(format!("cannot start the epoch thread: {e}")))?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut State| &mut state.wasi)
            .map_err(|e| ExecutorError::Failed(format!("cannot link WASI: {e}")))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The compiled module for `bytes`, compiling it once per distinct content.
    fn module(&self, bytes: &[u8]) -> Result<Module, ExecutorError> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(module) = self.lock_cache().get(&key) {
            return Ok(module.clone());
        }
        let module = Module::new(&self.engine, bytes).map_err(|e| {
            ExecutorError::InvalidSpec(format!("invalid WebAssembly module: {e:#}"))
        })?;
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(key, module.clone());
        Ok(module)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Module>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run_blocking(
        &self,
        context: &ExecutionContext,
        output: mpsc::UnboundedSender<(Stream, bytes::Bytes)>,
    ) -> Result<i64, ExecutorError> {
        let task = context
            .execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .ok_or_else(|| ExecutorError::InvalidSpec("the execution carries no task".into()))?;
        let params = WasmParams::read(task)?;
        let entry_path = entry_module(&context.inputs, &params.entry_module)?;
        let bytes = std::fs::read(&entry_path).map_err(|e| {
            ExecutorError::Failed(format!("cannot read {}: {e}", entry_path.display()))
        })?;
        let module = self.module(&bytes)?;

        let stdout = LiveOutput {
            stream: Stream::Stdout,
            sender: output.clone(),
        };
        let stderr = LiveOutput {
            stream: Stream::Stderr,
            sender: output,
        };
        let mut builder = WasiCtxBuilder::new();
        let program = params.entry_module.trim_start_matches('/').to_string();
        builder.arg(&program).args(&params.parameters);
        for (name, value) in &task.env {
            builder.env(name, value);
        }
        let execution = &context.execution;
        builder
            .env("BACALHAU_EXECUTION_ID", execution.id.as_str())
            .env("BACALHAU_JOB_ID", execution.job_id.as_str())
            .env(
                "BACALHAU_PARTITION_INDEX",
                execution.partition().0.to_string(),
            );
        builder.stdout(stdout).stderr(stderr);
        if context.inputs.iter().any(|i| i.in_tree) {
            let root = bacalhau_compute::inputs::root(&context.work_dir);
            builder
                .preopened_dir(&root, "/", FsPerms::ReadOnly)
                .map_err(|e| ExecutorError::Failed(format!("cannot mount the inputs: {e}")))?;
        }
        // Local directories are mounted where they are; WASI mounts directories only. The entry
        // module itself may be a local file: it is read, not mounted.
        for input in context
            .inputs
            .iter()
            .filter(|i| !i.in_tree && i.host_path != entry_path)
        {
            if !input.host_path.is_dir() {
                return Err(ExecutorError::InvalidSpec(format!(
                    "local input {} must be a directory for a WASM job",
                    input.host_path.display()
                )));
            }
            let perms = if input.read_write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&input.host_path, &input.target, perms)
                .map_err(|e| {
                    ExecutorError::Failed(format!("cannot mount {}: {e}", input.target))
                })?;
        }
        for result in &context.results {
            builder
                .preopened_dir(&result.host_path, &result.target, FsPerms::ReadWrite)
                .map_err(|e| {
                    ExecutorError::Failed(format!("cannot mount {}: {e}", result.target))
                })?;
        }
        let memory = task.resources.to_resources().map(|r| r.memory).unwrap_or(0);
        let mut limits = StoreLimitsBuilder::new();
        if memory > 0 {
            limits = limits.memory_size(usize::try_from(memory).unwrap_or(usize::MAX));
        }
        let mut store = Store::new(
            &self.engine,
            State {
                wasi: builder.build_p1(),
                limits: limits.build(),
            },
        );
        store.limiter(|state| &mut state.limits);
        let cancel = context.cancel.clone();
        store.epoch_deadline_callback(move |_| {
            if *cancel.borrow() {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store.set_epoch_deadline(1);
        // Imported modules are instantiated first, each linked under its name, in a linker of
        // this run's own.
        let mut own_linker = None;
        for name in &params.import_modules {
            let path = entry_module(&context.inputs, name)?;
            let bytes = std::fs::read(&path).map_err(|e| {
                ExecutorError::Failed(format!("cannot read {}: {e}", path.display()))
            })?;
            let imported = self.module(&bytes)?;
            let linker = own_linker.get_or_insert_with(|| (*self.linker).clone());
            let instance = linker.instantiate(&mut store, &imported).map_err(|e| {
                ExecutorError::InvalidSpec(format!(
                    "cannot instantiate import module {name}: {e:#}"
                ))
            })?;
            linker.instance(&mut store, name, instance).map_err(|e| {
                ExecutorError::InvalidSpec(format!("cannot link import module {name}: {e:#}"))
            })?;
        }
        let linker = own_linker.as_ref().unwrap_or(&self.linker);
        let instance = linker.instantiate(&mut store, &module).map_err(|e| {
            ExecutorError::InvalidSpec(format!("cannot instantiate the module: {e:#}"))
        })?;
        let function = instance
            .get_typed_func::<(), ()>(&mut store, &params.entrypoint)
            .map_err(|e| {
                ExecutorError::InvalidSpec(format!(
                    "the module has no function {:?} taking and returning nothing: {e}",
                    params.entrypoint
                ))
            })?;
        let exit_code = match function.call(&mut store, ()) {
            Ok(()) => 0,
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    i64::from(exit.0)
                } else if *context.cancel.borrow() {
                    return Err(ExecutorError::Cancelled);
                } else {
                    return Err(ExecutorError::JobFault(format!(
                        "the module trapped: {e:#}"
                    )));
                }
            }
        };
        drop(store);
        Ok(exit_code)
    }
}

/// A module's stdout or stderr: every write goes at once, as a chunk, to the task that
/// writes the execution's log, so `job logs --follow` sees output while the module runs.
#[derive(Clone)]
struct LiveOutput {
    stream: Stream,
    sender: mpsc::UnboundedSender<(Stream, bytes::Bytes)>,
}

impl LiveOutput {
    fn send(&self, bytes: bytes::Bytes) -> Result<(), std::io::Error> {
        self.sender
            .send((self.stream, bytes))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "log writer gone"))
    }
}

impl IsTerminal for LiveOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LiveOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LiveOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for LiveOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.send(bytes)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_WRITE)
    }
}

impl tokio::io::AsyncWrite for LiveOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(
            self.send(bytes::Bytes::copy_from_slice(buf))
                .map(|()| buf.len()),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The `wasm` engine's params.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmParams {
    /// The target of the input source with the module.
    pub entry_module: String,
    /// The function to call.
    pub entrypoint: String,
    /// The program's arguments.
    pub parameters: Vec<String>,
    /// Targets of input sources holding modules the entry module imports from; each is
    /// linked under its target as written (upstream's `ImportModules`).
    pub import_modules: Vec<String>,
}

impl WasmParams {
    /// Reads the params of a task's `wasm` engine.
    pub fn read(task: &Task) -> Result<Self, ExecutorError> {
        let entry_module = task
            .engine
            .param_str("EntryModule")
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| {
                ExecutorError::InvalidSpec("Engine.Params.EntryModule is required".into())
            })?
            .to_string();
        let entrypoint = task
            .engine
            .param_str("Entrypoint")
            .filter(|e| !e.is_empty())
            .unwrap_or("_start")
            .to_string();
        let parameters = match task.engine.param("Parameters") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
            Some(other) => {
                return Err(ExecutorError::InvalidSpec(format!(
                    "Engine.Params.Parameters must be a list of strings, found {other}"
                )));
            }
        };
        let import_modules = match task.engine.param("ImportModules") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ExecutorError::InvalidSpec(format!(
                            "Engine.Params.ImportModules must list input targets, found {v}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ExecutorError::InvalidSpec(format!(
                    "Engine.Params.ImportModules must be a list of input targets, found {other}"
                )));
            }
        };
        Ok(Self {
            entry_module,
            entrypoint,
            parameters,
            import_modules,
        })
    }
}

impl Executor for WasmExecutor {
    fn engine(&self) -> &'static str {
        "wasm"
    }

    fn run(
        &self,
        context: ExecutionContext,
    ) -> BoxFuture<'_, Result<RunCommandResult, ExecutorError>> {
        Box::pin(async move {
            let context = Arc::new(context);
            let shared = Arc::clone(&context);
            let io =
                |e: std::io::Error| ExecutorError::Failed(format!("cannot write the log: {e}"));
            let mut writer = LogWriter::create(&context.work_dir).await.map_err(io)?;
            let (output, mut chunks) = mpsc::unbounded_channel();
            // Module code runs on a blocking thread so it never stalls the async workers; its
            // output arrives here while it runs, and the channel closes when its store goes.
            let this = self.clone();
            let module = tokio::task::spawn_blocking(move || this.run_blocking(&shared, output));
            let mut head = OutputHead::default();
            let mut write_error = None;
            while let Some((stream, bytes)) = chunks.recv().await {
                head.add(stream, &bytes);
                if write_error.is_none()
                    && let Err(e) = writer.write(stream, &bytes).await
                {
                    // Keep draining so the module is never blocked by a full log disk.
                    write_error = Some(e);
                }
            }
            let exit_code = module
                .await
                .map_err(|e| ExecutorError::Failed(format!("the WASM thread failed: {e}")))??;
            if let Some(e) = write_error {
                return Err(io(e));
            }
            writer.finish().await.map_err(io)?;
            let (stdout, stdout_truncated, stderr, stderr_truncated) = head.into_parts();
            Ok(RunCommandResult {
                stdout,
                stdout_truncated,
                stderr,
                stderr_truncated,
                exit_code,
                error_msg: String::new(),
            })
        })
    }
}

/// `path` itself, or the one file in it when it is a directory holding just that (where a
/// downloaded module lands).
fn lone_file(path: &Path) -> PathBuf {
    let mut files = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path());
    match (files.next(), files.next()) {
        (Some(file), None) => file,
        _ => path.to_path_buf(),
    }
}

/// The entry module's file on the host. `EntryModule` is
/// the module's path as the task sees it: an input's target, or a file inside an input
/// directory (a `urlDownload` input puts its file there), or such a directory holding one file.
fn entry_module(inputs: &[PreparedInput], entry_module: &str) -> Result<PathBuf, ExecutorError> {
    let wanted = Path::new("/").join(entry_module.trim_start_matches('/'));
    inputs
        .iter()
        .filter_map(|input| {
            let rest = wanted.strip_prefix(&input.target).ok()?;
            let path = if rest.as_os_str().is_empty() {
                lone_file(&input.host_path)
            } else {
                input.host_path.join(rest)
            };
            path.is_file().then_some(path)
        })
        .next()
        .ok_or_else(|| {
            ExecutorError::InvalidSpec(format!(
                "EntryModule {entry_module:?} is no file of the task's input sources"
            ))
        })
}
