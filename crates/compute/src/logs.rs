//! An execution's log on the node: every chunk of stdout and stderr, in the order written, in
//! one file (`output.log` in the execution's directory), beside plain `stdout`/`stderr` files.
//! Each record is one line: `o ` or `e ` and the text with `\` and newlines escaped, so a
//! reader can follow the file while it grows and never mistake a partial write for a record.

use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The log file's name in the execution's directory.
pub const LOG_FILE: &str = "output.log";

/// Which stream a line came from; the numbers are upstream's `ExecutionLogType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (1).
    Stdout = 1,
    /// Standard error (2).
    Stderr = 2,
}

/// One piece of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it was written.
    pub stream: Stream,
    /// What was written (normally ending in a newline).
    pub text: String,
}

/// Appends an execution's output to its files. The plain `stdout` and `stderr` files are made
/// at a stream's first output: creating a file costs up to 0.75 ms on some disks, and most
/// runs leave at least one stream empty ([`write_streams`] publishes an empty one).
pub struct LogWriter {
    dir: std::path::PathBuf,
    combined: tokio::fs::File,
    stdout: Option<tokio::fs::File>,
    stderr: Option<tokio::fs::File>,
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl LogWriter {
    /// Creates the log in `dir`, and `dir` when missing (the stream files come with their
    /// first output).
    pub async fn create(dir: &Path) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(dir).await?;
        Ok(Self {
            dir: dir.to_path_buf(),
            combined: tokio::fs::File::create(dir.join(LOG_FILE)).await?,
            stdout: None,
            stderr: None,
        })
    }

    /// Records a chunk of output, one record per line so followers see lines as they come.
    pub async fn write(&mut self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let (file, name) = match stream {
            Stream::Stdout => (&mut self.stdout, "stdout"),
            Stream::Stderr => (&mut self.stderr, "stderr"),
        };
        let file = match file {
            Some(file) => file,
            None => file.insert(tokio::fs::File::create(self.dir.join(name)).await?),
        };
        file.write_all(bytes).await?;
        let text = String::from_utf8_lossy(bytes);
        let tag = if stream == Stream::Stdout { 'o' } else { 'e' };
        let mut records = String::new();
        for piece in text.split_inclusive('\n') {
            records.push(tag);
            records.push(' ');
            records.push_str(&escape(piece));
            records.push('\n');
        }
        self.combined.write_all(records.as_bytes()).await?;
        self.combined.flush().await
    }

    /// Flushes everything to the files.
    pub async fn finish(mut self) -> std::io::Result<()> {
        for file in [self.stdout.as_mut(), self.stderr.as_mut()]
            .into_iter()
            .flatten()
        {
            file.flush().await?;
        }
        self.combined.flush().await
    }
}

/// Copies the run's plain `stdout` and `stderr` files from `dir` into `dest` (empty files
/// where the engine wrote none), as a published result holds them.
pub async fn write_streams(dir: &Path, dest: &Path) -> std::io::Result<()> {
    for name in ["stdout", "stderr"] {
        match tokio::fs::copy(dir.join(name), dest.join(name)).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tokio::fs::write(dest.join(name), b"").await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads an execution's log: the last `tail` records (all when `None`), then, when `follow`,
/// new records as they are written until `finished` says the execution is over and the file
/// is drained. Each record goes to `send`; reading stops when `send` returns false.
pub async fn read(
    dir: PathBuf,
    tail: Option<usize>,
    follow: bool,
    finished: impl Fn() -> bool,
    mut send: impl FnMut(LogLine) -> bool,
) -> std::io::Result<()> {
    let path = dir.join(LOG_FILE);
    // The file appears when the execution starts; a follower waits for it.
    let file = loop {
        match tokio::fs::File::open(&path).await {
            Ok(file) => break file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !follow || finished() {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let mut reader = BufReader::new(file);
    let parse = |line: &str| -> Option<LogLine> {
        let (tag, text) = line.split_at_checked(2)?;
        let stream = match tag {
            "o " => Stream::Stdout,
            "e " => Stream::Stderr,
            _ => return None,
        };
        Some(LogLine {
            stream,
            text: unescape(text.trim_end_matches('\n')),
        })
    };
    // Read what is there; keep only the last `tail` records of it.
    let mut backlog = std::collections::VecDeque::new();
    let mut line = String::new();
    let mut pending = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        if !line.ends_with('\n') {
            pending = line.clone();
            break;
        }
        if let Some(record) = parse(&line) {
            backlog.push_back(record);
            if let Some(n) = tail
                && backlog.len() > n
            {
                backlog.pop_front();
            }
        }
    }
    for record in backlog {
        if !send(record) {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    loop {
        // Check before reading: a record written before the end is still read below.
        let done = finished();
        line.clear();
        let n = reader.read_line(&mut line).await?;
        if n > 0 {
            pending.push_str(&line);
            if pending.ends_with('\n') {
                if let Some(record) = parse(&pending)
                    && !send(record)
                {
                    return Ok(());
                }
                pending.clear();
            }
            continue;
        }
        if done {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A stream that printed nothing has no file of its own, and is published empty.
    #[tokio::test]
    async fn a_silent_stream_gets_no_file_and_is_published_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::create(dir.path()).await.unwrap();
        writer.write(Stream::Stdout, b"only out\n").await.unwrap();
        writer.finish().await.unwrap();
        assert!(dir.path().join("stdout").exists());
        assert!(!dir.path().join("stderr").exists());
        let published = tempfile::tempdir().unwrap();
        write_streams(dir.path(), published.path()).await.unwrap();
        let read = |name| std::fs::read_to_string(published.path().join(name)).unwrap();
        assert_eq!(read("stdout"), "only out\n");
        assert_eq!(read("stderr"), "");
    }

    #[tokio::test]
    async fn records_round_trip_in_order_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::create(dir.path()).await.unwrap();
        writer.write(Stream::Stdout, b"one\ntwo\n").await.unwrap();
        writer
            .write(Stream::Stderr, b"oops \\ back\n")
            .await
            .unwrap();
        writer.write(Stream::Stdout, b"three\n").await.unwrap();
        writer.finish().await.unwrap();
        let mut lines = Vec::new();
        read(
            dir.path().to_path_buf(),
            Some(2),
            false,
            || true,
            |l| {
                lines.push(l);
                true
            },
        )
        .await
        .unwrap();
        assert_eq!(
            lines,
            vec![
                LogLine {
                    stream: Stream::Stderr,
                    text: "oops \\ back\n".into()
                },
                LogLine {
                    stream: Stream::Stdout,
                    text: "three\n".into()
                },
            ]
        );
        let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        assert_eq!(stdout, "one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn a_follower_sees_lines_written_later_and_stops_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let finished = Arc::new(AtomicBool::new(false));
        let path = dir.path().to_path_buf();
        let done = Arc::clone(&finished);
        let follower = tokio::spawn(async move {
            let mut lines = Vec::new();
            read(
                path,
                None,
                true,
                move || done.load(Ordering::SeqCst),
                |l| {
                    lines.push(l.text);
                    true
                },
            )
            .await
            .unwrap();
            lines
        });
        let mut writer = LogWriter::create(dir.path()).await.unwrap();
        writer.write(Stream::Stdout, b"first\n").await.unwrap();
        writer.write(Stream::Stdout, b"second\n").await.unwrap();
        writer.finish().await.unwrap();
        finished.store(true, Ordering::SeqCst);
        let lines = tokio::time::timeout(std::time::Duration::from_secs(10), follower)
            .await
            .expect("the follower never stopped")
            .unwrap();
        assert_eq!(lines, vec!["first\n", "second\n"]);
    }
}
