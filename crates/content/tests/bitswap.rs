//! Two nodes exchange a DAG over bitswap, and a CID nobody has times out naming it. The test
//! runs its body again inside a network namespace with only loopback up (`unshare -n`, as
//! root), so no packet of the libp2p stack can leave the machine.

use bacalhau_content::{
    BlockStore, CidVersion, Multiaddr, Network, export, import, import_bytes, resolve_path,
};
use std::process::Command;
use std::time::Duration;

/// Set in the re-run inside the namespace.
const INSIDE: &str = "BACALHAU_TEST_IN_NETNS";

#[test]
fn two_nodes_exchange_a_dag_over_bitswap() {
    if std::env::var_os(INSIDE).is_none() {
        let exe = std::env::current_exe().expect("the test binary");
        let status = Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(exe)
            .args([
                "--exact",
                "two_nodes_exchange_a_dag_over_bitswap",
                "--nocapture",
            ])
            .env(INSIDE, "1")
            .status()
            .expect("unshare (util-linux, as root) runs the test without a network");
        assert!(status.success(), "the test inside the namespace failed");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let loopback: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        let holder_store = BlockStore::open(&dir.path().join("holder")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(data.join("sub/big.bin"), &big).unwrap();
        std::fs::write(data.join("small.txt"), b"small\n").unwrap();
        let added = import(&holder_store, &data, CidVersion::V0).unwrap();
        let holder = Network::start(holder_store, std::slice::from_ref(&loopback))
            .await
            .unwrap();

        let fetcher_store = BlockStore::open(&dir.path().join("fetcher")).unwrap();
        let fetcher = Network::start(fetcher_store.clone(), std::slice::from_ref(&loopback))
            .await
            .unwrap();
        let fetched = fetcher
            .fetch(&added.root, &holder.addresses(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            fetched >= big.len() as u64,
            "{fetched} bytes came over bitswap"
        );
        let out = dir.path().join("out");
        export(&fetcher_store, &added.root, &out).unwrap();
        assert_eq!(std::fs::read(out.join("sub/big.bin")).unwrap(), big);
        assert_eq!(std::fs::read(out.join("small.txt")).unwrap(), b"small\n");
        // Held now: a second fetch moves nothing.
        let again = fetcher
            .fetch(&added.root, &[], Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(again, 0);
        // Collected (the fetcher keeps nothing unpinned under a tiny cap), then wanted again:
        // the holder answers the same wants a second time.
        let freed = fetcher_store.clone().with_cap(1).tidy().unwrap();
        assert!(freed >= big.len() as u64, "{freed} bytes collected");
        let refetched = fetcher
            .fetch(&added.root, &holder.addresses(), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(refetched, fetched);

        // A path under the root: only the directory block on the way and the file come over,
        // not the 3 MB beside it.
        let lean_store = BlockStore::open(&dir.path().join("lean")).unwrap();
        let lean = Network::start(lean_store.clone(), std::slice::from_ref(&loopback))
            .await
            .unwrap();
        let small = resolve_path(
            &lean_store,
            Some(&lean),
            &added.root,
            "small.txt",
            &holder.addresses(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let brought = lean
            .fetch(&small, &holder.addresses(), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(brought < 100, "{brought} bytes for a 6-byte file");
        assert!(
            lean_store.size() < 1_000,
            "{} bytes held",
            lean_store.size()
        );
        let missing = resolve_path(
            &lean_store,
            Some(&lean),
            &added.root,
            "sub/nope",
            &holder.addresses(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(missing.to_string().contains("sub/nope"), "{missing}");

        let (absent, _) = import_bytes(b"held by nobody", CidVersion::V0);
        let err = fetcher
            .fetch(&absent, &holder.addresses(), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&absent.to_string()), "{err}");
    });
}
