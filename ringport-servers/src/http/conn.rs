//! The per-connection state machine of HTTP: read a head → route → (cache hit: one send) or
//! open beneath the folder → inspect → negotiate → conditionals and ranges → head and body →
//! next request.
//!
//! A connection serves one request at a time, in order, so pipelined responses can never
//! overtake each other; a response is queued (head and body, the file by `send_file`) and the
//! next request is taken at once unless a file is still being sent or more than
//! [`UNSENT_LIMIT`] bytes wait to be sent. While a request is being served, at most one more
//! head's worth of input ([`super::HttpConfig::max_header_bytes`]) is buffered; past that,
//! receiving stops. When the server closes the connection (an error that breaks framing,
//! `Connection: close`, HTTP/1.0), it first lets queued sends finish, then shuts its sending
//! side and reads and drops what the client still sends for up to [`LINGER`], so that the
//! client reads the response rather than a reset.

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringport::{Completion, Io, OpKind};
use tracing::debug;

use super::cache::Cache;
use super::log::{AccessLog, Record};
use super::request::{self, Limits, Parsed, Request};
use super::response::{Persist, Status};
use super::HttpConfig;
use respond::Job;

mod respond;

/// Queued output bytes past which no further request is taken until some are sent.
pub const UNSENT_LIMIT: usize = 256 * 1024;
/// How long a closing connection keeps reading (and dropping) what the client sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// File bodies of at least this many bytes are sent corked (`TCP_CORK`, nginx's `tcp_nopush`):
/// no partial segment leaves between `sendfile` rounds, and the cork comes off when the file is
/// sent. Measured (`docs/BENCHMARKS.md`): 1.06–1.7× the MB/s for 256 MiB bodies, but twice the
/// CPU per request for 64 KiB and 1 MiB bodies over 50 connections, hence only large bodies.
/// Windows has no cork: there this changes nothing.
pub const CORK_AT: u64 = 16 << 20;

/// What every worker's HTTP side shares.
#[derive(Debug)]
pub(crate) struct HttpShared {
    pub(crate) root: Arc<ringport::Dir>,
    pub(crate) cfg: HttpConfig,
    pub(crate) log: Option<AccessLog>,
    pub(crate) workers: usize,
}

/// The HTTP side of one worker: its settings and its cache.
#[derive(Debug)]
pub struct HttpServer {
    shared: Arc<HttpShared>,
    cache: Cache,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking requests.
    Serving,
    /// The last response is queued: waiting for it to be sent, then lingering.
    Closing,
    /// Sending side shut; reading and dropping input until EOF or the deadline.
    Lingering,
}

/// What the connection's timer stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// No request: keep-alive idle time.
    Idle,
    /// Part of a request has come: the rest must come by the deadline.
    Request,
    /// A response is being sent.
    Busy,
    /// Lingering before the close.
    Lingering,
}

/// The connection's timer, re-armed lazily: moving the deadline later costs nothing; when the
/// kernel timer fires early, it is armed again for what is left.
#[derive(Debug)]
struct Timer {
    wait: Wait,
    deadline: Instant,
    /// When the armed kernel timer fires, if one is armed.
    armed: Option<Instant>,
}

/// Per-connection state of HTTP.
#[derive(Debug)]
pub struct HttpConn {
    peer: Option<SocketAddr>,
    /// Received bytes not parsed yet.
    input: Vec<u8>,
    /// Body bytes of the last request still to read and drop.
    discard: u64,
    job: Option<Job>,
    /// File sends queued or in flight.
    files: u32,
    /// `TCP_CORK` is on.
    corked: bool,
    phase: Phase,
    eof: bool,
    quitting: bool,
    timer: Timer,
}

impl HttpConn {
    /// A connection from `peer` (known only when it is logged). `deadline`: the first request
    /// began arriving before the connection was known to speak HTTP and must be whole by the
    /// first instant; the timer armed then fires at the second.
    pub fn new(peer: Option<SocketAddr>, deadline: Option<(Instant, Instant)>) -> Self {
        HttpConn {
            peer,
            input: Vec::new(),
            discard: 0,
            job: None,
            files: 0,
            corked: false,
            phase: Phase::Serving,
            eof: false,
            quitting: false,
            timer: match deadline {
                Some((deadline, armed)) => Timer {
                    wait: Wait::Request,
                    deadline,
                    armed: Some(armed),
                },
                None => Timer {
                    wait: Wait::Idle,
                    deadline: Instant::now(),
                    armed: None,
                },
            },
        }
    }

    fn busy<C>(&self, io: &Io<'_, C>) -> bool {
        self.job.is_some() || self.files > 0 || io.unsent() > 0
    }
}

impl HttpServer {
    pub(crate) fn new(shared: Arc<HttpShared>) -> Self {
        let cfg = &shared.cfg;
        let per_worker = cfg.cache_size / shared.workers.max(1) as u64;
        let cache = Cache::new(per_worker, cfg.cache_max_file, cfg.cache_settle);
        HttpServer { shared, cache }
    }

    fn cfg(&self) -> &HttpConfig {
        &self.shared.cfg
    }

    /// Takes over a connection whose first bytes, `first`, are an HTTP request line.
    pub fn start<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>, first: &[u8]) {
        conn.input.extend_from_slice(first);
        self.advance(conn, io);
    }

    /// Handles one completion of the connection.
    pub fn completion<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        completion: Completion,
    ) {
        match completion {
            // Closing connections drop what they read.
            Completion::Received(buf) if conn.phase == Phase::Serving => {
                conn.input.extend_from_slice(&buf);
            }
            Completion::FileSent { .. } => {
                conn.files -= 1;
                if conn.files == 0 && conn.corked {
                    conn.corked = false;
                    crate::sys::set_cork(io.socket(), false);
                }
            }
            Completion::Opened(result) => self.opened(conn, io, result),
            Completion::Eof => conn.eof = true,
            Completion::Timeout => {
                conn.timer.armed = None;
                if Instant::now() >= conn.timer.deadline {
                    self.expired(conn, io);
                }
            }
            Completion::Failed { op, error } => {
                let what = if op == OpKind::SendFile {
                    "transfer failed"
                } else {
                    "failed"
                };
                debug!(key = %io.key(), peer = ?conn.peer, ?op, "http: {what}: {error}");
                io.abort();
                return;
            }
            _ => {}
        }
        self.advance(conn, io);
    }

    /// The server is shutting down: finish the response in progress, then close.
    pub fn shutdown<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>) {
        conn.quitting = true;
        self.advance(conn, io);
    }

    fn expired<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>) {
        match conn.timer.wait {
            Wait::Idle | Wait::Lingering => io.close(),
            Wait::Request => {
                debug!(key = %io.key(), peer = ?conn.peer, "http: request timeout");
                self.error(conn, io, None, Status::RequestTimeout, Persist::Close);
            }
            // A transfer to a slow reader is not idleness.
            Wait::Busy => conn.timer.deadline = Instant::now() + self.cfg().keepalive_timeout,
        }
    }

    /// Takes the next requests as far as the state allows, then sets receiving and the timer.
    fn advance<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>) {
        loop {
            if io.is_closing() {
                return;
            }
            if conn.phase != Phase::Serving {
                self.progress_close(conn, io);
                break;
            }
            if conn.job.is_some() || conn.files > 0 || io.unsent() >= UNSENT_LIMIT {
                break;
            }
            if conn.quitting {
                io.close();
                return;
            }
            if conn.discard > 0 {
                let n = conn
                    .input
                    .len()
                    .min(usize::try_from(conn.discard).unwrap_or(usize::MAX));
                conn.input.drain(..n);
                conn.discard -= n as u64;
                if conn.discard > 0 {
                    break;
                }
            }
            if conn.input.is_empty() {
                if conn.eof {
                    io.close();
                    return;
                }
                break;
            }
            let limits = Limits {
                max_bytes: self.cfg().max_header_bytes,
                max_headers: self.cfg().max_headers,
                keep_log_fields: self.shared.log.is_some(),
            };
            match request::parse(&conn.input, limits) {
                Parsed::Partial if conn.eof => {
                    io.close();
                    return;
                }
                Parsed::Partial => break,
                Parsed::Invalid(status) => self.error(conn, io, None, status, Persist::Close),
                Parsed::Complete(req, len) => {
                    conn.input.drain(..len);
                    self.request(conn, io, req);
                }
            }
        }
        self.set_receiving(conn, io);
        self.set_timer(conn, io);
    }

    fn set_receiving<C>(&self, conn: &HttpConn, io: &mut Io<'_, C>) {
        let want = match conn.phase {
            // Drain what the client sends until it stops.
            Phase::Closing | Phase::Lingering => !conn.eof,
            Phase::Serving => {
                let full = conn.busy(io) && conn.input.len() >= self.cfg().max_header_bytes;
                !(conn.eof || conn.quitting || full)
            }
        };
        if want && !io.is_receiving() {
            io.recv();
        } else if !want && io.is_receiving() {
            io.stop_recv();
        }
    }

    fn set_timer<C>(&self, conn: &mut HttpConn, io: &mut Io<'_, C>) {
        if io.is_closing() || conn.phase == Phase::Lingering {
            return;
        }
        let now = Instant::now();
        let cfg = self.cfg();
        let (wait, deadline) = match conn.phase {
            // Sending: every completion is progress and moves the deadline.
            Phase::Closing => (Wait::Busy, now + cfg.keepalive_timeout),
            Phase::Serving if conn.busy(io) => (Wait::Busy, now + cfg.keepalive_timeout),
            Phase::Serving if !conn.input.is_empty() || conn.discard > 0 => {
                (Wait::Request, now + cfg.header_timeout)
            }
            Phase::Serving | Phase::Lingering => (Wait::Idle, now + cfg.keepalive_timeout),
        };
        if wait == conn.timer.wait && wait != Wait::Busy {
            // The same wait goes on: its deadline stays (bytes of a slow request, or a timer
            // that fired early, do not extend it).
            if conn.timer.armed.is_none() {
                arm(conn, io, wait, conn.timer.deadline);
            }
            return;
        }
        arm(conn, io, wait, deadline);
    }

    /// A closing connection: once everything queued is sent, shut the sending side and linger.
    fn progress_close<C>(&self, conn: &mut HttpConn, io: &mut Io<'_, C>) {
        if conn.phase != Phase::Closing || conn.files > 0 || io.unsent() > 0 {
            return;
        }
        if conn.eof || conn.quitting {
            io.close();
            return;
        }
        let _ = socket2::SockRef::from(&io.socket()).shutdown(std::net::Shutdown::Write);
        conn.phase = Phase::Lingering;
        arm(conn, io, Wait::Lingering, Instant::now() + LINGER);
    }

    /// A response is queued: log it, and start closing if it was the last.
    fn sent(
        &mut self,
        conn: &mut HttpConn,
        req: &Request,
        status: Status,
        bytes: u64,
        persist: Persist,
    ) {
        if self.shared.log.is_some() {
            let line = [
                req.method().as_str().as_bytes(),
                b" ",
                &req.target,
                format!(" HTTP/1.{}", req.minor).as_bytes(),
            ]
            .concat();
            self.log(conn, &line, Some(req), status, bytes);
        }
        if persist == Persist::Close {
            self.closing(conn);
        }
    }

    fn closing(&self, conn: &mut HttpConn) {
        conn.phase = Phase::Closing;
        conn.input = Vec::new();
        conn.discard = 0;
    }

    fn log(&self, conn: &HttpConn, line: &[u8], req: Option<&Request>, status: Status, bytes: u64) {
        if let Some(log) = &self.shared.log {
            let record = Record {
                peer: conn.peer,
                request: line,
                status: status.code(),
                bytes,
                referer: req.and_then(|r| r.referer.as_deref()),
                user_agent: req.and_then(|r| r.user_agent.as_deref()),
            };
            log.write(super::date::with_log_date(|d| record.line(d)));
        }
    }
}

/// Sets the timer's meaning and deadline, arming the kernel timer only when it would fire
/// too late.
fn arm<C>(conn: &mut HttpConn, io: &mut Io<'_, C>, wait: Wait, deadline: Instant) {
    conn.timer.wait = wait;
    conn.timer.deadline = deadline;
    if conn.timer.armed.is_none_or(|at| at > deadline) {
        io.set_timeout(deadline.saturating_duration_since(Instant::now()));
        conn.timer.armed = Some(deadline);
    }
}
