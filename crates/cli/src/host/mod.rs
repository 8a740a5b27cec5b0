//! What this machine offers to jobs: CPU, memory, disk and GPUs, detected and scaled by the
//! `Compute.AllocatedCapacity` settings (`80%` of the host, or absolute amounts), and the
//! labels upstream gives every node (`os_type`, `os_arch`, `name`, `GPU-<i>`...).

pub mod gpu;

use anyhow::{Context, Result, bail};
use bacalhau_models::Resources;
use bacalhau_models::resources::{parse_bytes, parse_cpu};
use std::path::Path;

/// The host's total resources.
pub fn detect(data_dir: &Path) -> Resources {
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let disk = rustix::fs::statvfs(data_dir)
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    let gpus = gpu::detect();
    Resources {
        cpu,
        memory,
        disk,
        gpu: gpus.len() as u64,
        gpus,
    }
}

/// The labels every node carries, as upstream's: they override configured labels of the same
/// name. GPU labels come with the compute role ([`gpu::labels`]).
pub fn automatic_labels(name: &str) -> Vec<(String, String)> {
    vec![
        ("os_type".into(), std::env::consts::OS.to_string()),
        ("os_arch".into(), go_arch().to_string()),
        ("name".into(), name.to_string()),
    ]
}

/// The architecture as Go (and so upstream) names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn scaled(
    setting: &str,
    total: f64,
    what: &str,
    parse: impl Fn(&str) -> Result<f64>,
) -> Result<f64> {
    let setting = setting.trim();
    if setting.is_empty() {
        return Ok(total);
    }
    if let Some(percent) = setting.strip_suffix('%') {
        let share: f64 = percent.trim().parse().with_context(|| {
            format!("Compute.AllocatedCapacity.{what}: invalid percentage {setting:?}")
        })?;
        if !(0.0..=100.0).contains(&share) {
            bail!("Compute.AllocatedCapacity.{what}: {setting} is not between 0% and 100%");
        }
        return Ok(total * share / 100.0);
    }
    parse(setting)
}

/// Applies the allocation settings (each `N%` or an absolute amount) to the host's totals.
pub fn allocate(
    host: &Resources,
    cpu: &str,
    memory: &str,
    disk: &str,
    gpu: &str,
) -> Result<Resources> {
    // A share of the GPUs rounds down, but leaves at least one when the host has any.
    let gpus = scaled(gpu, host.gpu as f64, "GPU", |t| {
        t.parse::<f64>()
            .context("Compute.AllocatedCapacity.GPU: expected a count")
    })?;
    let gpus = if gpu.trim().ends_with('%') && host.gpu > 0 && gpus > 0.0 {
        gpus.floor().max(1.0) as u64
    } else {
        gpus as u64
    };
    let bytes = |what: &'static str| {
        move |text: &str| -> Result<f64> { Ok(parse_bytes(what, text)? as f64) }
    };
    Ok(Resources {
        cpu: scaled(cpu, host.cpu, "CPU", |t| Ok(parse_cpu(t)?))?,
        memory: scaled(memory, host.memory as f64, "Memory", bytes("memory"))? as u64,
        disk: scaled(disk, host.disk as f64, "Disk", bytes("disk"))? as u64,
        gpu: gpus,
        // The first GPUs of the host, as many as allocated.
        gpus: host.gpus.iter().take(gpus as usize).cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_absolute_amounts() {
        let host = Resources {
            cpu: 4.0,
            memory: 1000,
            disk: 2000,
            ..Default::default()
        };
        let allocated = allocate(&host, "50%", "1kb", "100%", "").unwrap();
        assert_eq!(allocated.cpu, 2.0);
        assert_eq!(allocated.memory, 1000);
        assert_eq!(allocated.disk, 2000);
        assert!(allocate(&host, "150%", "", "", "").is_err());
        let with_gpus = Resources {
            gpu: 3,
            gpus: (0..3)
                .map(|index| bacalhau_models::resources::Gpu {
                    index,
                    ..Default::default()
                })
                .collect(),
            ..host.clone()
        };
        let allocated = allocate(&with_gpus, "", "", "", "50%").unwrap();
        assert_eq!((allocated.gpu, allocated.gpus.len()), (1, 1));
        assert_eq!(allocate(&with_gpus, "", "", "", "10%").unwrap().gpu, 1);
        assert_eq!(allocate(&with_gpus, "", "", "", "2").unwrap().gpu, 2);
        assert!(allocate(&host, "lots", "", "", "").is_err());
    }

    #[test]
    fn detection_finds_cpus_and_memory() {
        let host = detect(Path::new("/"));
        assert!(host.cpu >= 1.0);
        assert!(host.memory > 0);
    }
}
