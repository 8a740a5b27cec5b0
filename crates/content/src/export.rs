//! Writes a CID back as a file or a directory (UnixFS), every block checked against its hash;
//! the output appears under its final name only when complete.

use crate::store::verify;
use crate::{BlockStore, Cid, ContentError};
use rust_unixfs::walk::{ContinuedWalk, Walker};
use std::io::Write;
use std::path::Path;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exported {
    pub files: u64,
    pub bytes: u64,
}

/// Writes `root` from `store` to `dest` (a file for a UnixFS file, a directory for a
/// directory). A missing or corrupt block fails the export naming it, and leaves nothing at
/// `dest`.
pub fn export(store: &BlockStore, root: &Cid, dest: &Path) -> Result<Exported, ContentError> {
    let partial = dest.with_file_name(format!(
        ".{}.partial-{}",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&partial);
    let _ = std::fs::remove_file(&partial);
    let written = write_tree(store, root, &partial);
    match written {
        Ok(exported) => {
            std::fs::rename(&partial, dest).map_err(ContentError::io(format!(
                "cannot move the export to {}",
                dest.display()
            )))?;
            Ok(exported)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write_tree(store: &BlockStore, root: &Cid, dest: &Path) -> Result<Exported, ContentError> {
    let mut walker = Walker::new(*root, String::new());
    let mut cache = None;
    let mut exported = Exported::default();
    let mut file: Option<std::fs::File> = None;
    while walker.should_continue() {
        let (next, _) = walker.pending_links();
        let next = *next;
        let block = store.get(&next)?.ok_or_else(|| ContentError::Missing {
            root: root.to_string(),
            cid: next.to_string(),
        })?;
        verify(&next, &block)?;
        let step = walker
            .next(&block, &mut cache)
            .map_err(|e| ContentError::Unsupported {
                cid: next.to_string(),
                reason: e.to_string(),
            })?;
        match step {
            ContinuedWalk::RootDirectory(_, path, _) | ContinuedWalk::Directory(_, path, _) => {
                let dir = under(dest, path);
                std::fs::create_dir_all(&dir)
                    .map_err(ContentError::io(format!("cannot create {}", dir.display())))?;
            }
            ContinuedWalk::File(segment, _, path, _, _) => {
                let target = under(dest, path);
                if segment.is_first() {
                    file = Some(std::fs::File::create(&target).map_err(ContentError::io(
                        format!("cannot create {}", target.display()),
                    ))?);
                    exported.files += 1;
                }
                if let Some(file) = file.as_mut() {
                    file.write_all(segment.as_bytes())
                        .map_err(ContentError::io(format!(
                            "cannot write {}",
                            target.display()
                        )))?;
                }
                exported.bytes += segment.as_bytes().len() as u64;
                if segment.is_last() {
                    file = None;
                }
            }
            ContinuedWalk::Bucket(..) => {}
            ContinuedWalk::Symlink(_, cid, path, _) => {
                return Err(ContentError::Unsupported {
                    cid: cid.to_string(),
                    reason: format!("{} is a symbolic link", path.display()),
                });
            }
        }
    }
    Ok(exported)
}

/// `path` of the walk under `dest`; the root itself (an empty path) is `dest`.
fn under(dest: &Path, path: &Path) -> std::path::PathBuf {
    if path.as_os_str().is_empty() {
        dest.to_path_buf()
    } else {
        dest.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CidVersion, import};

    #[test]
    fn files_and_directories_come_back_as_they_went_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(&dir.path().join("store")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("nested/empty")).unwrap();
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(data.join("nested/big.bin"), &big).unwrap();
        std::fs::write(data.join("small.txt"), b"small\n").unwrap();
        for version in [CidVersion::V0, CidVersion::V1] {
            let added = import(&store, &data, version).unwrap();
            let out = dir.path().join(format!("out-{version:?}"));
            let exported = export(&store, &added.root, &out).unwrap();
            assert_eq!(exported.files, 2);
            assert_eq!(std::fs::read(out.join("nested/big.bin")).unwrap(), big);
            assert_eq!(std::fs::read(out.join("small.txt")).unwrap(), b"small\n");
            assert!(out.join("nested/empty").is_dir());
        }
        let single = import(&store, &data.join("small.txt"), CidVersion::V0).unwrap();
        let out = dir.path().join("single.txt");
        export(&store, &single.root, &out).unwrap();
        assert_eq!(std::fs::read(out).unwrap(), b"small\n");
    }

    #[test]
    fn a_corrupt_or_missing_block_fails_naming_it_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = BlockStore::open(&store_dir).unwrap();
        let file = dir.path().join("big.bin");
        std::fs::write(&file, vec![7u8; 600_000]).unwrap();
        let added = import(&store, &file, CidVersion::V0).unwrap();
        // Alter one leaf on disk.
        let (_, blocks) = crate::import_bytes(&vec![7u8; 600_000], CidVersion::V0);
        let leaf = blocks[0].0;
        let key = Cid::new_v1(leaf.codec(), *leaf.hash()).to_string();
        let on_disk = walk(&store_dir.join("blocks"))
            .into_iter()
            .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(key.as_str()))
            .unwrap();
        std::fs::write(&on_disk, b"tampered").unwrap();
        let out = dir.path().join("out.bin");
        let err = export(&store, &added.root, &out).unwrap_err();
        assert!(
            matches!(&err, ContentError::Corrupt { cid } if *cid == leaf.to_string()),
            "{err}"
        );
        assert!(!out.exists());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial")),
            "no partial output left"
        );
        std::fs::remove_file(&on_disk).unwrap();
        let err = export(&store, &added.root, &out).unwrap_err();
        assert!(matches!(err, ContentError::Missing { cid, .. } if cid == leaf.to_string()));
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
