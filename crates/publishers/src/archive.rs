//! The results archive: a gzip'd tar of a results directory whose entries are relative to it
//! (`.`, `stdout`, `stderr`, `exitCode`, `<name>/...`), as upstream writes it. Unpacking
//! refuses entries that would land outside the destination and links of any kind.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Component, Path};

/// Packs `dir` into a gzip'd tar at `archive`; returns the archive's size. Blocking.
pub fn pack(dir: &Path, archive: &Path) -> std::io::Result<u64> {
    let file = BufWriter::new(File::create(archive)?);
    let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gzip);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    let gzip = tar.into_inner()?;
    let mut file = gzip.finish()?;
    std::io::Write::flush(&mut file)?;
    file.get_ref().sync_all()?;
    Ok(std::fs::metadata(archive)?.len())
}

/// Unpacks a gzip'd tar into `dest`, which must exist; returns the bytes of file content
/// written. Entries with `..`, absolute paths, links or devices are refused. Blocking.
pub fn unpack(archive: &Path, dest: &Path) -> std::io::Result<u64> {
    let file = BufReader::new(File::open(archive)?);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut written = 0;
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let safe = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !safe {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("archive entry {} leaves the destination", path.display()),
            ));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&path))?;
        } else if kind.is_file() {
            let target = dest.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut out = File::create(&target)?;
            written += std::io::copy(&mut entry, &mut out)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "archive entry {} is not a file or directory",
                    path.display()
                ),
            ));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_a_results_dir() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        std::fs::create_dir_all(results.join("outputs")).unwrap();
        std::fs::write(results.join("stdout"), "hi\n").unwrap();
        std::fs::write(results.join("outputs/a.txt"), "15\n").unwrap();
        let archive = dir.path().join("r.tar.gz");
        assert!(pack(&results, &archive).unwrap() > 0);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert_eq!(unpack(&archive, &out).unwrap(), 6);
        assert_eq!(
            std::fs::read_to_string(out.join("outputs/a.txt")).unwrap(),
            "15\n"
        );
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("evil.tar.gz");
        let file = File::create(&archive).unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        let data = b"owned";
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // The tar crate's own path setter refuses `..`, so write the name bytes directly.
        header.as_old_mut().name[..10].copy_from_slice(b"../escaped");
        header.set_cksum();
        tar.append(&header, &data[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert!(unpack(&archive, &out).is_err());
        assert!(!dir.path().join("escaped").exists());
    }
}
