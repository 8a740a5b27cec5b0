//! GPUs of this host, found as upstream finds them: `nvidia-smi`, then `rocm-smi`, then
//! `xpu-smi`, each only when installed. The parsers are pure and tested on recorded output;
//! [`detect`] runs the tools.

use bacalhau_models::resources::Gpu;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const MIB: u64 = 1024 * 1024;

/// Every GPU the vendor tools on PATH report, NVIDIA first; a missing or failing tool adds none.
pub fn detect() -> Vec<Gpu> {
    let mut gpus = Vec::new();
    if let Some(text) = run("nvidia-smi", &NVIDIA_ARGS) {
        gpus.extend(parse_nvidia(&text).unwrap_or_else(|e| skipped("nvidia-smi", &e)));
    }
    if let Some(text) = run("rocm-smi", &AMD_ARGS) {
        gpus.extend(parse_amd(&text).unwrap_or_else(|e| skipped("rocm-smi", &e)));
    }
    if let Some(list) = run("xpu-smi", &["discovery", "--json"]) {
        let found = parse_intel_list(&list).and_then(|ids| {
            ids.iter()
                .map(|id| {
                    let device = run(
                        "xpu-smi",
                        &["discovery", "--json", "--device", &id.to_string()],
                    )
                    .ok_or_else(|| format!("no details for device {id}"))?;
                    parse_intel_device(&device)
                })
                .collect::<Result<Vec<_>, _>>()
        });
        gpus.extend(found.unwrap_or_else(|e| skipped("xpu-smi", &e)));
    }
    gpus
}

/// `nvidia-smi`'s arguments: index, name and memory (MiB) of each GPU as bare CSV.
pub const NVIDIA_ARGS: [&str; 2] = [
    "--query-gpu=index,gpu_name,memory.total",
    "--format=csv,noheader,nounits",
];

/// `rocm-smi`'s arguments: name, PCI bus and VRAM of each card as JSON.
pub const AMD_ARGS: [&str; 5] = [
    "--showproductname",
    "--showbus",
    "--showmeminfo",
    "vram",
    "--json",
];

fn skipped(tool: &str, why: &str) -> Vec<Gpu> {
    tracing::debug!(
        tool,
        why,
        "cannot read this GPU tool's output; its GPUs are not used"
    );
    Vec::new()
}

/// Runs `tool` when it is on PATH; its stdout when it succeeds.
fn run(tool: &str, args: &[&str]) -> Option<String> {
    let path = find_on_path(tool)?;
    let output = Command::new(path).args(args).output().ok()?;
    if !output.status.success() {
        tracing::debug!(tool, status = %output.status, "GPU tool failed");
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

/// `0, Tesla T4, 15360` per line.
pub fn parse_nvidia(text: &str) -> Result<Vec<Gpu>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, name, memory] = fields[..] else {
                return Err(format!("expected index, name, memory in {line:?}"));
            };
            Ok(Gpu {
                index: index
                    .parse()
                    .map_err(|_| format!("bad index in {line:?}"))?,
                name: name.to_string(),
                vendor: "NVIDIA".into(),
                memory: memory
                    .parse()
                    .map_err(|_| format!("bad memory in {line:?}"))?,
                pci_address: String::new(),
            })
        })
        .collect()
}

/// `{"card0": {"Card series": ..., "PCI Bus": ..., "VRAM Total Memory (B)": ...}}`.
pub fn parse_amd(text: &str) -> Result<Vec<Gpu>, String> {
    let cards: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut gpus = Vec::new();
    for (card, fields) in &cards {
        // Other entries (a "system" section in newer versions) are not cards.
        let Some(index) = card
            .strip_prefix("card")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let field = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
        let bytes: u64 = field("VRAM Total Memory (B)")
            .parse()
            .map_err(|_| format!("{card}: bad VRAM Total Memory (B)"))?;
        gpus.push(Gpu {
            index,
            name: field("Card series").to_string(),
            vendor: "AMD/ATI".into(),
            memory: bytes / MIB,
            pci_address: field("PCI Bus").to_ascii_lowercase(),
        });
    }
    gpus.sort_by_key(|g| g.index);
    Ok(gpus)
}

/// The device IDs of `xpu-smi discovery --json`.
pub fn parse_intel_list(text: &str) -> Result<Vec<u64>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    value
        .get("device_list")
        .and_then(Value::as_array)
        .ok_or("no device_list")?
        .iter()
        .map(|device| {
            device
                .get("device_id")
                .and_then(Value::as_u64)
                .ok_or_else(|| "a device without device_id".to_string())
        })
        .collect()
}

/// One device of `xpu-smi discovery --json --device ID`.
pub fn parse_intel_device(text: &str) -> Result<Gpu, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let text_of = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
    let bytes: u64 = text_of("memory_physical_size_byte")
        .parse()
        .map_err(|_| "error parsing memory".to_string())?;
    Ok(Gpu {
        index: value
            .get("device_id")
            .and_then(Value::as_u64)
            .ok_or("no device_id")?,
        name: text_of("device_name").to_string(),
        vendor: "Intel".into(),
        memory: bytes / MIB,
        pci_address: text_of("pci_bdf_address").to_string(),
    })
}

/// Upstream's GPU labels: `GPU-<i>` (the model, spaces as dashes) and `GPU-<i>-Memory`
/// (`15360-MiB`), by position in the node's list.
pub fn labels(gpus: &[Gpu]) -> Vec<(String, String)> {
    gpus.iter()
        .enumerate()
        .flat_map(|(i, gpu)| {
            [
                (format!("GPU-{i}"), gpu.name.replace(' ', "-")),
                (format!("GPU-{i}-Memory"), format!("{}-MiB", gpu.memory)),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_csv() {
        let gpus = parse_nvidia(include_str!("testdata/nvidia-smi.csv")).unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[1].index, 1);
        assert_eq!(gpus[1].name, "NVIDIA A100-PCIE-40GB");
        assert_eq!(gpus[1].memory, 40960);
        assert_eq!(gpus[0].vendor, "NVIDIA");
        assert!(parse_nvidia("").unwrap().is_empty());
        assert!(parse_nvidia("0, T4").is_err());
    }

    #[test]
    fn rocm_smi_json() {
        let gpus = parse_amd(include_str!("testdata/rocm-smi.json")).unwrap();
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].name, "AMD Instinct MI100");
        assert_eq!(gpus[0].memory, 32752);
        assert_eq!(gpus[0].pci_address, "0000:c1:00.0");
        assert_eq!(gpus[0].vendor, "AMD/ATI");
        assert!(parse_amd("{}").unwrap().is_empty());
    }

    #[test]
    fn xpu_smi_json() {
        let ids = parse_intel_list(include_str!("testdata/xpu-smi.json")).unwrap();
        assert_eq!(ids, vec![0]);
        let gpu = parse_intel_device(include_str!("testdata/xpu-smi-device-0.json")).unwrap();
        assert_eq!(gpu.name, "Intel(R) Data Center GPU Flex 170");
        assert_eq!(gpu.memory, 16384);
        assert_eq!(gpu.pci_address, "0000:4d:00.0");
        assert_eq!(gpu.vendor, "Intel");
    }

    #[test]
    fn labels_as_upstream() {
        let gpus = parse_nvidia(include_str!("testdata/nvidia-smi.csv")).unwrap();
        assert_eq!(
            labels(&gpus),
            vec![
                ("GPU-0".to_string(), "NVIDIA-GeForce-RTX-3090".to_string()),
                ("GPU-0-Memory".into(), "24576-MiB".into()),
                ("GPU-1".into(), "NVIDIA-A100-PCIE-40GB".into()),
                ("GPU-1-Memory".into(), "40960-MiB".into()),
            ]
        );
    }
}
