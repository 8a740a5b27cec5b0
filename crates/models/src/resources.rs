//! Resource requests as users write them (`500m`, `1Gb`) and as numbers the scheduler compares.

use serde::{Deserialize, Serialize};

/// A task's resource request as written in a spec: CPU cores, memory, disk and GPUs as text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourcesConfig {
    /// CPU cores: `1`, `0.5` or millicores `500m`.
    #[serde(rename = "CPU", default, skip_serializing_if = "String::is_empty")]
    pub cpu: String,
    /// Memory in bytes with an optional unit: `512Mb`, `1GiB`.
    #[serde(rename = "Memory", default, skip_serializing_if = "String::is_empty")]
    pub memory: String,
    /// Disk in bytes with an optional unit.
    #[serde(rename = "Disk", default, skip_serializing_if = "String::is_empty")]
    pub disk: String,
    /// Number of GPUs.
    #[serde(rename = "GPU", default, skip_serializing_if = "String::is_empty")]
    pub gpu: String,
}

/// One GPU of a compute node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Gpu {
    /// Index of the device on its host.
    #[serde(rename = "Index", default)]
    pub index: u64,
    /// Model name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Vendor: `NVIDIA`, `AMD/ATI` or `Intel`.
    #[serde(rename = "Vendor", default)]
    pub vendor: String,
    /// Memory in MiB.
    #[serde(rename = "Memory", default)]
    pub memory: u64,
    /// PCI address.
    #[serde(rename = "PCIAddress", default)]
    pub pci_address: String,
}

/// Resources as numbers: what a task needs or what a node has.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// CPU cores.
    #[serde(rename = "CPU", default)]
    pub cpu: f64,
    /// Memory in bytes.
    #[serde(rename = "Memory", default)]
    pub memory: u64,
    /// Disk in bytes.
    #[serde(rename = "Disk", default)]
    pub disk: u64,
    /// Number of GPUs.
    #[serde(rename = "GPU", default)]
    pub gpu: u64,
    /// The GPUs themselves, where known.
    #[serde(rename = "GPUs", default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<Gpu>,
}

impl Resources {
    /// Whether every amount of `self` fits within `capacity`.
    pub fn fits_in(&self, capacity: &Resources) -> bool {
        self.cpu <= capacity.cpu + f64::EPSILON
            && self.memory <= capacity.memory
            && self.disk <= capacity.disk
            && self.gpu <= capacity.gpu
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resources) {
        self.cpu += other.cpu;
        self.memory = self.memory.saturating_add(other.memory);
        self.disk = self.disk.saturating_add(other.disk);
        self.gpu = self.gpu.saturating_add(other.gpu);
    }

    /// Subtracts `other` from `self`, never going below zero.
    pub fn subtract(&mut self, other: &Resources) {
        self.cpu = (self.cpu - other.cpu).max(0.0);
        self.memory = self.memory.saturating_sub(other.memory);
        self.disk = self.disk.saturating_sub(other.disk);
        self.gpu = self.gpu.saturating_sub(other.gpu);
    }
}

/// Why a resource string could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    /// The text is not a number with a known unit.
    #[error("invalid {what} {text:?}: {reason}")]
    Invalid {
        /// Which resource: CPU, memory, disk or GPU.
        what: &'static str,
        /// The text as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ResourcesConfig {
    /// Reads the request into numbers; empty fields are zero.
    pub fn to_resources(&self) -> Result<Resources, ResourceError> {
        Ok(Resources {
            cpu: parse_cpu(&self.cpu)?,
            memory: parse_bytes("memory", &self.memory)?,
            disk: parse_bytes("disk", &self.disk)?,
            gpu: parse_count("GPU", &self.gpu)?,
            gpus: Vec::new(),
        })
    }
}

fn invalid(what: &'static str, text: &str, reason: impl Into<String>) -> ResourceError {
    ResourceError::Invalid {
        what,
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// Parses CPU cores: `2`, `0.5` or Kubernetes millicores `500m`.
pub fn parse_cpu(text: &str) -> Result<f64, ResourceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(0.0);
    }
    let (number, scale) = match trimmed.strip_suffix('m') {
        Some(milli) => (milli, 1000.0),
        None => (trimmed, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| invalid("CPU", text, "expected cores such as 1, 0.5 or 500m"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(invalid("CPU", text, "must be a non-negative number"));
    }
    Ok(value / scale)
}

fn parse_count(what: &'static str, text: &str) -> Result<u64, ResourceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(0);
    }
    trimmed
        .parse()
        .map_err(|_| invalid(what, text, "expected a whole non-negative number"))
}

/// Parses a byte size: a number with an optional unit (`kb`/`k` = 1000, `kib`/`ki` = 1024, up to
/// exabytes), case-insensitive, as upstream's `humanize.ParseBytes`.
pub fn parse_bytes(what: &'static str, text: &str) -> Result<u64, ResourceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(0);
    }
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| invalid(what, text, "expected a size such as 512mb or 2Gi"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        "z" | "zb" | "zi" | "zib" | "y" | "yb" | "yi" | "yib" => {
            return Err(invalid(what, text, "too large"));
        }
        other => return Err(invalid(what, text, format!("unknown unit {other:?}"))),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid(what, text, "too large"));
    }
    Ok(bytes as u64)
}

/// Formats a byte count the way upstream's tables do: `512 MB`, `1.5 GB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_cores_and_millicores() {
        assert_eq!(parse_cpu("500m").unwrap(), 0.5);
        assert_eq!(parse_cpu("2").unwrap(), 2.0);
        assert_eq!(parse_cpu("").unwrap(), 0.0);
        assert!(parse_cpu("lots").is_err());
        assert!(parse_cpu("-1").is_err());
    }

    #[test]
    fn bytes_accept_decimal_and_binary_units() {
        assert_eq!(parse_bytes("memory", "512Mb").unwrap(), 512_000_000);
        assert_eq!(parse_bytes("memory", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("memory", "64mb").unwrap(), 64_000_000);
        assert_eq!(parse_bytes("memory", "100").unwrap(), 100);
    }

    #[test]
    fn bytes_reject_unknown_units_and_overflow() {
        let err = parse_bytes("memory", "1zb").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert!(parse_bytes("memory", "12 parsecs").is_err());
        assert!(parse_bytes("memory", "abc").is_err());
    }

    #[test]
    fn fits_compares_every_amount() {
        let need = Resources {
            cpu: 1.0,
            memory: 10,
            ..Default::default()
        };
        let have = Resources {
            cpu: 2.0,
            memory: 5,
            ..Default::default()
        };
        assert!(!need.fits_in(&have));
    }
}
