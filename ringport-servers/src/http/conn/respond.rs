//! Answering one request: routing, opening beneath the folder, negotiating a side file,
//! conditionals and ranges, then the response's head and body (or an error, a redirect, a
//! listing).

use std::fs::File;
use std::rc::Rc;
use std::sync::Arc;

use ringport::{Io, OpenFailure};
use tracing::debug;

use super::super::cache::{Entry, Identity};
use super::super::conditional::{self, Decision, Validators};
use super::super::listing;
use super::super::negotiate::{preferences, Coding};
use super::super::path::{route, Target};
use super::super::range::{self, Ranged};
use super::super::request::{Method, Request};
use super::super::response::{self, ErrorExtras, FileFacts, FileHead, Persist, Status};
use super::{HttpConn, HttpServer, CORK_AT};
use crate::sys::{self, Folder, Found};

/// Which open a request is waiting for.
#[derive(Debug)]
pub(super) enum Step {
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
pub(super) struct Job {
    req: Box<Request>,
    target: Target,
    persist: Persist,
    step: Step,
}

impl Job {
    /// The path the step opens, relative to the served folder.
    fn path(&self) -> Vec<u8> {
        match &self.step {
            Step::Target | Step::List => self.target.relative(),
            Step::Index => self.target.child("index.html"),
            Step::Side { coding, name } => with_suffix(name, coding.extension()),
            Step::Original { name } => name.clone(),
        }
    }
}

/// What a response's body comes from.
pub(super) enum Body {
    /// An open file, sent with `send_file`.
    File(File),
    /// Cached bytes.
    Bytes(Arc<[u8]>),
}

/// The status for an error opening a file.
pub(super) fn open_status(e: &std::io::Error) -> Status {
    match OpenFailure::of(e) {
        OpenFailure::PermissionDenied => Status::Forbidden,
        OpenFailure::Busy => Status::Unavailable,
        OpenFailure::NotFound
        | OpenFailure::Outside
        | OpenFailure::LinkLoop
        | OpenFailure::NameTooLong
        | OpenFailure::NotRegular => Status::NotFound,
        // The system's EINVAL: a name it cannot take.
        _ if e.kind() == std::io::ErrorKind::InvalidInput && e.raw_os_error().is_some() => {
            Status::NotFound
        }
        // Ours: a NUL byte in the path.
        _ if e.kind() == std::io::ErrorKind::InvalidInput => Status::BadRequest,
        _ => Status::InternalError,
    }
}

pub(super) fn with_suffix(name: &[u8], suffix: &str) -> Vec<u8> {
    [name, suffix.as_bytes()].concat()
}

impl HttpServer {
    /// One complete request head.
    pub(super) fn request<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        req: Box<Request>,
    ) {
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
    pub(super) fn cached(&mut self, req: &Request, key: &[u8]) -> Option<&Entry> {
        if self.cache.is_empty() {
            return None;
        }
        if let Some(codings) = self.negotiable(req) {
            let root = &self.shared.root;
            let side = codings
                .iter()
                .any(|c| Identity::stat_at(root, &with_suffix(key, c.extension())).is_some());
            if side {
                return None;
            }
        }
        self.cache.get(&self.shared.root, key)
    }

    /// The codings to try for this request, if any.
    pub(super) fn negotiable(&self, req: &Request) -> Option<Vec<Coding>> {
        if !self.cfg().precompressed {
            return None;
        }
        let prefs = preferences(req.accept_encoding.as_deref()?);
        (!prefs.is_empty()).then_some(prefs)
    }

    pub(super) fn open<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        job: Job,
        path: &[u8],
    ) {
        match io.open_beneath(&self.shared.root, path) {
            Ok(()) => conn.job = Some(job),
            Err(e) => self.error(conn, io, Some(&job.req), open_status(&e), job.persist),
        }
    }

    pub(super) fn opened<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        result: std::io::Result<File>,
    ) {
        let Some(mut job) = conn.job.take() else {
            return;
        };
        let found = sys::found(result, &self.shared.root, &job.path());
        let found = match (found, &job.step) {
            (Ok(found), _) => found,
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
        match (std::mem::replace(&mut job.step, Step::Target), found) {
            (Step::Target, Found::Folder(_)) if !job.target.slash => {
                let location = job.target.with_slash();
                self.redirect(conn, io, &job, &location);
            }
            (Step::Target, found @ Found::Folder(_)) => {
                // One open per connection at a time: the folder is closed first.
                drop(found);
                job.step = Step::Index;
                let path = job.target.child("index.html");
                self.open(conn, io, job, &path);
            }
            (Step::Target, Found::File(file, meta)) if meta.is_file() && !job.target.slash => {
                let name = job.target.relative();
                self.regular(conn, io, job, name, file, &meta);
            }
            (Step::Index, Found::File(file, meta)) if meta.is_file() => {
                let name = job.target.child("index.html");
                self.regular(conn, io, job, name, file, &meta);
            }
            (Step::Index, found) if self.cfg().list => {
                drop(found);
                job.step = Step::List;
                let path = job.target.relative();
                self.open(conn, io, job, &path);
            }
            (Step::List, Found::Folder(folder)) => self.list(conn, io, &job, folder),
            (Step::Side { coding, name }, Found::File(file, meta)) if meta.is_file() => {
                self.serve(conn, io, &job, &name, Some(coding), file, &meta);
            }
            (Step::Side { name, .. }, found) => {
                drop(found);
                job.step = Step::Original { name: name.clone() };
                self.open(conn, io, job, &name);
            }
            (Step::Original { name }, Found::File(file, meta)) if meta.is_file() => {
                self.serve(conn, io, &job, &name, None, file, &meta);
            }
            _ => self.error(conn, io, Some(&job.req), Status::NotFound, job.persist),
        }
    }

    /// A regular file `name` is open: send a side file instead if one fits, else this one.
    pub(super) fn regular<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        mut job: Job,
        name: Vec<u8>,
        file: File,
        meta: &std::fs::Metadata,
    ) {
        if let Some(codings) = self.negotiable(&job.req) {
            let root = &self.shared.root;
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
    pub(super) fn serve<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        job: &Job,
        name: &[u8],
        coding: Option<Coding>,
        file: File,
        meta: &std::fs::Metadata,
    ) {
        let identity = Identity::of(&file, meta);
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
            if sys::read_exact_at(file, &mut bytes, 0).is_ok() {
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
    pub(super) fn respond<C>(
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
                    conn.corked = sys::set_cork(io.socket(), true);
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
    pub(super) fn list<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        job: &Job,
        folder: Folder,
    ) {
        let rel = job.target.relative();
        let listed = listing::read(folder, &self.shared.root, &rel, self.cfg().hidden);
        let (items, left_out) = match listed {
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

    pub(super) fn redirect<C>(
        &mut self,
        conn: &mut HttpConn,
        io: &mut Io<'_, C>,
        job: &Job,
        location: &str,
    ) {
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

    pub(super) fn error<C>(
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

    pub(super) fn error_with<C>(
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
}
