//! Bitswap between two IPFS nodes in one process on loopback: MiB/s of a whole DAG fetched
//! into an empty store, beside a plain TCP copy of the same bytes (the floor).
//! `cargo bench -p bacalhau-content --bench bitswap -- [MiB]` (default 256); prints a
//! Markdown row. Listens on 127.0.0.1 only and dials nothing else.

use bacalhau_content::{BlockStore, CidVersion, Multiaddr, Network, import};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data.bin");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..mib << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&path, &data)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let loopback: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
        let holder_store = BlockStore::open(&dir.path().join("holder"))?;
        let root = import(&holder_store, &path, CidVersion::V0)?.root;
        let holder = Network::start(holder_store, std::slice::from_ref(&loopback)).await?;
        let fetcher = Network::start(
            BlockStore::open(&dir.path().join("fetcher"))?,
            std::slice::from_ref(&loopback),
        )
        .await?;
        let started = Instant::now();
        let fetched = fetcher
            .fetch(&root, &holder.addresses(), Duration::from_secs(600))
            .await?;
        let bitswap = fetched as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64();

        // The floor: the same bytes over one loopback TCP connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let sent = data.clone();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            socket.write_all(&sent).await?;
            socket.shutdown().await
        });
        let started = Instant::now();
        let mut socket = tokio::net::TcpStream::connect(address).await?;
        let mut received = Vec::with_capacity(data.len());
        socket.read_to_end(&mut received).await?;
        let tcp = received.len() as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64();
        server.await??;
        println!(
            "| bitswap between two nodes in one process, {mib} MiB (MiB/s) | {bitswap:.1} | one TCP connection on loopback: {tcp:.1} | {:.2} |",
            bitswap / tcp
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
