//! Content-addressed data on one node, end to end: ingestion (a URL → a job publishing with
//! `-p ipfs` → a CID), jobs reading `ipfs://CID` (a directory, a path under it, a WASM
//! module), `job get` checking every block, and a block altered on disk caught by name.

mod common;

use bacalhau_content::{Cid, CidVersion, import_bytes};
use common::{FileServer, Server, run_ok, stderr, stdout};
use std::path::{Path, PathBuf};

/// The CID the node published for a job.
async fn published_cid(server: &Server, id: &str) -> String {
    let executions = server.client().job_executions(id).await.unwrap().items;
    let result = executions[0]
        .published_result
        .clone()
        .expect("a published result");
    assert_eq!(result.r#type, "ipfs");
    result.param_str("CID").expect("a CID").to_string()
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_from_a_url_then_compute_on_the_cid() {
    let dir = tempfile::tempdir().unwrap();
    let table = b"city,population\nLisbon,545000\nPorto,232000\n".to_vec();
    let module = common::wasm_binary("noop");
    let files = FileServer::start(vec![
        ("cities.csv".into(), table.clone()),
        ("noop.wasm".into(), module),
    ]);
    // A CID nobody holds fails after this long.
    let server = Server::start_with(
        &dir.path().join("ipfs-node"),
        common::free_port(),
        &[
            "-c",
            "Compute.IPFS.FetchTimeout=2s",
            "serve",
            "--name",
            "ipfs-node",
        ],
    )
    .await;

    // Ingest: copy the URL's data into a result path, published by CID.
    let url = format!("{}/cities.csv", files.url);
    let module_url = format!("{}/noop.wasm", files.url);
    let id = run_ok(
        &server,
        &[
            "docker",
            "run",
            "--id-only",
            "-i",
            &url,
            "-i",
            &format!("{module_url}:/modules"),
            "-o",
            "data:/data",
            "-p",
            "ipfs",
            "busybox:1.37.0",
            "--",
            "sh",
            "-c",
            "cp /inputs/cities.csv /modules/noop.wasm /data/",
        ],
    );
    let cid = published_cid(&server, id.trim()).await;
    assert!(cid.starts_with("Qm"), "{cid}");
    let described = run_ok(&server, &["job", "describe", id.trim()]);
    assert!(
        described.contains(&cid),
        "job describe shows the CID:\n{described}"
    );
    // The CID of the file inside is the one Kubo gives the same bytes.
    let (file_cid, _) = import_bytes(&table, CidVersion::V0);

    // Compute on it: the whole tree, one path under it, and a WASM module from it.
    let whole = run_ok(
        &server,
        &[
            "docker",
            "run",
            "-i",
            &format!("ipfs://{cid}:/results"),
            "busybox:1.37.0",
            "--",
            "cat",
            "/results/data/cities.csv",
        ],
    );
    assert!(whole.contains("Porto,232000"), "{whole}");
    let single = run_ok(
        &server,
        &[
            "docker",
            "run",
            "-i",
            &format!("ipfs://{cid}/data/cities.csv:/in/cities.csv"),
            "busybox:1.37.0",
            "--",
            "grep",
            "Lisbon",
            "/in/cities.csv",
        ],
    );
    assert!(single.contains("Lisbon,545000"), "{single}");
    let by_file_cid = run_ok(
        &server,
        &[
            "docker",
            "run",
            "-i",
            &format!("ipfs://{file_cid}:/in/t.csv"),
            "busybox:1.37.0",
            "--",
            "wc",
            "-l",
            "/in/t.csv",
        ],
    );
    assert!(by_file_cid.contains("3 /in/t.csv"), "{by_file_cid}");
    let wasm = run_ok(
        &server,
        &["wasm", "run", &format!("ipfs://{cid}/data/noop.wasm")],
    );
    assert!(wasm.contains("Hello, world!"), "{wasm}");

    // A CID no node holds: the fetch times out, naming it.
    let (absent, _) = import_bytes(b"held by nobody", CidVersion::V0);
    let refused = server.cli(&[
        "docker",
        "run",
        "-i",
        &format!("ipfs://{absent}:/x"),
        "busybox:1.37.0",
        "--",
        "true",
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&absent.to_string()),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_get_checks_every_block_and_names_an_altered_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::hybrid(dir.path(), "ipfs-get").await;
    let id = run_ok(
        &server,
        &[
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
            "head -c 600000 /dev/zero | tr '\\0' x > /out/big.txt; echo ok",
        ],
    );
    let id = id.trim();
    let got = dir.path().join("got");
    run_ok(
        &server,
        &["job", "get", id, "--output-dir", got.to_str().unwrap()],
    );
    let big = std::fs::read(got.join("out/big.txt")).unwrap();
    assert_eq!(big, vec![b'x'; 600_000]);
    assert_eq!(std::fs::read_to_string(got.join("stdout")).unwrap(), "ok\n");
    assert!(!got.join("raw").exists());

    // Alter the block holding the file's first 256 KiB in the node's store.
    let (_, blocks) = import_bytes(&vec![b'x'; 600_000], CidVersion::V0);
    let leaf: Cid = blocks[0].0;
    let key = Cid::new_v1(leaf.codec(), *leaf.hash()).to_string();
    let store = dir.path().join("ipfs-get/compute/ipfs/blocks");
    let on_disk = files_under(&store)
        .into_iter()
        .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(key.as_str()))
        .expect("the leaf block in the node's store");
    std::fs::write(&on_disk, b"not the data").unwrap();
    let again = dir.path().join("again");
    let failed = server.cli(&["job", "get", id, "--output-dir", again.to_str().unwrap()]);
    assert!(!failed.status.success());
    let message = stderr(&failed);
    assert!(
        message.contains(&leaf.to_string()),
        "names the block: {message}"
    );
    assert!(
        !again.exists(),
        "nothing half-written: {:?}",
        files_under(&again)
    );
}

/// A 3-node devstack where a job published `script`'s `/out` with `-p ipfs`: the server, the
/// CID, and the node holding it, once that node advertises the CID; and the devstack lock,
/// to hold while the server runs.
async fn published_on_a_devstack(
    dir: &Path,
    script: &str,
) -> (Server, String, bacalhau_models::NodeId, std::fs::File) {
    let lock = common::devstack_lock();
    let server = Server::start_with(
        &dir.join("devstack"),
        common::free_port(),
        &["devstack", "--computes", "3"],
    )
    .await;
    let client = server.client();
    common::eventually(30, "three compute nodes", || {
        let client = client.clone();
        async move { (client.list_nodes().await.ok()?.nodes.len() >= 3).then_some(()) }
    })
    .await;
    let id = run_ok(
        &server,
        &[
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
            script,
        ],
    );
    let cid = published_cid(&server, id.trim()).await;
    let holder = client.job_executions(id.trim()).await.unwrap().items[0]
        .node_id
        .clone();
    // The holder advertises its pinned roots with its next heartbeat.
    common::eventually(30, "the holder to advertise the CID", || {
        let client = client.clone();
        let (cid, holder) = (cid.clone(), holder.clone());
        async move {
            let node = client.get_node(holder.as_str()).await.ok()?.node;
            node.info
                .compute_node_info
                .data_locality
                .ipfs
                .contains(&cid)
                .then_some(())
        }
    })
    .await;
    (server, cid, holder, lock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reading_a_cid_goes_to_the_node_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cid, holder, _lock) =
        published_on_a_devstack(dir.path(), "echo held here > /out/note.txt").await;
    let client = server.client();
    for _ in 0..3 {
        let reader = run_ok(
            &server,
            &[
                "docker",
                "run",
                "--id-only",
                "-i",
                &format!("ipfs://{cid}:/data"),
                "busybox:1.37.0",
                "--",
                "cat",
                "/data/out/note.txt",
            ],
        );
        let executions = client.job_executions(reader.trim()).await.unwrap().items;
        assert_eq!(
            executions.len(),
            1,
            "no node was asked in vain: {executions:?}"
        );
        assert_eq!(executions[0].node_id, holder);
        let details = &executions[0].compute_state.details;
        assert_eq!(
            details.get("InputBytes:/data").map(String::as_str),
            Some("0"),
            "nothing fetched on the holder: {details:?}"
        );
    }
}

#[test]
fn a_node_without_the_cid_fetches_it_from_the_holder_over_bitswap() {
    if !common::inside_netns("a_node_without_the_cid_fetches_it_from_the_holder_over_bitswap") {
        return;
    }
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (server, cid, holder, _lock) = published_on_a_devstack(
                dir.path(),
                "head -c 700000 /dev/zero | tr '\\0' y > /out/big.txt",
            )
            .await;
            let client = server.client();
            // Kept off the holder: this node has to fetch the blocks.
            let reader = run_ok(
                &server,
                &[
                    "docker",
                    "run",
                    "--id-only",
                    "-s",
                    &format!("name!={holder}"),
                    "-i",
                    &format!("ipfs://{cid}:/data"),
                    "busybox:1.37.0",
                    "--",
                    "wc",
                    "-c",
                    "/data/out/big.txt",
                ],
            );
            let executions = client.job_executions(reader.trim()).await.unwrap().items;
            let ran = executions.last().expect("an execution");
            assert_ne!(ran.node_id, holder);
            // What came over bitswap: the file's distinct blocks (its two full 256 KiB chunks of
            // `y` are one block), so more than one chunk and less than the file.
            let fetched: u64 = ran.compute_state.details["InputBytes:/data"]
                .parse()
                .unwrap();
            assert!(
                (262_144..700_000).contains(&fetched),
                "{fetched} bytes fetched"
            );
            let output = ran.run_output.clone().unwrap_or_default().stdout;
            assert!(output.contains("700000 /data/out/big.txt"), "{output}");
        });
}

/// The free CPU a node reports.
async fn free_cpu(client: &bacalhau_client::ApiClient, node: &str) -> Option<f64> {
    let node = client.get_node(node).await.ok()?.node;
    Some(node.info.compute_node_info.available_capacity.cpu)
}

#[test]
fn data_add_pins_on_a_chosen_node_and_jobs_follow_it_until_it_is_full() {
    if !common::inside_netns("data_add_pins_on_a_chosen_node_and_jobs_follow_it_until_it_is_full") {
        return;
    }
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let _lock = common::devstack_lock();
            let server = Server::start_with(
                &dir.path().join("devstack"),
                common::free_port(),
                &["devstack", "--computes", "3"],
            )
            .await;
            let client = server.client();
            let mut nodes = common::eventually(30, "three compute nodes", || {
                let client = client.clone();
                async move {
                    let nodes = client.list_nodes().await.ok()?.nodes;
                    (nodes.len() >= 3).then_some(nodes)
                }
            })
            .await;
            nodes.sort_by(|a, b| a.info.node_id.as_str().cmp(b.info.node_id.as_str()));
            let holder = nodes[1].info.node_id.to_string();

            // A directory: a 600 KB file of varied lines (three chunks) and a nested note.
            let data = dir.path().join("dataset");
            std::fs::create_dir_all(data.join("notes")).unwrap();
            let lines: String = (0..60_000).map(|i| format!("{i:09}\n")).collect();
            std::fs::write(data.join("table.txt"), &lines).unwrap();
            std::fs::write(data.join("notes/readme"), "added from the client\n").unwrap();
            let expected = {
                let scratch = tempfile::tempdir().unwrap();
                let store = bacalhau_content::BlockStore::open(scratch.path()).unwrap();
                bacalhau_content::import(&store, &data, CidVersion::V0)
                    .unwrap()
                    .root
                    .to_string()
            };

            let added = server.cli(&["data", "add", data.to_str().unwrap(), "--node", &holder]);
            assert!(added.status.success(), "{}", stderr(&added));
            let cid = stdout(&added).trim().to_string();
            assert_eq!(cid, expected, "the CID Kubo's `ipfs add -r` gives");
            assert!(
                stderr(&added).contains(&format!("pinned on node {holder}")),
                "{}",
                stderr(&added)
            );
            // Known at once: the next job goes to the holder and fetches nothing.
            let reader = run_ok(
                &server,
                &[
                    "docker",
                    "run",
                    "--id-only",
                    "--cpu",
                    "0.5",
                    "-i",
                    &format!("ipfs://{cid}:/data"),
                    "busybox:1.37.0",
                    "--",
                    "sh",
                    "-c",
                    "wc -l < /data/table.txt; cat /data/notes/readme",
                ],
            );
            let executions = client.job_executions(reader.trim()).await.unwrap().items;
            assert_eq!(executions.len(), 1, "{executions:?}");
            assert_eq!(executions[0].node_id.as_str(), holder);
            let details = &executions[0].compute_state.details;
            assert_eq!(details["InputBytes:/data"], "0", "{details:?}");
            let output = executions[0].run_output.clone().unwrap_or_default().stdout;
            assert!(
                output.contains("60000") && output.contains("added from the client"),
                "{output}"
            );

            // The holder fills up: a job pinned to it takes all its CPU.
            let all_cpu = nodes[1].info.compute_node_info.max_capacity.cpu.to_string();
            let blocker = run_ok(
                &server,
                &[
                    "docker",
                    "run",
                    "--id-only",
                    "--wait=false",
                    "-s",
                    &format!("name={holder}"),
                    "--cpu",
                    &all_cpu,
                    "busybox:1.37.0",
                    "--",
                    "sleep",
                    "120",
                ],
            );
            common::eventually(30, "the holder to report itself full", || {
                let client = client.clone();
                let holder = holder.clone();
                async move { (free_cpu(&client, &holder).await? < 0.5).then_some(()) }
            })
            .await;
            let elsewhere = run_ok(
                &server,
                &[
                    "docker",
                    "run",
                    "--id-only",
                    "--cpu",
                    "0.5",
                    "-i",
                    &format!("ipfs://{cid}:/data"),
                    "busybox:1.37.0",
                    "--",
                    "wc",
                    "-l",
                    "/data/table.txt",
                ],
            );
            let executions = client.job_executions(elsewhere.trim()).await.unwrap().items;
            let ran = executions.last().expect("an execution");
            assert_ne!(ran.node_id.as_str(), holder, "{executions:?}");
            let fetched: u64 = ran.compute_state.details["InputBytes:/data"]
                .parse()
                .unwrap();
            assert!(
                fetched >= lines.len() as u64,
                "{fetched} bytes fetched from the holder"
            );
            let output = ran.run_output.clone().unwrap_or_default().stdout;
            assert!(output.contains("60000 /data/table.txt"), "{output}");
            run_ok(&server, &["job", "stop", blocker.trim()]);

            // Bad input: a node that is not there, a path that is not there.
            let missing = server.cli(&["data", "add", data.to_str().unwrap(), "--node", "nope"]);
            assert!(!missing.status.success());
            assert!(stderr(&missing).contains("nope"), "{}", stderr(&missing));
            let absent = server.cli(&["data", "add", "/no/such/path"]);
            assert!(!absent.status.success());
            assert!(
                stderr(&absent).contains("/no/such/path"),
                "{}",
                stderr(&absent)
            );
        });
}
