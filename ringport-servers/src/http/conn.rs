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

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringport::{Completion, Io, OpKind};
use tracing::debug;

use super::cache::{Cache, Entry, Identity};
use super::conditional::{self, Decision, Validators};
use super::listing;
use super::log::{AccessLog, Record};
use super::negotiate::{preferences, Coding};
use super::path::{route, Target};
use super::range::{self, Ranged};
use super::request::{self, Limits, Method, Parsed, Request};
use super::response::{self, ErrorExtras, FileFacts, FileHead, Persist, Status};
use super::HttpConfig;

/// Queued output bytes past which no further request is taken until some are sent.
pub const UNSENT_LIMIT: usize = 256 * 1024;
/// How long a closing connection keeps reading (and dropping) what the client sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// File bodies of at least this many bytes are sent corked (`TCP_CORK`, nginx's `tcp_nopush`):
/// no partial segment leaves between `sendfile` rounds, and the cork comes off when the file is
/// sent. Measured (`docs/BENCHMARKS.md`): 1.06–1.7× the MB/s for 256 MiB bodies, but twice the
/// CPU per request for 64 KiB and 1 MiB bodies over 50 connections, hence only large bodies.
pub const CORK_AT: u64 = 16 << 20;

/// What every worker's HTTP side shares.
#[derive(Debug)]
pub(crate) struct HttpShared {
    pub(crate) root: Arc<OwnedFd>,
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

/// Which open a request is waiting for.
#[derive(Debug)]
enum Step {
    /// The target itself.
    Target,
    /// `index.html` of the target folder.
    Index,
    /// The target folder again, to list it.
    List,
    /// A precompressed side file of `name`.
    Side { coding: Coding, name: Vec<u8> },
    /// `name` again, after its side file could not be opened.
    Original { name: Vec<u8> },
}

/// A request waiting for a file to open.
#[derive(Debug)]
struct Job {
    req: Box<Request>,
    target: Target,
    persist: Persist,
    step: Step,
}

/// What a response's body comes from.
enum Body {
    /// An open file, sent with `send_file`.
    File(File),
    /// Cached bytes.
    Bytes(Arc<[u8]>),
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

/// The status for an error opening a file.
fn open_status(e: &std::io::Error) -> Status {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => Status::Forbidden,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Status::Unavailable,
        Some(
            libc::ENOENT
            | libc::ENOTDIR
            | libc::EXDEV
            | libc::ELOOP
            | libc::ENAMETOOLONG
            | libc::ENXIO
            | libc::ENODEV
            | libc::EINVAL,
        ) => Status::NotFound,
        _ if e.kind() == std::io::ErrorKind::InvalidInput => Status::BadRequest,
        _ => Status::InternalError,
    }
}

fn with_suffix(name: &[u8], suffix: &str) -> Vec<u8> {
    [name, suffix.as_bytes()].concat()
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
                    let _ = rustix::net::sockopt::set_tcp_cork(io.socket(), false);
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
        let _ = rustix::net::shutdown(io.socket(), rustix::net::Shutdown::Write);
        conn.phase = Phase::Lingering;
        arm(conn, io, Wait::Lingering, Instant::now() + LINGER);
    }

    /// One complete request head.
    fn request<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>, req: Box<Request>) {
        let persist = match (req.keep_alive, req.minor) {
            (false, _) => Persist::Close,
            (true, 0) => Persist::KeepAlive,
            (true, _) => Persist::Default,
        };
        let persist = if conn.quitting {
            Persist::Close
        } else {
            persist
        };
        if req.content_length > self.cfg().max_body {
            return self.error(
                conn,
                io,
                Some(&req),
                Status::PayloadTooLarge,
                Persist::Close,
            );
        }
        conn.discard = req.content_length;
        if let Method::Other(_) = req.method() {
            return self.error(conn, io, Some(&req), Status::MethodNotAllowed, persist);
        }
        let target = match route(&req.target, self.cfg().hidden) {
            Ok(t) => t,
            Err(status) => {
                let persist = if status.closes() {
                    Persist::Close
                } else {
                    persist
                };
                return self.error(conn, io, Some(&req), status, persist);
            }
        };
        let key = if target.slash {
            target.child("index.html")
        } else {
            target.relative()
        };
        if let Some(entry) = self.cached(&req, &key) {
            let head = entry.head.clone();
            let size = entry.identity.size;
            let body = Body::Bytes(entry.bytes.clone());
            return self.respond(conn, io, &req, &head, size, body, persist);
        }
        let path = target.relative();
        let job = Job {
            req,
            target,
            persist,
            step: Step::Target,
        };
        self.open(conn, io, job, &path);
    }

    /// A cache hit for `key`, unless a side file might be chosen instead.
    fn cached(&mut self, req: &Request, key: &[u8]) -> Option<&Entry> {
        if self.cache.is_empty() {
            return None;
        }
        if let Some(codings) = self.negotiable(req) {
            let root = &*self.shared.root;
            let side = codings
                .iter()
                .any(|c| Identity::stat_at(root, &with_suffix(key, c.extension())).is_some());
            if side {
                return None;
            }
        }
        self.cache.get(&*self.shared.root, key)
    }

    /// The codings to try for this request, if any.
    fn negotiable(&self, req: &Request) -> Option<Vec<Coding>> {
        if !self.cfg().precompressed {
            return None;
        }
        let prefs = preferences(req.accept_encoding.as_deref()?);
        (!prefs.is_empty()).then_some(prefs)
    }

    fn open<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>, job: Job, path: &[u8]) {
        match io.open_beneath(&self.shared.root, path) {
            Ok(()) => conn.job = Some(job),
            Err(e) => self.error(conn, io, Some(&job.req), open_status(&e), job.persist),
        }
    }

    fn opened<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        result: std::io::Result<File>,
    ) {
        let Some(mut job) = conn.job.take() else {
            return;
        };
        let opened = result.and_then(|f| Ok((f.metadata()?, f)));
        let (meta, file) = match (opened, &job.step) {
            (Ok(ok), _) => ok,
            (Err(_), Step::Index) if self.cfg().list => {
                job.step = Step::List;
                let path = job.target.relative();
                return self.open(conn, io, job, &path);
            }
            (Err(_), Step::Side { name, .. }) => {
                let name = name.clone();
                job.step = Step::Original { name: name.clone() };
                return self.open(conn, io, job, &name);
            }
            (Err(e), _) => {
                let status = match job.step {
                    Step::Target => open_status(&e),
                    _ => Status::NotFound,
                };
                return self.error(conn, io, Some(&job.req), status, job.persist);
            }
        };
        match std::mem::replace(&mut job.step, Step::Target) {
            Step::Target if meta.is_dir() && !job.target.slash => {
                let location = job.target.with_slash();
                self.redirect(conn, io, &job, &location);
            }
            Step::Target if meta.is_dir() => {
                drop(file);
                job.step = Step::Index;
                let path = job.target.child("index.html");
                self.open(conn, io, job, &path);
            }
            Step::Target if meta.is_file() && !job.target.slash => {
                let name = job.target.relative();
                self.regular(conn, io, job, name, file, &meta);
            }
            Step::Index if meta.is_file() => {
                let name = job.target.child("index.html");
                self.regular(conn, io, job, name, file, &meta);
            }
            Step::Index if self.cfg().list => {
                drop(file);
                job.step = Step::List;
                let path = job.target.relative();
                self.open(conn, io, job, &path);
            }
            Step::List if meta.is_dir() => self.list(conn, io, &job, file),
            Step::Side { coding, name } if meta.is_file() => {
                self.serve(conn, io, &job, &name, Some(coding), file, &meta);
            }
            Step::Side { name, .. } => {
                drop(file);
                job.step = Step::Original { name: name.clone() };
                self.open(conn, io, job, &name);
            }
            Step::Original { name } if meta.is_file() => {
                self.serve(conn, io, &job, &name, None, file, &meta);
            }
            _ => self.error(conn, io, Some(&job.req), Status::NotFound, job.persist),
        }
    }

    /// A regular file `name` is open: send a side file instead if one fits, else this one.
    fn regular<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        mut job: Job,
        name: Vec<u8>,
        file: File,
        meta: &std::fs::Metadata,
    ) {
        if let Some(codings) = self.negotiable(&job.req) {
            let root = &*self.shared.root;
            let found = codings
                .into_iter()
                .find(|c| Identity::stat_at(root, &with_suffix(&name, c.extension())).is_some());
            if let Some(coding) = found {
                // One file open per connection at a time: the original is closed meanwhile.
                drop(file);
                let side = with_suffix(&name, coding.extension());
                job.step = Step::Side { coding, name };
                return self.open(conn, io, job, &side);
            }
        }
        self.serve(conn, io, &job, &name, None, file, meta);
    }

    /// Serves an open regular file (`name` gives its type; `coding` says it is a side file).
    #[allow(clippy::too_many_arguments)]
    fn serve<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        job: &Job,
        name: &[u8],
        coding: Option<Coding>,
        file: File,
        meta: &std::fs::Metadata,
    ) {
        let identity = Identity::of(meta);
        let cfg = self.cfg();
        let head = FileHead::new(&FileFacts {
            name,
            size: identity.size,
            mtime: identity.mtime,
            coding,
            cache_control: cfg.cache_control.as_deref(),
            vary: cfg.precompressed,
        });
        let mut body = Body::File(file);
        if coding.is_none() && !job.req.is_head() && self.cache.takes(&identity) {
            let Body::File(file) = &body else {
                unreachable!()
            };
            let mut bytes = vec![0; identity.size as usize];
            if file.read_exact_at(&mut bytes, 0).is_ok() {
                let entry = Entry {
                    identity,
                    bytes: bytes.into(),
                    head: Arc::new(head.clone()),
                };
                body = Body::Bytes(entry.bytes.clone());
                self.cache.insert(name.to_vec(), entry);
            }
        }
        self.respond(conn, io, &job.req, &head, identity.size, body, job.persist);
    }

    /// Conditionals, range, head and body of a file response.
    #[allow(clippy::too_many_arguments)]
    fn respond<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        req: &Request,
        head: &FileHead,
        size: u64,
        body: Body,
        persist: Persist,
    ) {
        let v = Validators {
            etag: &head.etag,
            modified_secs: head.modified_secs,
        };
        match conditional::evaluate(req, &v) {
            Decision::Failed => {
                return self.error(conn, io, Some(req), Status::PreconditionFailed, persist)
            }
            Decision::NotModified => {
                let mut out = Vec::with_capacity(256);
                response::start(&mut out, Status::NotModified);
                out.extend_from_slice(head.validators.as_bytes());
                response::finish(&mut out, persist);
                io.send(out);
                return self.sent(conn, req, Status::NotModified, 0, persist);
            }
            Decision::Proceed => {}
        }
        let ranged = match &req.range {
            Some(r) if conditional::range_allowed(req, &v) => range::evaluate(r, size),
            _ => Ranged::Whole,
        };
        let (status, start, len) = match ranged {
            Ranged::Whole => (Status::Ok, 0, size),
            Ranged::Part { start, end } => (Status::PartialContent, start, end - start + 1),
            Ranged::Unsatisfiable => {
                let extras = ErrorExtras {
                    unsatisfied_size: Some(size),
                    vary: self.cfg().precompressed,
                    ..ErrorExtras::default()
                };
                return self.error_with(
                    conn,
                    io,
                    Some(req),
                    Status::RangeNotSatisfiable,
                    persist,
                    &extras,
                );
            }
        };
        let head_only = req.is_head();
        let inline = match &body {
            Body::Bytes(_) if !head_only => len as usize,
            _ => 0,
        };
        let mut out = Vec::with_capacity(320 + inline);
        response::start(&mut out, status);
        out.extend_from_slice(head.lines.as_bytes());
        response::content_length(&mut out, len);
        if status == Status::PartialContent {
            use std::fmt::Write as _;
            let _ = write!(
                response::Buf(&mut out),
                "Content-Range: bytes {start}-{}/{size}\r\n",
                start + len - 1
            );
        }
        response::finish(&mut out, persist);
        match body {
            _ if head_only => io.send(out),
            Body::Bytes(bytes) => {
                let from = start as usize;
                out.extend_from_slice(&bytes[from..from + len as usize]);
                io.send(out);
            }
            Body::File(file) if len > 0 => {
                if len >= CORK_AT && !conn.corked {
                    conn.corked = rustix::net::sockopt::set_tcp_cork(io.socket(), true).is_ok();
                }
                io.send(out);
                io.send_file(Rc::new(file), start, len);
                conn.files += 1;
            }
            Body::File(_) => io.send(out),
        }
        let bytes = if head_only { 0 } else { len };
        self.sent(conn, req, status, bytes, persist);
    }

    /// The listing of an open folder.
    fn list<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>, job: &Job, dir: File) {
        let (items, left_out) = match listing::read(dir, self.cfg().hidden) {
            Ok(read) => read,
            Err(e) => {
                debug!(key = %io.key(), "http: listing: {e}");
                return self.error(conn, io, Some(&job.req), Status::Forbidden, job.persist);
            }
        };
        let page = listing::page(&job.target.segments, &items, left_out);
        let mut out = Vec::with_capacity(256 + page.len());
        response::start(&mut out, Status::Ok);
        response::header(&mut out, "Content-Type", "text/html; charset=utf-8");
        response::header(&mut out, "Cache-Control", "no-cache");
        response::content_length(&mut out, page.len() as u64);
        response::finish(&mut out, job.persist);
        let head_only = job.req.is_head();
        if !head_only {
            out.extend_from_slice(page.as_bytes());
        }
        io.send(out);
        let bytes = if head_only { 0 } else { page.len() as u64 };
        self.sent(conn, &job.req, Status::Ok, bytes, job.persist);
    }

    fn redirect<C>(&mut self, conn: &mut HttpConn, io: &mut Io<'_, C>, job: &Job, location: &str) {
        let extras = ErrorExtras {
            location: Some(location),
            ..ErrorExtras::default()
        };
        self.error_with(
            conn,
            io,
            Some(&job.req),
            Status::MovedPermanently,
            job.persist,
            &extras,
        );
    }

    fn error<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        req: Option<&Request>,
        status: Status,
        persist: Persist,
    ) {
        let extras = ErrorExtras {
            allow: status == Status::MethodNotAllowed,
            ..ErrorExtras::default()
        };
        self.error_with(conn, io, req, status, persist, &extras);
    }

    fn error_with<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        req: Option<&Request>,
        status: Status,
        persist: Persist,
        extras: &ErrorExtras<'_>,
    ) {
        let persist = if status.closes() || req.is_none() {
            Persist::Close
        } else {
            persist
        };
        let head_only = req.is_some_and(Request::is_head);
        let (out, body) = response::error(status, head_only, persist, extras);
        io.send(out);
        match req {
            Some(req) => self.sent(conn, req, status, body, persist),
            None => {
                let first = conn.input.split(|&b| b == b'\n').next().unwrap_or(&[]);
                let line = &first[..first.len().min(200)];
                self.log(conn, line.trim_ascii_end(), None, status, 0);
                self.closing(conn);
            }
        }
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
