//! The access log, in the combined log format of nginx and Apache:
//!
//! ```text
//! 127.0.0.1 - - [02/Dec/2026:05:39:16 +0000] "GET /a.txt HTTP/1.1" 200 1234 "-" "curl/7.88.1"
//! ```
//!
//! Fields that come from the client (request line, referer, user agent) are escaped: control
//! characters, quotes, backslashes and bytes past ASCII become `\xHH`, so that a request can
//! neither forge a line nor write terminal escapes. Times are UTC.
//!
//! Workers never block on the log: each line goes through a bounded queue to a thread that
//! owns the file (or standard output) and writes in batches. When the queue is full the line
//! is dropped and counted; the writer reports the count.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// Lines queued at most before new ones are dropped.
pub const QUEUE: usize = 16 * 1024;

/// Where the log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output (`-`).
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

impl std::str::FromStr for Target {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" {
            Target::Stdout
        } else {
            Target::File(s.into())
        })
    }
}

/// The sending side of the access log, shared by the workers.
#[derive(Debug)]
pub struct AccessLog {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

/// One request's line.
#[derive(Debug)]
pub struct Record<'a> {
    /// The client.
    pub peer: Option<SocketAddr>,
    /// The request line as received (method, target, version), or as much of the first line
    /// as was read when it could not be parsed.
    pub request: &'a [u8],
    /// The status sent.
    pub status: u16,
    /// Body bytes sent (or queued).
    pub bytes: u64,
    /// `Referer`.
    pub referer: Option<&'a [u8]>,
    /// `User-Agent`.
    pub user_agent: Option<&'a [u8]>,
}

/// Appends `bytes` escaped for a quoted log field.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
}

impl Record<'_> {
    /// The line, with its newline.
    pub fn line(&self, date: &str) -> String {
        let mut out = String::with_capacity(160);
        match self.peer {
            Some(p) => {
                let _ = write!(out, "{}", p.ip());
            }
            None => out.push('-'),
        }
        let _ = write!(out, " - - [{date}] \"");
        escape_into(&mut out, self.request);
        let _ = write!(out, "\" {} {} \"", self.status, self.bytes);
        escape_into(&mut out, self.referer.unwrap_or(b"-"));
        out.push_str("\" \"");
        escape_into(&mut out, self.user_agent.unwrap_or(b"-"));
        out.push_str("\"\n");
        out
    }
}

impl AccessLog {
    /// Opens `target` and starts the writer thread.
    ///
    /// # Errors
    /// When the file cannot be opened for appending.
    pub fn open(target: &Target) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match target {
            Target::Stdout => Box::new(io::stdout()),
            Target::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("access log {}: {e}", path.display()))
                    })?,
            ),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("ringport-log".into())
            .spawn(move || write_lines(&rx, sink, &counter))?;
        Ok(AccessLog { tx, dropped })
    }

    /// Queues one line; drops it (and counts it) when the queue is full.
    pub fn write(&self, line: String) {
        match self.tx.try_send(line) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread: batches what is queued, flushes when the queue is empty, ends when every
/// sender is gone.
fn write_lines(rx: &Receiver<String>, sink: Box<dyn Write + Send>, dropped: &AtomicU64) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, sink);
    let mut failed = false;
    while let Ok(line) = rx.recv() {
        let mut result = out.write_all(line.as_bytes());
        while let Ok(line) = rx.try_recv() {
            result = result.and_then(|()| out.write_all(line.as_bytes()));
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!("access log: {lost} lines dropped (the writer fell behind)");
        }
        if let Err(e) = result.and_then(|()| out.flush()) {
            if !failed {
                tracing::error!("access log: {e}");
                failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format_escaped() {
        let r = Record {
            peer: Some("127.0.0.1:5555".parse().unwrap()),
            request: b"GET /\x1b[2J\"x\\y\xff HTTP/1.1",
            status: 404,
            bytes: 14,
            referer: None,
            user_agent: Some(b"curl/8 \"evil\"\n"),
        };
        assert_eq!(
            r.line("02/Dec/2026:05:39:16 +0000"),
            "127.0.0.1 - - [02/Dec/2026:05:39:16 +0000] \"GET /\\x1B[2J\\x22x\\x5Cy\\xFF HTTP/1.1\" \
             404 14 \"-\" \"curl/8 \\x22evil\\x22\\x0A\"\n"
        );
    }

    #[test]
    fn writes_to_a_file() {
        let path = std::env::temp_dir().join(format!("ringport-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = AccessLog::open(&Target::File(path.clone())).unwrap();
        log.write("one\n".into());
        log.write("two\n".into());
        drop(log);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text == "one\ntwo\n" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "log: {text:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(&path);
    }
}
