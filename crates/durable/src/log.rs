//! An append-only redo log beside a redb file, so a group of writes is made durable by one
//! sequential append instead of redb's commit, which rewrites every page the group touched
//! (on a virtual disk an fdatasync of 20 scattered pages costs ~5× one of 20 contiguous ones).
//!
//! The log holds records; a [`Commit`](crate::Commit) hook that uses it appends what a group
//! wrote (as values, so applying a record twice is harmless), syncs, and only then commits
//! redb without durability; now and then it commits redb durably (a checkpoint) and empties
//! the log. At open, the records still in the log are handed back to be applied again.
//!
//! **Invariant:** a record is acknowledged (its [`Log::append`] returned) only once it is on
//! disk; a record whose append did not return may be lost, and nothing after a lost or torn
//! record is read back.
//! **Invariant:** records come back in the order they were appended. Each carries a number one
//! greater than the last; reading stops at a bad checksum, a short record or a number out of
//! order, so stale bytes left past the end by an emptied log are never taken for records.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes before each record's payload: its length (u32), number (u64) and checksum (u32),
/// little-endian.
const HEADER: usize = 16;
/// The largest record read back; a longer length field is taken for garbage.
const MAX_RECORD: usize = 1 << 30;
/// The log grows by zero-filled steps of this size (or more, for a longer record). Why: a
/// record that lands in blocks already written is synced without the file's size (an
/// fdatasync of ~0.10 ms against ~0.14 ms for one that grows the file, on this project's
/// virtual disks), and zeros are never read as a record (a zero header fails its checksum).
const GROWTH: u64 = 1 << 20;

/// What can go wrong with the log file.
#[derive(Debug, thiserror::Error)]
#[error("redo log {path}: {source}")]
pub struct LogError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// An open redo log.
pub struct Log {
    path: PathBuf,
    file: File,
    /// Where the next record goes (the end of the last whole record).
    end: u64,
    /// The file's length: zeros from `end` up to it, written ahead of the records.
    allocated: u64,
    /// The number of the next record.
    next: u64,
    /// Where the record appended last begins, until the log is emptied.
    last: Option<u64>,
}

impl Log {
    /// Opens (or creates) the log at `path` and reads back its records, oldest first, up to
    /// the first that is not whole; what follows it is cut off.
    pub fn open(path: &Path) -> Result<(Self, Vec<Vec<u8>>), LogError> {
        let error = |source| LogError {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(error)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(error)?;
        let (records, end, next) = parse(&bytes);
        if end < bytes.len() {
            file.set_len(end as u64).map_err(error)?;
            file.sync_data().map_err(error)?;
        }
        let log = Self {
            path: path.to_path_buf(),
            file,
            end: end as u64,
            allocated: end as u64,
            next,
            last: None,
        };
        Ok((log, records))
    }

    /// The whole records of the log at `path`, oldest first, read without opening it for
    /// writing (nothing is cut off): to look into a store's log, as tests do.
    pub fn records(path: &Path) -> Result<Vec<Vec<u8>>, LogError> {
        let bytes = std::fs::read(path).map_err(|source| LogError {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(parse(&bytes).0)
    }

    /// Appends `payload` as one record and returns once it is on disk. On failure nothing of
    /// it is kept: the log is cut back to where it was.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), LogError> {
        let record = frame(self.next, payload);
        let written = self
            .grow_to(self.end + record.len() as u64)
            .and_then(|()| self.file.write_all_at(&record, self.end))
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            let _ = self.file.set_len(self.end);
            self.allocated = self.end;
            return Err(self.error(source));
        }
        self.last = Some(self.end);
        self.end += record.len() as u64;
        self.next += 1;
        Ok(())
    }

    /// Takes back the record appended last (what it recorded did not happen after all), so
    /// it is not read back at the next open.
    pub fn forget_last(&mut self) -> Result<(), LogError> {
        let Some(start) = self.last.take() else {
            return Ok(());
        };
        self.file
            .set_len(start)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| self.error(e))?;
        self.end = start;
        self.allocated = start;
        self.next -= 1;
        Ok(())
    }

    /// Empties the log (its records are all in the database now) by zeroing its first
    /// record's header; the file keeps its length, so the records that follow land in blocks
    /// already written. Record numbers go on from where they were, so the older records left
    /// past the new end are never read as newer ones.
    pub fn clear(&mut self) -> Result<(), LogError> {
        if self.end > 0 {
            self.file
                .write_all_at(&[0; HEADER], 0)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| self.error(e))?;
        }
        self.end = 0;
        self.last = None;
        Ok(())
    }

    /// The bytes its records take (the file is longer by the zeros written ahead of them).
    pub fn len(&self) -> u64 {
        self.end
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// Makes sure the file is written (with zeros) up to at least `len`, and that its new
    /// length is on disk.
    fn grow_to(&mut self, len: u64) -> std::io::Result<()> {
        if len <= self.allocated {
            return Ok(());
        }
        let to = len.div_ceil(GROWTH) * GROWTH;
        let zeros = vec![0u8; (to - self.allocated) as usize];
        self.file.write_all_at(&zeros, self.allocated)?;
        self.file.sync_data()?;
        self.allocated = to;
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> LogError {
        LogError {
            path: self.path.clone(),
            source,
        }
    }
}

/// One record as written: header, then payload.
fn frame(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&number.to_le_bytes());
    record.extend_from_slice(&checksum(number, payload).to_le_bytes());
    record.extend_from_slice(payload);
    record
}

fn checksum(number: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&number.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The whole records at the start of `bytes`, where they end, and the number the next record
/// takes.
fn parse(bytes: &[u8]) -> (Vec<Vec<u8>>, usize, u64) {
    let mut records = Vec::new();
    let mut at = 0;
    let mut expected: Option<u64> = None;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let field = |range: std::ops::Range<usize>| {
            let mut buf = [0u8; 8];
            buf[..range.len()].copy_from_slice(&header[range]);
            u64::from_le_bytes(buf)
        };
        let len = field(0..4) as usize;
        let number = field(4..12);
        let sum = field(12..16) as u32;
        if len > MAX_RECORD || expected.is_some_and(|n| n != number) {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if checksum(number, payload) != sum {
            break;
        }
        records.push(payload.to_vec());
        at += HEADER + len;
        expected = Some(number + 1);
    }
    (records, at, expected.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_come_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, records) = Log::open(&path).unwrap();
        assert!(records.is_empty());
        log.append(b"first").unwrap();
        log.append(b"").unwrap();
        log.append(b"third").unwrap();
        drop(log);
        let (_, records) = Log::open(&path).unwrap();
        assert_eq!(records, vec![b"first".to_vec(), vec![], b"third".to_vec()]);
    }

    /// Records are written into zeros laid down ahead of them; the zeros are never read as
    /// records, and a log reopened is cut back to its records.
    #[test]
    fn zeros_written_ahead_are_not_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = Log::open(&path).unwrap();
        log.append(b"one").unwrap();
        log.append(&vec![7; GROWTH as usize]).unwrap();
        log.append(b"three").unwrap();
        let file_len = || std::fs::metadata(&path).unwrap().len();
        assert!(file_len() > log.len(), "written ahead");
        assert_eq!(file_len() % GROWTH, 0);
        let records_len = log.len();
        drop(log);
        let (log, records) = Log::open(&path).unwrap();
        assert_eq!(
            records,
            vec![b"one".to_vec(), vec![7; GROWTH as usize], b"three".to_vec()]
        );
        assert_eq!(log.len(), records_len);
        assert_eq!(file_len(), records_len, "cut back to its records");
    }

    #[test]
    fn a_record_taken_back_is_not_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = Log::open(&path).unwrap();
        log.append(b"kept").unwrap();
        log.append(b"taken back").unwrap();
        log.forget_last().unwrap();
        log.append(b"after").unwrap();
        drop(log);
        let (_, records) = Log::open(&path).unwrap();
        assert_eq!(records, vec![b"kept".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn a_cleared_log_reads_back_empty_and_numbers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = Log::open(&path).unwrap();
        log.append(b"old one").unwrap();
        log.append(b"old two").unwrap();
        log.clear().unwrap();
        assert!(log.is_empty());
        assert!(Log::records(&path).unwrap().is_empty());
        assert!(
            std::fs::metadata(&path).unwrap().len() >= GROWTH,
            "kept its length"
        );
        log.append(b"new").unwrap();
        drop(log);
        let (_, records) = Log::open(&path).unwrap();
        assert_eq!(records, vec![b"new".to_vec()]);
    }

    #[test]
    fn stale_records_past_the_end_are_not_read_as_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        // A log emptied and written again, whose emptying did not reach the disk: an older
        // record (number 0) follows the new one (number 2).
        let mut bytes = frame(2, b"new");
        bytes.extend(frame(0, b"stale"));
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, records) = Log::open(&path).unwrap();
        assert_eq!(records, vec![b"new".to_vec()]);
        log.append(b"next").unwrap();
        drop(log);
        let (_, records) = Log::open(&path).unwrap();
        assert_eq!(records, vec![b"new".to_vec(), b"next".to_vec()]);
    }

    proptest! {
        /// A log cut anywhere (a crash mid-append) or with a byte flipped reads back a prefix
        /// of what was appended, never anything else.
        #[test]
        fn a_damaged_log_reads_back_a_prefix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
            cut in any::<prop::sample::Index>(),
            flip in any::<Option<(prop::sample::Index, u8)>>(),
        ) {
            let mut bytes: Vec<u8> = payloads
                .iter()
                .enumerate()
                .flat_map(|(n, p)| frame(n as u64 + 7, p))
                .collect();
            if !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Some((at, mask)) = flip.filter(|_| !bytes.is_empty()) {
                let at = at.index(bytes.len());
                bytes[at] ^= mask.max(1);
            }
            let (records, end, _) = parse(&bytes);
            prop_assert!(end <= bytes.len());
            prop_assert!(records.len() <= payloads.len());
            prop_assert_eq!(&records[..], &payloads[..records.len()]);
        }
    }
}
