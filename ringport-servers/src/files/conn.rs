//! The per-connection state machine of the file server: read names → open → send → next.
//!
//! What a client can make a connection hold is bounded here, on top of the port's own limits:
//! received bytes not yet framed (twice the longest name), replies not yet sent
//! ([`MAX_REPLY_BACKLOG`]: no new request is served past it), and time — a name must arrive
//! whole within the request timeout, an idle connection is closed at the idle timeout, and a
//! transfer the client does not read is reset by the port's send timeout.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringport::{Completion, CompletionKey, Handler, Io, OpKind, WorkerCtx};
use tracing::{debug, Level};

use super::lines::{Lines, Request};
use super::reply::Refusal;
use super::Shared;

/// Reply bytes waiting to be sent past which no further request is served until the client
/// reads: a flood of bad names cannot grow the server's memory.
pub const MAX_REPLY_BACKLOG: usize = 64 * 1024;
/// Pause before opening again when the server is out of descriptors.
const OPEN_RETRY: Duration = Duration::from_millis(25);
/// How long an admitted client's open is retried while descriptors are short, before it is
/// told the server is busy.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(5);

/// The file server's handler of one worker.
#[derive(Debug)]
pub struct FileServer {
    shared: Arc<Shared>,
}

impl FileServer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        FileServer { shared }
    }
}

/// The request a connection is serving.
#[derive(Debug)]
enum Serving {
    /// Waiting for the next name.
    Nothing,
    /// Opening `name`; `busy_until`: retrying for want of descriptors until then.
    Opening {
        name: Vec<u8>,
        busy_until: Option<Instant>,
    },
    /// Out of descriptors: opening `name` again when the timer fires (until `until`).
    Retrying { name: Vec<u8>, until: Instant },
    /// Sending `name` (`size` bytes) since `since`.
    Sending {
        name: Vec<u8>,
        size: u64,
        since: Instant,
    },
}

/// What the connection's one timer is counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Off,
    /// Nothing in progress: the idle timeout.
    Idle,
    /// Part of a name arrived: the rest must come before the request timeout.
    Request,
    /// The pause before opening again.
    Retry,
}

/// Per-connection state (the completion key's data).
#[derive(Debug)]
pub struct FileConn {
    peer: Option<SocketAddr>,
    lines: Lines,
    serving: Serving,
    timer: Timer,
    /// Counted in the server's connections (not refused as busy).
    admitted: bool,
    /// The client will send no more names.
    eof: bool,
    /// The server is shutting down: close once the transfer in flight is done.
    quitting: bool,
}

impl FileServer {
    /// Serves the next framed requests while nothing is being served and replies do not pile
    /// up; closes, resumes or pauses receiving, and sets the timer, as the state asks.
    fn advance(&self, conn: &mut FileConn, io: &mut Io<'_, FileConn>) {
        while matches!(conn.serving, Serving::Nothing) && io.unsent() < MAX_REPLY_BACKLOG {
            if conn.quitting {
                io.close();
                return;
            }
            let Some(request) = conn.lines.next_request() else {
                if conn.eof {
                    io.close();
                    return;
                }
                break;
            };
            // A request was taken: the idle time starts again after it.
            conn.timer = Timer::Off;
            match request {
                Request::Name(name) => self.open(conn, io, name, None),
                Request::Empty => io.send(Refusal::NoName.line(b"")),
                Request::TooLong => io.send(Refusal::NameTooLong.line(b"")),
            }
        }
        let max_held = self.shared.cfg.max_name.saturating_mul(2).max(4096);
        if conn.lines.held_bytes() > max_held || conn.eof || conn.quitting {
            io.stop_recv();
        } else if !io.is_receiving() {
            io.recv();
        }
        self.set_timer(conn, io);
    }

    /// Arms the timer the state needs, unless it already counts for that.
    fn set_timer(&self, conn: &mut FileConn, io: &mut Io<'_, FileConn>) {
        let cfg = &self.shared.cfg;
        let (want, after) = match conn.serving {
            Serving::Nothing if conn.lines.in_progress() => (Timer::Request, cfg.request_timeout),
            Serving::Nothing => (Timer::Idle, cfg.idle_timeout),
            Serving::Retrying { .. } => (Timer::Retry, Some(OPEN_RETRY)),
            // Opening never blocks; a transfer the client does not read is the send timeout's.
            Serving::Opening { .. } | Serving::Sending { .. } => (Timer::Off, None),
        };
        if want == conn.timer {
            return;
        }
        conn.timer = want;
        match after {
            Some(after) => io.set_timeout(after),
            None => io.clear_timeout(),
        }
    }

    fn open(
        &self,
        conn: &mut FileConn,
        io: &mut Io<'_, FileConn>,
        name: Vec<u8>,
        busy_until: Option<Instant>,
    ) {
        match io.open_beneath(&self.shared.root, &name) {
            Ok(()) => conn.serving = Serving::Opening { name, busy_until },
            Err(e) => io.send(Refusal::from_open_error(&e).line(&name)),
        }
    }

    fn opened(
        &self,
        conn: &mut FileConn,
        io: &mut Io<'_, FileConn>,
        result: std::io::Result<std::fs::File>,
    ) {
        let Serving::Opening { name, busy_until } =
            std::mem::replace(&mut conn.serving, Serving::Nothing)
        else {
            return;
        };
        let refused = match result.and_then(|file| Ok((file.metadata()?, file))) {
            Ok((meta, file)) if meta.is_file() => {
                let size = meta.len();
                debug!(key = %io.key(), peer = ?conn.peer, name = %name.escape_ascii(), size, "request");
                io.send_file(Rc::new(file), 0, size);
                conn.serving = Serving::Sending {
                    name,
                    size,
                    since: Instant::now(),
                };
                return;
            }
            Ok(_) => Refusal::NotRegular,
            Err(e) => match Refusal::from_open_error(&e) {
                // Admitted clients were promised a descriptor for their file: the shortage is
                // others' sockets coming and going (a flood being refused). Try again shortly.
                Refusal::Busy if conn.admitted => {
                    let until = busy_until.unwrap_or_else(|| Instant::now() + OPEN_RETRY_FOR);
                    if Instant::now() < until {
                        conn.serving = Serving::Retrying { name, until };
                        return;
                    }
                    Refusal::Busy
                }
                refusal => refusal,
            },
        };
        debug!(key = %io.key(), peer = ?conn.peer, name = %name.escape_ascii(), "refused: {}", refused.reason());
        io.send(refused.line(&name));
    }

    /// The retry pause is over: open again, or give up past the deadline.
    fn retry(&self, conn: &mut FileConn, io: &mut Io<'_, FileConn>) {
        let Serving::Retrying { name, until } =
            std::mem::replace(&mut conn.serving, Serving::Nothing)
        else {
            return;
        };
        conn.timer = Timer::Off;
        self.open(conn, io, name, Some(until));
    }

    fn sent(&self, conn: &mut FileConn, io: &mut Io<'_, FileConn>) {
        if let Serving::Sending { name, size, since } =
            std::mem::replace(&mut conn.serving, Serving::Nothing)
        {
            let secs = since.elapsed().as_secs_f64();
            let rate = size as f64 / secs.max(1e-9) / 1e6;
            debug!(key = %io.key(), peer = ?conn.peer, name = %name.escape_ascii(), bytes = size, secs, "sent ({rate:.1} MB/s)");
        }
    }

    fn timed_out(&self, conn: &mut FileConn, io: &mut Io<'_, FileConn>) {
        match conn.timer {
            Timer::Retry => self.retry(conn, io),
            Timer::Request => {
                debug!(key = %io.key(), peer = ?conn.peer, "request timeout");
                io.send(Refusal::RequestTimeout.line(b""));
                io.close();
            }
            Timer::Idle => {
                debug!(key = %io.key(), peer = ?conn.peer, "idle timeout");
                io.close();
            }
            Timer::Off => {}
        }
    }
}

impl Handler for FileServer {
    type Conn = FileConn;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, FileConn>) -> FileConn {
        let peer = tracing::enabled!(Level::DEBUG)
            .then(|| io.peer_addr().ok())
            .flatten();
        debug!(key = %io.key(), peer = ?peer, "accepted");
        let mut conn = FileConn {
            peer,
            lines: Lines::new(self.shared.cfg.max_name),
            serving: Serving::Nothing,
            timer: Timer::Off,
            admitted: false,
            eof: false,
            quitting: false,
        };
        let open = self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        if open > self.shared.max_connections {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            debug!(key = %io.key(), open, "too many connections");
            io.send(Refusal::Busy.line(b""));
            io.close();
            return conn;
        }
        conn.admitted = true;
        self.advance(&mut conn, io);
        conn
    }

    fn completion(
        &mut self,
        conn: &mut FileConn,
        io: &mut Io<'_, FileConn>,
        completion: Completion,
    ) {
        match completion {
            Completion::Received(buf) => conn.lines.push(&buf),
            Completion::Opened(result) => self.opened(conn, io, result),
            Completion::FileSent { .. } => self.sent(conn, io),
            Completion::Eof => {
                conn.eof = true;
                conn.lines.finish();
            }
            Completion::Timeout => self.timed_out(conn, io),
            Completion::Failed {
                op: OpKind::SendFile,
                error,
            } => {
                // The port resets the connection: the client sees the transfer was cut.
                debug!(key = %io.key(), peer = ?conn.peer, "transfer failed: {error}");
                io.abort();
            }
            Completion::Failed { op, error } => {
                debug!(key = %io.key(), peer = ?conn.peer, ?op, "{error}");
                io.abort();
            }
            _ => {}
        }
        if !io.is_closing() {
            self.advance(conn, io);
        }
    }

    fn shutdown(&mut self, conn: &mut FileConn, io: &mut Io<'_, FileConn>) {
        conn.quitting = true;
        self.advance(conn, io);
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, conn: FileConn, key: CompletionKey) {
        if conn.admitted {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        }
        debug!(%key, peer = ?conn.peer, "closed");
    }
}
