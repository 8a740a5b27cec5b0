//! Blocks as files under a directory, keyed by codec and hash; pins as empty files named by
//! their root CID. Every block is checked against its hash on the way in and on the way out.

use crate::{Cid, ContentError};
use multihash_codetable::{Code, MultihashDigest};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The dag-pb codec: UnixFS files and directories.
pub const DAG_PB: u64 = 0x70;

/// A node's blocks and pins.
#[derive(Debug, Clone)]
pub struct BlockStore {
    root: PathBuf,
    /// Bumped by every `pin` of this store (and its clones): readers list pins only after a
    /// change, not on every look.
    pin_generation: Arc<std::sync::atomic::AtomicU64>,
    /// Roots being fetched or exported, with how many holds each has: collection keeps them
    /// as if pinned, so a block is not removed under a running job.
    held: Arc<Mutex<HashMap<Cid, usize>>>,
    /// Unpinned blocks are collected down to this many bytes by [`BlockStore::tidy`].
    cap: Option<u64>,
}

/// Keeps a root's blocks from collection until dropped (see [`BlockStore::hold`]).
#[derive(Debug)]
pub struct Hold {
    root: Cid,
    held: Arc<Mutex<HashMap<Cid, usize>>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.root) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.root);
            }
        }
    }
}

impl BlockStore {
    /// Opens (or creates) the store under `root`.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        for dir in ["blocks", "pins"] {
            std::fs::create_dir_all(root.join(dir)).map_err(ContentError::io(format!(
                "cannot create {}",
                root.join(dir).display()
            )))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            pin_generation: Default::default(),
            held: Default::default(),
            cap: None,
        })
    }

    /// The same store, with unpinned blocks collected down to `cap` bytes by
    /// [`BlockStore::tidy`]; `0` means no cap.
    pub fn with_cap(mut self, cap: u64) -> Self {
        self.cap = (cap > 0).then_some(cap);
        self
    }

    /// Keeps `root` and the blocks under it from collection while the returned guard lives:
    /// taken by whoever fetches or exports a root that is not pinned.
    pub fn hold(&self, root: &Cid) -> Hold {
        *self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(*root)
            .or_default() += 1;
        Hold {
            root: *root,
            held: Arc::clone(&self.held),
        }
    }

    /// Collects unpinned, unheld blocks down to the store's cap (nothing without one); returns
    /// the bytes freed.
    pub fn tidy(&self) -> Result<u64, ContentError> {
        match self.cap {
            Some(cap) => self.collect(cap),
            None => Ok(0),
        }
    }

    /// Where a block lives: CIDv0 and CIDv1 of the same dag-pb block share one file.
    fn path(&self, cid: &Cid) -> PathBuf {
        let key = Cid::new_v1(cid.codec(), *cid.hash()).to_string();
        let shard = key
            .get(key.len().saturating_sub(3)..key.len() - 1)
            .unwrap_or("_");
        self.root.join("blocks").join(shard).join(key)
    }

    /// Whether the store holds `cid`'s block.
    pub fn has(&self, cid: &Cid) -> bool {
        self.path(cid).is_file()
    }

    /// The block of `cid`, checked against its hash; `None` when the store lacks it.
    pub fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, ContentError> {
        match std::fs::read(self.path(cid)) {
            Ok(bytes) => {
                verify(cid, &bytes)?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::Io {
                what: format!("cannot read block {cid}"),
                source: e,
            }),
        }
    }

    /// Stores a block after checking it against `cid`; written whole or not at all.
    pub fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), ContentError> {
        let path = self.path(cid);
        if path.is_file() {
            // Held already (and checked when it was stored): these bytes are not needed.
            return Ok(());
        }
        verify(cid, bytes)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(ContentError::io(format!("cannot create {}", dir.display())))?;
        }
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(ContentError::io(format!("cannot write block {cid}")))
    }

    /// Keeps `root` and every block under it from collection.
    pub fn pin(&self, root: &Cid) -> Result<(), ContentError> {
        let path = self.root.join("pins").join(root.to_string());
        std::fs::write(&path, b"").map_err(ContentError::io(format!("cannot pin {root}")))?;
        self.pin_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Changes whenever this store pins something: compare it to know whether `pins` could
    /// say something new.
    pub fn pin_generation(&self) -> u64 {
        self.pin_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The pinned roots, the CIDs this node holds for others.
    pub fn pins(&self) -> Result<Vec<Cid>, ContentError> {
        let dir = self.root.join("pins");
        let entries = std::fs::read_dir(&dir)
            .map_err(ContentError::io(format!("cannot list {}", dir.display())))?;
        let mut pins: Vec<Cid> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        pins.sort();
        Ok(pins)
    }

    /// Bytes held in blocks.
    pub fn size(&self) -> u64 {
        self.blocks().iter().map(|(_, size)| size).sum()
    }

    fn blocks(&self) -> Vec<(PathBuf, u64)> {
        let mut blocks = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.root.join("blocks")) else {
            return blocks;
        };
        for shard in shards.filter_map(|s| s.ok()) {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.filter_map(|f| f.ok()) {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                blocks.push((file.path(), size));
            }
        }
        blocks
    }

    /// [`BlockStore::tidy`] on the blocking pool, logging what it freed or why it could not:
    /// for callers that have just added blocks and need not wait for the room.
    pub fn tidy_in_background(&self) {
        let store = self.clone();
        tokio::task::spawn_blocking(move || match store.tidy() {
            Ok(0) => {}
            Ok(freed) => tracing::info!(bytes = freed, "unpinned blocks collected"),
            Err(e) => tracing::warn!(error = %e, "cannot collect unpinned blocks"),
        });
    }

    /// Removes blocks no pin or hold reaches while the store holds more than `cap` bytes; returns the
    /// bytes freed. Pinned data is never removed, whatever the cap.
    pub fn collect(&self, cap: u64) -> Result<u64, ContentError> {
        let mut blocks = self.blocks();
        let mut held: u64 = blocks.iter().map(|(_, size)| size).sum();
        if held <= cap {
            return Ok(0);
        }
        let mut keep = HashSet::new();
        let in_use: Vec<Cid> = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for root in self.pins()?.into_iter().chain(in_use) {
            self.reachable(&root, &mut keep)?;
        }
        // Oldest first, so what was fetched last (most likely wanted again) stays longest.
        blocks.sort_by_key(|(path, _)| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        });
        let mut freed = 0;
        for (path, size) in blocks {
            if held <= cap {
                break;
            }
            let key = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if keep.contains(key) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                held -= size;
                freed += size;
            }
        }
        Ok(freed)
    }

    /// Adds the store keys of every block under `root` that the store holds.
    fn reachable(&self, root: &Cid, keep: &mut HashSet<String>) -> Result<(), ContentError> {
        let mut pending = vec![*root];
        while let Some(cid) = pending.pop() {
            let key = Cid::new_v1(cid.codec(), *cid.hash()).to_string();
            if !keep.insert(key) {
                continue;
            }
            if let Some(block) = self.get(&cid)? {
                pending.extend(links(&cid, &block)?);
            }
        }
        Ok(())
    }
}

/// The CIDs a block links to (dag-pb nodes; raw blocks have none).
pub fn links(cid: &Cid, block: &[u8]) -> Result<Vec<Cid>, ContentError> {
    if cid.codec() != DAG_PB {
        return Ok(Vec::new());
    }
    let mut links = Vec::new();
    ipld_dagpb::links(block, &mut links).map_err(|e| ContentError::Unsupported {
        cid: cid.to_string(),
        reason: format!("not a dag-pb node: {e:?}"),
    })?;
    Ok(links)
}

/// Checks `bytes` against the hash in `cid`.
pub fn verify(cid: &Cid, bytes: &[u8]) -> Result<(), ContentError> {
    let code = Code::try_from(cid.hash().code()).map_err(|_| ContentError::Unsupported {
        cid: cid.to_string(),
        reason: format!("unknown hash function 0x{:x}", cid.hash().code()),
    })?;
    if code.digest(bytes) == *cid.hash() {
        Ok(())
    } else {
        Err(ContentError::Corrupt {
            cid: cid.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CidVersion, import_bytes};

    /// Puts a file of `size` distinct-looking bytes (seeded by `seed`) into `store`, returning
    /// its root; no two chunks are alike, so no block is shared.
    fn add(store: &BlockStore, size: usize, seed: u8) -> Cid {
        let mut state = u64::from(seed) + 1;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        let (root, blocks) = import_bytes(&data, CidVersion::V0);
        for (cid, bytes) in blocks {
            store.put(&cid, &bytes).unwrap();
        }
        root
    }

    fn complete(store: &BlockStore, root: &Cid) -> bool {
        let mut keep = HashSet::new();
        store.reachable(root, &mut keep).unwrap();
        let mut pending = vec![*root];
        while let Some(cid) = pending.pop() {
            match store.get(&cid).unwrap() {
                Some(block) => pending.extend(links(&cid, &block).unwrap()),
                None => return false,
            }
        }
        true
    }

    #[test]
    fn collection_keeps_pinned_and_held_roots_and_frees_the_rest_down_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path()).unwrap().with_cap(1 << 20);
        let pinned = add(&store, 3 << 20, 1);
        store.pin(&pinned).unwrap();
        let held = add(&store, 1 << 20, 2);
        let hold = store.hold(&held);
        let loose = add(&store, 2 << 20, 3);
        let before = store.size();

        let freed = store.tidy().unwrap();

        assert!(freed >= 2 << 20, "freed {freed} of {before}");
        assert_eq!(store.size(), before - freed);
        assert!(complete(&store, &pinned), "a pinned root lost blocks");
        assert!(complete(&store, &held), "a held root lost blocks");
        assert!(
            !complete(&store, &loose),
            "an unpinned root survived over the cap"
        );

        // Once released, the held root goes too (the pinned one still exceeds the cap alone).
        drop(hold);
        store.tidy().unwrap();
        assert!(!complete(&store, &held));
        assert!(complete(&store, &pinned));
    }

    #[test]
    fn a_store_under_its_cap_or_without_one_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let uncapped = BlockStore::open(dir.path()).unwrap();
        let root = add(&uncapped, 1 << 20, 4);
        assert_eq!(uncapped.tidy().unwrap(), 0);
        let roomy = uncapped.clone().with_cap(10 << 20);
        assert_eq!(roomy.tidy().unwrap(), 0);
        assert!(complete(&roomy, &root));
        // Two holds of one root: it stays until both are gone.
        let tight = roomy.with_cap(1);
        let (first, second) = (tight.hold(&root), tight.hold(&root));
        drop(first);
        tight.tidy().unwrap();
        assert!(complete(&tight, &root));
        drop(second);
        tight.tidy().unwrap();
        assert!(!complete(&tight, &root));
    }
}
