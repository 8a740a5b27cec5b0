//! Engine overhead: submit → Completed through the HTTP API on an in-process hybrid node,
//! against the floors measured in the same run: a raw `docker run --rm` of the same image, the
//! engine API floor (create, start, wait for, read the logs of and remove the same container
//! through bollard in this process: no CLI, no node, no orchestrator), and the same WASM module
//! run in process with wasmtime (compiled once).
//!
//! `cargo bench -p bacalhau-api --bench engines [-- DOCKER_RUNS WASM_RUNS]`
//! Needs the busybox test image (`scripts/build-test-images.sh`).

mod common;

use bacalhau_client::ApiClient;
use bacalhau_models::{Job, parse_job_spec};
use base64::Engine as _;
use common::{BoxError, arg, median, ms, percentile};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Submits `job` and waits until its history says it ended. The job-level history is polled
/// rather than the job, whose inline module would make every poll ~100 KiB.
async fn run_to_completion(client: &ApiClient, job: &Job) -> Result<Duration, BoxError> {
    Ok(run_to_completion_id(client, job).await?.0)
}

/// [`run_to_completion`], also answering the job's ID.
async fn run_to_completion_id(
    client: &ApiClient,
    job: &Job,
) -> Result<(Duration, String), BoxError> {
    let started = Instant::now();
    let put = client.put_job(job, true).await?;
    // Told by the orchestrator as soon as the end is stored (its `wait`), as the floors are
    // told by the engine: no polling beside the job on these two cores.
    common::wait_completed(client, &put.job_id).await?;
    Ok((started.elapsed(), put.job_id))
}

/// Where one job's time went: each step of its history (`Job submitted`, the plan, the node's
/// reports, the job's end), as milliseconds after the submission was recorded.
async fn hops(client: &ApiClient, job_id: &str) -> Result<Vec<(String, f64)>, BoxError> {
    let history = client.job_history(job_id, "", "", "").await?.items;
    let at = |e: &bacalhau_models::JobHistory| {
        bacalhau_models::time::parse_rfc3339(&e.time)
            .ok_or_else(|| format!("bad time {:?}", e.time))
    };
    let first = history.first().ok_or("a job without history")?;
    let start = at(first)?;
    let mut steps = Vec::with_capacity(history.len());
    for event in &history {
        let step = match event.event.details.get("NewState") {
            Some(state) if event.execution_id.is_none() => format!("job {state}"),
            _ => event.event.message.clone(),
        };
        steps.push((step, (at(event)? - start) as f64 / 1e6));
    }
    Ok(steps)
}

/// The median offset of each step over every job's [`hops`], in the order of the first job's.
fn median_hops(all: &[Vec<(String, f64)>]) -> Vec<(String, f64)> {
    let Some(first) = all.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|(step, _)| {
            let mut offsets: Vec<f64> = all
                .iter()
                .filter_map(|job| job.iter().find(|(s, _)| s == step).map(|(_, at)| *at))
                .collect();
            offsets.sort_by(f64::total_cmp);
            (step.clone(), offsets[offsets.len() / 2])
        })
        .collect()
}

/// The Docker engine API's floor: what any program that runs the container and keeps its
/// output must ask of the engine (create, start, follow the logs while waiting, remove),
/// with nothing else; one run.
async fn docker_api_floor(docker: &bollard::Docker) -> Result<Duration, BoxError> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::{LogsOptions, RemoveContainerOptions, WaitContainerOptions};
    use futures_util::StreamExt;
    let started = Instant::now();
    let body = ContainerCreateBody {
        image: Some("busybox:1.37.0".into()),
        cmd: Some(vec!["echo".into(), "hi".into()]),
        // As the Docker engine asks for a job without a network: no sandbox to set up.
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await?
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;
    // The output is followed while the container runs (as any runner that keeps it must),
    // not read again after it exits.
    let mut logs = docker.logs(
        &id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    let reading = async {
        let mut output = Vec::new();
        while let Some(chunk) = logs.next().await {
            output.extend_from_slice(&chunk?.into_bytes());
        }
        Ok::<_, bollard::errors::Error>(output)
    };
    let mut wait = docker.wait_container(&id, None::<WaitContainerOptions>);
    let waiting = async {
        while let Some(waited) = wait.next().await {
            waited?;
        }
        Ok::<_, bollard::errors::Error>(())
    };
    let (output, waited) = tokio::join!(reading, waiting);
    let output = output?;
    waited?;
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await?;
    if output.is_empty() {
        return Err("the floor's container printed nothing".into());
    }
    Ok(started.elapsed())
}

fn wasm_floor(module_bytes: &[u8], runs: usize) -> Result<Duration, BoxError> {
    use wasmtime::{Engine, Linker, Module, Store};
    use wasmtime_wasi::p1::WasiP1Ctx;
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    let engine = Engine::default();
    let module = Module::new(&engine, module_bytes)?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let stdout = MemoryOutputPipe::new(1 << 20);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .arg("noop.wasm")
            .stdout(stdout.clone())
            .build_p1();
        let mut store = Store::new(&engine, wasi);
        let instance = linker.instantiate(&mut store, &module)?;
        let ran = instance
            .get_typed_func::<(), ()>(&mut store, "_start")?
            .call(&mut store, ());
        // Modules built by Rust end with `proc_exit(0)`, which wasmtime reports as an error.
        if let Err(e) = ran
            && e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|x| x.0) != Some(0)
        {
            return Err(e.into());
        }
        assert!(!stdout.contents().is_empty());
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let docker_runs = arg(1, 20);
    let wasm_runs = arg(2, 100);
    let engines = bacalhau_executors::available("bench-node", &Default::default()).await;
    let cluster = common::start(vec![("bench-node".into(), engines)]).await?;
    let client = cluster.client.clone();

    // Docker: the same container both ways.
    let mut raw = Vec::with_capacity(docker_runs);
    for _ in 0..docker_runs {
        let started = Instant::now();
        let status = std::process::Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "busybox:1.37.0",
                "echo",
                "hi",
            ])
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err("raw docker run failed: is busybox:1.37.0 built?".into());
        }
        raw.push(started.elapsed());
    }
    // The same container as the floors: no network (a job's `Default` network is a bridge,
    // whose endpoint setup alone costs the engine ~100 ms at start).
    let docker_job = parse_job_spec(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox:1.37.0, Parameters: [echo, hi]}}\n   Network: {Type: None}\n",
    )?;
    // Taken in turns, one floor run then one job, so a drift of the engine's speed over the
    // run (it varies by ±5 % from minute to minute here) weighs on both alike.
    let docker = bollard::Docker::connect_with_local_defaults()?;
    let mut floor_runs = Vec::with_capacity(docker_runs);
    let mut ours = Vec::with_capacity(docker_runs);
    for _ in 0..docker_runs {
        floor_runs.push(docker_api_floor(&docker).await?);
        ours.push(run_to_completion(&client, &docker_job).await?);
    }
    let api_floor = median(floor_runs);
    ours.sort();
    let docker_p99 = percentile(&ours, 0.99);
    let (raw_docker, our_docker) = (median(raw), median(ours));

    // WASM: the same module both ways; the first job compiles it, so it is left out.
    let module_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wasm/noop.wat");
    let module_bytes = wat::parse_file(&module_path)?;
    // WASI's synchronous calls block on a runtime of their own: keep them off the async threads.
    let floor_bytes = module_bytes.clone();
    let floor = tokio::task::spawn_blocking(move || wasm_floor(&floor_bytes, wasm_runs)).await??;
    let wasm_job = parse_job_spec(&format!(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {{Type: wasm, Params: {{EntryModule: noop.wasm}}}}\n   InputSources:\n    - Target: /noop.wasm\n      Source: {{Type: inline, Params: {{URL: \"data:application/wasm;base64,{}\"}}}}\n",
        base64::engine::general_purpose::STANDARD.encode(&module_bytes)
    ))?;
    run_to_completion(&client, &wasm_job).await?;
    let mut wasm = Vec::with_capacity(wasm_runs);
    let mut wasm_ids = Vec::with_capacity(wasm_runs);
    for _ in 0..wasm_runs {
        let (elapsed, id) = run_to_completion_id(&client, &wasm_job).await?;
        wasm.push(elapsed);
        wasm_ids.push(id);
    }
    wasm.sort();
    let mut wasm_hops = Vec::with_capacity(wasm_ids.len());
    for id in &wasm_ids {
        wasm_hops.push(hops(&client, id).await?);
    }

    // The noop engine: the same path with nothing to run.
    let noop_job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;
    run_to_completion(&client, &noop_job).await?;
    let mut noop = Vec::with_capacity(wasm_runs);
    for _ in 0..wasm_runs {
        noop.push(run_to_completion(&client, &noop_job).await?);
    }
    noop.sort();
    let noop_p99 = percentile(&noop, 0.99);
    let our_noop = median(noop);
    let wasm_p99 = percentile(&wasm, 0.99);
    let our_wasm = median(wasm);

    // The same WASM job with the result cache: the first run fills it, the rest are served
    // from it (checked: each served job's one execution names the run it copied).
    let mut cached_job = wasm_job.clone();
    cached_job
        .meta
        .insert(bacalhau_models::content::CACHE_META.into(), "true".into());
    run_to_completion(&client, &cached_job).await?;
    let mut hits = Vec::with_capacity(wasm_runs);
    let mut served = 0;
    for _ in 0..wasm_runs {
        let (elapsed, id) = run_to_completion_id(&client, &cached_job).await?;
        hits.push(elapsed);
        let executions = client.job_executions(&id).await?.items;
        served += usize::from(
            executions.len() == 1
                && executions[0]
                    .compute_state
                    .details
                    .contains_key(bacalhau_models::content::CACHED_FROM_DETAIL),
        );
    }
    hits.sort();
    let hit_p99 = percentile(&hits, 0.99);
    let our_hit = median(hits);

    println!(
        "| Docker busybox echo, submit → Completed vs raw `docker run --rm --network none` (median of {docker_runs}) | {:.1} ms | {:.1} ms | {:+.1} % |",
        ms(our_docker),
        ms(raw_docker),
        (our_docker.as_secs_f64() / raw_docker.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "| Docker busybox echo, submit → Completed vs the engine API floor (create, start, logs followed while waiting, remove through bollard in one process; both without a network; median of {docker_runs}) | {:.1} ms | {:.1} ms | {:+.1} % |",
        ms(our_docker),
        ms(api_floor),
        (our_docker.as_secs_f64() / api_floor.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "| WASM noop.wasm, submit → Completed vs in-process wasmtime (median of {wasm_runs}) | {:.2} ms | {:.3} ms | {:+.2} ms |",
        ms(our_wasm),
        ms(floor),
        ms(our_wasm) - ms(floor)
    );
    println!(
        "| Docker busybox echo, submit → Completed p99 | {:.1} ms | | |",
        ms(docker_p99)
    );
    println!(
        "| WASM noop.wasm, submit → Completed p99 | {:.2} ms | | |",
        ms(wasm_p99)
    );
    println!(
        "| WASM noop.wasm served from the result cache ({served} of {wasm_runs} served), submit → Completed vs a fresh run (medians) | {:.2} ms | {:.2} ms | {:.1}× faster |",
        ms(our_hit),
        ms(our_wasm),
        our_wasm.as_secs_f64() / our_hit.as_secs_f64().max(1e-9)
    );
    println!(
        "| WASM noop.wasm served from the result cache, p99 | {:.2} ms | | |",
        ms(hit_p99)
    );
    println!(
        "| noop engine, submit → Completed p50 / p99 (median of {wasm_runs}) | {:.2} / {:.2} ms | target p50 ≤ 3 ms | |",
        ms(our_noop),
        ms(noop_p99)
    );
    let steps = median_hops(&wasm_hops)
        .into_iter()
        .map(|(step, at)| format!("{step} {at:.2}"))
        .collect::<Vec<_>>()
        .join(" → ");
    println!(
        "| WASM noop.wasm, where the time goes (median ms after the submission's record, from the job's history) | {steps} | | |"
    );
    Ok(())
}
