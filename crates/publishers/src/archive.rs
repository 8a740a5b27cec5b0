//! The results archive: a gzip'd tar of a results directory whose entries are relative to it
//! (`.`, `stdout`, `stderr`, `exitCode`, `<name>/...`), as upstream writes it; stored
//! without compression when the results do not compress. Unpacking
//! refuses entries that would land outside the destination and links of any kind.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Component, Path};

/// How much of the largest result file is test-compressed to choose the level.
const SAMPLE_BYTES: usize = 1 << 20;

/// The largest regular file under `dir`, if any.
fn largest_file(dir: &Path) -> std::io::Result<Option<std::path::PathBuf>> {
    Ok(bacalhau_compute::publisher::files_under(dir)?
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .map(|(path, _)| path))
}

/// Fast compression, or none when the bulk of the results does not compress (media,
/// archives, random data): deflating those makes the archive bigger and unpacking it
/// several times slower, for nothing.
fn level_for(dir: &Path) -> std::io::Result<flate2::Compression> {
    use std::io::{Read, Write};
    let Some(file) = largest_file(dir)? else {
        return Ok(flate2::Compression::fast());
    };
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    File::open(file)?
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)?;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&sample)?;
    let compressed = encoder.finish()?.len();
    Ok(if compressed * 100 >= sample.len() * 95 {
        flate2::Compression::none()
    } else {
        flate2::Compression::fast()
    })
}

/// Packs `dir` into a gzip'd tar at `archive`; returns the archive's size. Blocking.
pub fn pack(dir: &Path, archive: &Path) -> std::io::Result<u64> {
    let level = level_for(dir)?;
    let file = BufWriter::new(File::create(archive)?);
    let gzip = flate2::write::GzEncoder::new(file, level);
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
    unpack_from(BufReader::new(File::open(archive)?), dest)
}

/// [`unpack`] from any reader of a gzip'd tar, e.g. a download as it arrives. Blocking.
pub fn unpack_from(reader: impl std::io::Read, dest: &Path) -> std::io::Result<u64> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
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
    fn incompressible_results_are_stored_not_deflated() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        let noise = dir.path().join("noise");
        std::fs::create_dir_all(&text).unwrap();
        std::fs::create_dir_all(&noise).unwrap();
        std::fs::write(text.join("log"), "the same line again\n".repeat(10_000)).unwrap();
        // A xorshift stream: no repetition for deflate to find.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let random: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(noise.join("data"), &random).unwrap();
        assert_eq!(level_for(&text).unwrap(), flate2::Compression::fast());
        assert_eq!(level_for(&noise).unwrap(), flate2::Compression::none());
        let archive = dir.path().join("n.tar.gz");
        pack(&noise, &archive).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(&archive, &out).unwrap();
        assert_eq!(std::fs::read(out.join("data")).unwrap(), random);
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
