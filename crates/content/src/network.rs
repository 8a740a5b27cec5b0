//! Block exchange with other IPFS nodes: bitswap (beetswap) over libp2p (TCP, noise, yamux),
//! from and into a [`BlockStore`]. No DHT, mDNS, relay or bootstrap: the node listens where it
//! is told and dials only the addresses it is given. [`Network::fetch`] brings a whole DAG
//! into the store from the given peers, every block checked against its CID on arrival.

use crate::{BlockStore, Cid, ContentError};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, noise, tcp, yamux};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The largest multihash a block may carry (sha2-256 needs 32 bytes).
const MAX_MULTIHASH: usize = 64;

/// The store as beetswap sees it: blocks it serves to peers and keeps when they arrive.
#[derive(Clone)]
struct Blocks(BlockStore);

fn our_cid<const S: usize>(cid: &cid::CidGeneric<S>) -> blockstore::Result<Cid> {
    Cid::try_from(cid.to_bytes())
        .map_err(|e| blockstore::Error::StoredDataError(format!("CID: {e}")))
}

impl blockstore::Blockstore for Blocks {
    async fn get<const S: usize>(
        &self,
        cid: &cid::CidGeneric<S>,
    ) -> blockstore::Result<Option<Vec<u8>>> {
        let cid = our_cid(cid)?;
        self.0
            .get(&cid)
            .map_err(|e| blockstore::Error::FatalDatabaseError(e.to_string()))
    }

    async fn put_keyed<const S: usize>(
        &self,
        _cid: &cid::CidGeneric<S>,
        _data: &[u8],
    ) -> blockstore::Result<()> {
        // A block beetswap received is stored (checked, once) by the fetch that asked for it,
        // before the fetch walks its links; storing it here too would write it twice.
        Ok(())
    }

    async fn remove<const S: usize>(&self, _cid: &cid::CidGeneric<S>) -> blockstore::Result<()> {
        // Blocks leave the store only through its own collection.
        Ok(())
    }

    async fn close(self) -> blockstore::Result<()> {
        Ok(())
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    bitswap: beetswap::Behaviour<MAX_MULTIHASH, Blocks>,
}

/// What the swarm's task is asked to do.
#[derive(Debug)]
enum Command {
    /// Opens connections to these peers (they may then ask this node for blocks).
    Dial(Vec<Multiaddr>),
    Fetch {
        root: Cid,
        peers: Vec<Multiaddr>,
        /// The whole DAG under `root`, or only the block of `root`.
        whole: bool,
        done: oneshot::Sender<Result<u64, ContentError>>,
    },
}

/// A running IPFS node: its identity, where it listens, and a handle on its swarm's task.
#[derive(Debug)]
pub struct Network {
    peer_id: PeerId,
    listening: Vec<Multiaddr>,
    commands: mpsc::Sender<Command>,
}

impl Network {
    /// Starts a node over `store`, listening on `listen` (e.g. `/ip4/127.0.0.1/tcp/0`).
    pub async fn start(store: BlockStore, listen: &[Multiaddr]) -> Result<Self, ContentError> {
        let network_error = |e: String| ContentError::Network(e);
        let blocks = Arc::new(Blocks(store.clone()));
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| network_error(e.to_string()))?
            .with_behaviour(|key| Behaviour {
                identify: identify::Behaviour::new(identify::Config::new(
                    "/ipfs/id/1.0.0".into(),
                    key.public(),
                )),
                bitswap: beetswap::Behaviour::new(Arc::clone(&blocks)),
            })
            .map_err(|e| network_error(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        for address in listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| network_error(format!("cannot listen on {address}: {e}")))?;
        }
        // The addresses it listens on, once the listeners are up.
        let mut listening = Vec::new();
        while listening.len() < listen.len() {
            match tokio::time::timeout(Duration::from_secs(10), swarm.select_next_some()).await {
                Ok(SwarmEvent::NewListenAddr { address, .. }) => listening.push(address),
                Ok(SwarmEvent::ListenerError { error, .. }) => {
                    return Err(network_error(format!("listener failed: {error}")));
                }
                Ok(_) => {}
                Err(_) => return Err(network_error("no listener came up within 10s".into())),
            }
        }
        let peer_id = *swarm.local_peer_id();
        let (commands, received) = mpsc::channel(64);
        tokio::spawn(run(swarm, store, received));
        Ok(Self {
            peer_id,
            listening,
            commands,
        })
    }

    /// The node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Where peers reach it, each with `/p2p/<peer ID>`.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        self.listening
            .iter()
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(self.peer_id))
            })
            .collect()
    }

    /// Connects to `peers`, so they can ask this node for blocks even when they cannot dial
    /// it (a client behind a firewall offering data to a compute node).
    pub async fn connect(&self, peers: &[Multiaddr]) -> Result<(), ContentError> {
        self.commands
            .send(Command::Dial(peers.to_vec()))
            .await
            .map_err(|_| ContentError::Network("the IPFS node has stopped".into()))
    }

    /// Brings every block of `root` into the store from `peers` (dialled only when a block is
    /// missing), within `timeout`; returns the bytes that came over the network (0 when all
    /// were here).
    pub async fn fetch(
        &self,
        root: &Cid,
        peers: &[Multiaddr],
        timeout: Duration,
    ) -> Result<u64, ContentError> {
        self.fetch_some(root, peers, timeout, true).await
    }

    /// Brings the one block of `cid` into the store (not what it links to), as [`fetch`]
    /// does.
    ///
    /// [`fetch`]: Network::fetch
    pub async fn fetch_block(
        &self,
        cid: &Cid,
        peers: &[Multiaddr],
        timeout: Duration,
    ) -> Result<u64, ContentError> {
        self.fetch_some(cid, peers, timeout, false).await
    }

    async fn fetch_some(
        &self,
        root: &Cid,
        peers: &[Multiaddr],
        timeout: Duration,
        whole: bool,
    ) -> Result<u64, ContentError> {
        let gone = || ContentError::Network("the IPFS node has stopped".into());
        let peers = peers
            .iter()
            .filter(|peer| {
                !peer
                    .iter()
                    .any(|p| p == libp2p::multiaddr::Protocol::P2p(self.peer_id))
            })
            .cloned()
            .collect();
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Fetch {
                root: *root,
                peers,
                whole,
                done,
            })
            .await
            .map_err(|_| gone())?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(ContentError::Unavailable {
                cid: root.to_string(),
                seconds: timeout.as_secs(),
            }),
        }
    }
}

/// A received block once stored: its fetch, its size, and its links (or why not).
type Stored = (u64, u64, Result<Vec<Cid>, ContentError>);

/// One fetch in progress: blocks asked for, bytes received.
struct Fetching {
    root: Cid,
    /// Walk the links of what arrives (the whole DAG), or stop at the root's block.
    whole: bool,
    pending: usize,
    bytes: u64,
    done: Option<oneshot::Sender<Result<u64, ContentError>>>,
}

/// The swarm's task: serves peers, dials, and walks DAGs being fetched.
async fn run(
    mut swarm: libp2p::Swarm<Behaviour>,
    store: BlockStore,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut fetches: HashMap<u64, Fetching> = HashMap::new();
    let mut queries: HashMap<beetswap::QueryId, (u64, Cid)> = HashMap::new();
    let mut asked: HashSet<(u64, Cid)> = HashSet::new();
    let mut next_fetch = 0u64;
    // Received blocks are checked and written on the blocking pool, so the swarm keeps
    // receiving (and serving) meanwhile; each comes back here with its links.
    let (stored_tx, mut stored) = mpsc::unbounded_channel::<Stored>();
    loop {
        tokio::select! {
            Some((id, size, outcome)) = stored.recv() => {
                let mut links = match outcome {
                    Ok(links) => links,
                    Err(e) => {
                        finish(&mut fetches, id, Err(e));
                        continue;
                    }
                };
                if let Some(fetch) = fetches.get_mut(&id) {
                    fetch.pending -= 1;
                    fetch.bytes += size;
                    if !fetch.whole {
                        links.clear();
                    }
                }
                want(&mut swarm, &store, &mut fetches, &mut queries, &mut asked, id, links);
            }
            command = commands.recv() => match command {
                None => return,
                Some(Command::Dial(peers)) => {
                    for address in peers {
                        if let Err(e) = swarm.dial(address.clone()) {
                            tracing::warn!(%address, error = %e, "cannot dial an IPFS peer");
                        }
                    }
                }
                Some(Command::Fetch { root, peers, whole, done }) => {
                    next_fetch += 1;
                    let id = next_fetch;
                    fetches.insert(id, Fetching { root, whole, pending: 0, bytes: 0, done: Some(done) });
                    want(&mut swarm, &store, &mut fetches, &mut queries, &mut asked, id, vec![root]);
                    // Something is missing: ask the holders (bitswap sends the wants on connect).
                    if fetches.contains_key(&id) {
                        for address in peers {
                            if let Err(e) = swarm.dial(address.clone()) {
                                tracing::warn!(%address, error = %e, "cannot dial an IPFS peer");
                            }
                        }
                    }
                }
            },
            event = swarm.select_next_some() => {
                let SwarmEvent::Behaviour(BehaviourEvent::Bitswap(event)) = event else {
                    continue;
                };
                match event {
                    beetswap::Event::GetQueryResponse { query_id, data } => {
                        let Some((id, cid)) = queries.remove(&query_id) else { continue };
                        let (store, stored_tx) = (store.clone(), stored_tx.clone());
                        tokio::task::spawn_blocking(move || {
                            let outcome = store.put(&cid, &data).and_then(|()| crate::links(&cid, &data));
                            let _ = stored_tx.send((id, data.len() as u64, outcome));
                        });
                    }
                    beetswap::Event::GetQueryError { query_id, error } => {
                        if let Some((id, cid)) = queries.remove(&query_id) {
                            finish(&mut fetches, id, Err(ContentError::Network(format!("block {cid}: {error}"))));
                        }
                    }
                }
            }
        }
    }
}

/// Asks the network for those of `cids` the store lacks (walking the links of those it has),
/// and ends fetch `id` when nothing is pending any more.
fn want(
    swarm: &mut libp2p::Swarm<Behaviour>,
    store: &BlockStore,
    fetches: &mut HashMap<u64, Fetching>,
    queries: &mut HashMap<beetswap::QueryId, (u64, Cid)>,
    asked: &mut HashSet<(u64, Cid)>,
    id: u64,
    cids: Vec<Cid>,
) {
    let mut todo = cids;
    while let Some(cid) = todo.pop() {
        if !asked.insert((id, cid)) {
            continue;
        }
        let whole = fetches.get(&id).is_some_and(|f| f.whole);
        match store.get(&cid) {
            Ok(Some(_)) if !whole => {}
            Ok(Some(block)) => match crate::links(&cid, &block) {
                Ok(links) => todo.extend(links),
                Err(e) => return finish(fetches, id, Err(e)),
            },
            Ok(None) => {
                let query = swarm.behaviour_mut().bitswap.get(&cid);
                queries.insert(query, (id, cid));
                if let Some(fetch) = fetches.get_mut(&id) {
                    fetch.pending += 1;
                }
            }
            Err(e) => return finish(fetches, id, Err(e)),
        }
    }
    let finished = fetches.get(&id).is_some_and(|f| f.pending == 0);
    if finished {
        let bytes = fetches.get(&id).map_or(0, |f| f.bytes);
        finish(fetches, id, Ok(bytes));
        asked.retain(|(fetch, _)| *fetch != id);
    }
}

fn finish(fetches: &mut HashMap<u64, Fetching>, id: u64, result: Result<u64, ContentError>) {
    if let Some(mut fetch) = fetches.remove(&id) {
        if let Some(done) = fetch.done.take() {
            let _ = done.send(result);
        }
        tracing::debug!(root = %fetch.root, "fetch over");
    }
}

/// The CID at `path` (`a/b/c`) under the directory `root`, plain or HAMT-sharded: only the
/// blocks on the way are read, from the store or, when it lacks them and a network is given,
/// fetched one by one from `peers` within `timeout` each.
pub async fn resolve_path(
    store: &BlockStore,
    network: Option<&Network>,
    root: &Cid,
    path: &str,
    peers: &[Multiaddr],
    timeout: Duration,
) -> Result<Cid, ContentError> {
    let block_of = |cid: Cid| async move {
        if let Some(block) = store.get(&cid)? {
            return Ok(block);
        }
        if let Some(network) = network {
            network.fetch_block(&cid, peers, timeout).await?;
        }
        store.get(&cid)?.ok_or_else(|| ContentError::Missing {
            root: root.to_string(),
            cid: cid.to_string(),
        })
    };
    let no_such = || ContentError::NoSuchPath {
        root: root.to_string(),
        path: path.to_string(),
    };
    let unsupported = |cid: &Cid, e: &dyn std::fmt::Display| ContentError::Unsupported {
        cid: cid.to_string(),
        reason: e.to_string(),
    };
    let mut cid = *root;
    let mut cache = None;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let block = block_of(cid).await?;
        let mut step =
            rust_unixfs::resolve(&block, segment, &mut cache).map_err(|e| unsupported(&cid, &e))?;
        cid = loop {
            match step {
                rust_unixfs::MaybeResolved::Found(found) => break found,
                rust_unixfs::MaybeResolved::NotFound => return Err(no_such()),
                rust_unixfs::MaybeResolved::NeedToLoadMore(lookup) => {
                    let bucket = *lookup.pending_links().0;
                    let block = block_of(bucket).await?;
                    step = lookup
                        .continue_walk(&block, &mut cache)
                        .map_err(|e| unsupported(&bucket, &e))?;
                }
            }
        };
    }
    Ok(cid)
}
