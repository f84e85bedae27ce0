//! The download client: a [`Handler`] on the load generator's own port that keeps one download
//! in flight per connection and checks every chunk of it as it arrives.
//!
//! Like the echo client it follows the run's controller through a [`Control`], and aborts its
//! connections at shutdown. A timer per connection catches downloads that stop short.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ringport::{Completion, Handler, Io, SendBuf, WorkerCtx};

use super::expected::Expected;
use super::Protocol;
use crate::control::Control;
use crate::http;
use crate::pattern::Check;
use crate::stats::{Failure, LiveCounter, Stats};

/// Bytes kept from the start of an nc reply, to recognise and quote an error line.
const ERROR_SNIFF: usize = 256;
/// How an nc error reply starts.
const ERROR_PREFIX: &[u8] = b"error: ";
/// Stall checks per stall timeout: a download with no byte received for this many checks in a
/// row has stalled (found between 1 and 1.25 stall timeouts after its last byte).
pub(crate) const STALL_TICKS: u32 = 4;

/// What every worker's client shares: the plan and the live counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    pub(crate) threads: usize,
    pub(crate) protocol: Protocol,
    pub(crate) name: String,
    /// The request, the same for every download.
    pub(crate) request: Arc<[u8]>,
    pub(crate) expected: Expected,
    /// How often each connection checks that its download is moving.
    pub(crate) tick: Duration,
    /// Downloads per worker, warmup included, for the progress display.
    pub(crate) downloads: Box<[LiveCounter]>,
}

impl Shared {
    /// Downloads completed so far by all workers.
    pub(crate) fn downloads(&self) -> u64 {
        self.downloads.iter().map(LiveCounter::get).sum()
    }
}

/// Where a connection is in its download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Connecting: no request sent yet.
    Connecting,
    /// HTTP: reading the response head (in [`Conn::head`]).
    Head,
    /// Reading the body; [`Conn::received`] bytes of it so far, all as expected.
    Body,
}

/// One connection and its download in flight.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    /// Downloads completed.
    downloads: u64,
    stage: Stage,
    received: u64,
    /// HTTP: the response head so far. nc: the first bytes of the reply, to quote an error.
    head: Vec<u8>,
    sent_at: Instant,
    /// Bytes received on the connection, and that count at the last stall check.
    bytes: u64,
    bytes_at_tick: u64,
    quiet_ticks: u32,
}

impl Conn {
    fn new(id: u64) -> Self {
        Conn {
            id,
            downloads: 0,
            stage: Stage::Connecting,
            received: 0,
            head: Vec::new(),
            sent_at: Instant::now(),
            bytes: 0,
            bytes_at_tick: 0,
            quiet_ticks: 0,
        }
    }
}

/// The nc error line at the start of `reply`, if it starts with one: whether its LF has come,
/// and its text (escaped).
fn error_line(reply: &[u8]) -> Option<(bool, String)> {
    let line = reply.strip_prefix(ERROR_PREFIX)?;
    let end = line.iter().position(|&b| b == b'\n');
    let text = line[..end.unwrap_or(line.len())].trim_ascii_end();
    Some((end.is_some(), format!("error: {}", text.escape_ascii())))
}

/// Why a download failed.
type Fail = (Failure, String);

/// The download client of one worker.
#[derive(Debug)]
pub(crate) struct FilesClient {
    shared: Arc<Shared>,
    control: Control,
}

impl FilesClient {
    pub(crate) fn new(worker: usize, shared: Arc<Shared>, results: mpsc::Sender<Stats>) -> Self {
        FilesClient {
            shared,
            control: Control::new(worker, results),
        }
    }

    /// Sends the request of the next download.
    fn request(&self, conn: &mut Conn, io: &mut Io<'_, Conn>) {
        conn.stage = match self.shared.protocol {
            Protocol::Nc => Stage::Body,
            Protocol::Http => Stage::Head,
        };
        conn.received = 0;
        conn.head.clear();
        conn.sent_at = Instant::now();
        io.send(SendBuf::Shared(self.shared.request.clone()));
    }

    /// Takes a chunk of the reply: `Ok(true)` when it completes the download.
    fn received(&mut self, conn: &mut Conn, data: &[u8]) -> Result<bool, Fail> {
        conn.bytes += data.len() as u64;
        match conn.stage {
            Stage::Connecting => Err((
                Failure::Verify,
                format!("{} bytes arrived before any request", data.len()),
            )),
            Stage::Head => self.head(conn, data),
            Stage::Body if self.shared.protocol == Protocol::Nc => self.nc_body(conn, data),
            Stage::Body => self.body(conn, data),
        }
    }

    /// A chunk of an HTTP response head (and maybe the body after it).
    fn head(&mut self, conn: &mut Conn, data: &[u8]) -> Result<bool, Fail> {
        // A head that arrives whole (the usual case) is read in place, without a copy.
        let held = !conn.head.is_empty();
        if held {
            conn.head.extend_from_slice(data);
        }
        let buf = std::mem::take(&mut conn.head);
        let bytes = if held { &buf[..] } else { data };
        let result = match http::parse_head(bytes) {
            Ok(Some(head)) => match head.expect(self.shared.expected.size()) {
                Ok(()) => {
                    conn.stage = Stage::Body;
                    match &bytes[head.len..] {
                        [] => Ok(false),
                        body => self.body(conn, body),
                    }
                }
                Err(why) => Err((Failure::Verify, self.http_error(&why))),
            },
            Ok(None) => {
                conn.head = buf;
                if !held {
                    conn.head.extend_from_slice(data);
                }
                return Ok(false);
            }
            Err(why) => Err((Failure::Verify, self.http_error(&why))),
        };
        conn.head = buf;
        conn.head.clear();
        result
    }

    fn http_error(&self, why: &str) -> String {
        format!("GET /{}: {why}", self.shared.name)
    }

    /// A chunk of an nc reply: the file's bytes, or an error line in their place.
    fn nc_body(&mut self, conn: &mut Conn, data: &[u8]) -> Result<bool, Fail> {
        if conn.received < ERROR_SNIFF as u64 {
            let take = data.len().min(ERROR_SNIFF - conn.received as usize);
            conn.head.extend_from_slice(&data[..take]);
        }
        let result = self.body(conn, data);
        match (&result, error_line(&conn.head)) {
            // Bytes that are not the file and read "error: …": the server said why.
            (Err(_), Some((_, line))) => Err((Failure::Verify, self.nc_error(&line))),
            // Without a local copy, a whole error line is taken for what it says.
            (Ok(false), Some((true, line))) if !self.shared.expected.verifies() => {
                Err((Failure::Verify, self.nc_error(&line)))
            }
            _ => result,
        }
    }

    fn nc_error(&self, line: &str) -> String {
        format!("{}: the server replied {line:?}", self.shared.name)
    }

    /// A chunk of the body.
    fn body(&mut self, conn: &mut Conn, data: &[u8]) -> Result<bool, Fail> {
        let expected = &self.shared.expected;
        let done = match expected.check(conn.received, data) {
            Check::Partial => false,
            Check::Complete => true,
            Check::Mismatch { at } if at as u64 >= expected.size() => {
                let why = format!(
                    "{}: more than the {} bytes expected",
                    self.shared.name,
                    expected.size()
                );
                return Err((Failure::Verify, why));
            }
            Check::Mismatch { at } => {
                let why = format!(
                    "{}: byte {at} differs from the local copy (download {} on connection {})",
                    self.shared.name,
                    conn.downloads + 1,
                    conn.id
                );
                return Err((Failure::Verify, why));
            }
        };
        conn.received += data.len() as u64;
        if self.control.measuring() {
            self.control.stats.bytes_received += data.len() as u64;
        }
        Ok(done)
    }

    /// The stall check: a download with no byte for [`STALL_TICKS`] ticks has stalled.
    fn tick(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>) {
        let moving = conn.bytes != conn.bytes_at_tick || conn.stage == Stage::Connecting;
        conn.bytes_at_tick = conn.bytes;
        conn.quiet_ticks = if moving { 0 } else { conn.quiet_ticks + 1 };
        if conn.quiet_ticks >= STALL_TICKS {
            let why = format!(
                "{}: no byte for {:?} after {} of {} bytes",
                self.shared.name,
                self.shared.tick * STALL_TICKS,
                conn.received,
                self.shared.expected.size()
            );
            self.control.fail(io, Failure::Io, why);
        } else {
            io.set_timeout(self.shared.tick);
        }
    }
}

impl Handler for FilesClient {
    type Conn = Conn;
    type Msg = u64;

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        // The load generator's port listens nowhere; refuse anything all the same.
        io.abort();
        Conn::new(u64::MAX)
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, Conn>) {
        let s = &self.shared;
        self.control
            .connect(worker, s.addr, s.conns, s.threads, Conn::new);
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match completion {
            Completion::Connected => {
                self.control.stats.connected += 1;
                io.recv();
                io.set_timeout(self.shared.tick);
                self.request(conn, io);
            }
            Completion::Received(buf) => {
                let result = self.received(conn, &buf);
                // The buffer goes back to the pool before anything else happens.
                drop(buf);
                match result {
                    Ok(false) => {}
                    Ok(true) => {
                        let latency = conn.sent_at.elapsed();
                        if self.control.measuring() {
                            self.control.stats.record(latency, 0);
                        }
                        conn.downloads += 1;
                        self.shared.downloads[self.control.worker()].bump();
                        self.request(conn, io);
                    }
                    Err((failure, why)) => self.control.fail(io, failure, why),
                }
            }
            Completion::Sent(_) => {}
            Completion::Timeout => self.tick(conn, io),
            Completion::Eof => {
                let why = format!(
                    "{}: the server closed the connection after {} of {} bytes",
                    self.shared.name,
                    conn.received,
                    self.shared.expected.size()
                );
                self.control.fail(io, Failure::Io, why);
            }
            Completion::Failed { op, error } => self.control.failed(io, op, &error),
            _ => {}
        }
    }

    fn message(&mut self, _: &mut WorkerCtx<'_, Conn>, value: u64) {
        self.control.posted(value);
    }

    fn shutdown(&mut self, _: &mut Conn, io: &mut Io<'_, Conn>) {
        io.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_error_lines() {
        assert_eq!(
            error_line(b"error: no such file: a\x1b\r\n"),
            Some((true, "error: no such file: a\\x1b".to_owned()))
        );
        assert_eq!(
            error_line(b"error: no such"),
            Some((false, "error: no such".to_owned()))
        );
        assert_eq!(error_line(b"erro"), None);
        assert_eq!(error_line(b"\x7fELF"), None);
    }
}
