//! The per-connection state machine of the file server: read names → open → send → next.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ringport::{Completion, CompletionKey, Handler, Io, OpKind};
use tracing::{debug, Level};

use super::lines::{Lines, Request};
use super::reply::Refusal;
use super::Shared;

/// Names framed but not yet served at which a connection stops receiving.
const MAX_PENDING: usize = 64;

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
    /// Opening `name`.
    Opening(Vec<u8>),
    /// Sending `name` (`size` bytes) since `since`.
    Sending {
        name: Vec<u8>,
        size: u64,
        since: Instant,
    },
}

/// Per-connection state (the completion key's data).
#[derive(Debug)]
pub struct FileConn {
    peer: Option<SocketAddr>,
    lines: Lines,
    serving: Serving,
    /// The client will send no more names.
    eof: bool,
    /// The server is shutting down: close once the transfer in flight is done.
    quitting: bool,
}

impl FileServer {
    /// Serves the next framed request if nothing is being served; closes or resumes receiving
    /// as the state asks.
    fn advance(&self, conn: &mut FileConn, io: &mut Io<'_>) {
        while matches!(conn.serving, Serving::Nothing) {
            if conn.quitting {
                io.close();
                return;
            }
            match conn.lines.next_request() {
                Some(Request::Name(name)) => {
                    if let Err(e) = io.open_beneath(&self.shared.root, &name) {
                        io.send(Refusal::from_open_error(&e).line(&name));
                    } else {
                        conn.serving = Serving::Opening(name);
                    }
                }
                Some(Request::TooLong) => io.send(Refusal::NameTooLong.line(b"")),
                None if conn.eof => {
                    io.close();
                    return;
                }
                None => break,
            }
        }
        let max_held = self.shared.cfg.max_name.saturating_mul(2).max(4096);
        let full = conn.lines.pending() >= MAX_PENDING || conn.lines.held_bytes() > max_held;
        if full {
            io.stop_recv();
        } else if !io.is_receiving() && !conn.eof && !conn.quitting {
            io.recv();
        }
    }

    fn opened(&self, conn: &mut FileConn, io: &mut Io<'_>, result: std::io::Result<std::fs::File>) {
        let Serving::Opening(name) = std::mem::replace(&mut conn.serving, Serving::Nothing) else {
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
            Err(e) => Refusal::from_open_error(&e),
        };
        debug!(key = %io.key(), peer = ?conn.peer, name = %name.escape_ascii(), "refused: {}", refused.reason());
        io.send(refused.line(&name));
    }

    /// Takes bytes that arrived before the connection was known to speak nc (read by the
    /// protocol sniffer of [`super::dispatch`]), as if just received.
    pub(crate) fn feed(&self, conn: &mut FileConn, io: &mut Io<'_>, data: &[u8]) {
        conn.lines.push(data);
        io.set_timeout(self.shared.cfg.idle_timeout);
        self.advance(conn, io);
    }

    fn sent(&self, conn: &mut FileConn, io: &mut Io<'_>) {
        if let Serving::Sending { name, size, since } =
            std::mem::replace(&mut conn.serving, Serving::Nothing)
        {
            let secs = since.elapsed().as_secs_f64();
            let rate = size as f64 / secs.max(1e-9) / 1e6;
            debug!(key = %io.key(), peer = ?conn.peer, name = %name.escape_ascii(), bytes = size, secs, "sent ({rate:.1} MB/s)");
        }
        io.set_timeout(self.shared.cfg.idle_timeout);
    }
}

impl Handler for FileServer {
    type Conn = FileConn;

    fn accepted(&mut self, io: &mut Io<'_>) -> FileConn {
        let peer = tracing::enabled!(Level::DEBUG)
            .then(|| io.peer_addr().ok())
            .flatten();
        debug!(key = %io.key(), peer = ?peer, "accepted");
        let conn = FileConn {
            peer,
            lines: Lines::new(self.shared.cfg.max_name),
            serving: Serving::Nothing,
            eof: false,
            quitting: false,
        };
        let open = self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        if open > self.shared.max_connections {
            debug!(key = %io.key(), open, "too many connections");
            io.send(Refusal::Busy.line(b""));
            io.close();
            return conn;
        }
        io.recv();
        io.set_timeout(self.shared.cfg.idle_timeout);
        conn
    }

    fn completion(&mut self, conn: &mut FileConn, io: &mut Io<'_>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                conn.lines.push(&buf);
                drop(buf);
                io.set_timeout(self.shared.cfg.idle_timeout);
            }
            Completion::Opened(result) => self.opened(conn, io, result),
            Completion::FileSent { .. } => self.sent(conn, io),
            Completion::Eof => conn.eof = true,
            Completion::Timeout if matches!(conn.serving, Serving::Nothing) => {
                debug!(key = %io.key(), peer = ?conn.peer, "idle timeout");
                io.close();
                return;
            }
            // A transfer to a slow client is not idleness.
            Completion::Timeout => io.set_timeout(self.shared.cfg.idle_timeout),
            Completion::Failed {
                op: OpKind::SendFile,
                error,
            } => {
                // The client cannot tell a short file from a whole one but by the close.
                debug!(key = %io.key(), peer = ?conn.peer, "transfer failed: {error}");
                io.abort();
                return;
            }
            Completion::Failed { op, error } => {
                debug!(key = %io.key(), peer = ?conn.peer, ?op, "{error}");
                io.abort();
                return;
            }
            _ => {}
        }
        self.advance(conn, io);
    }

    fn shutdown(&mut self, conn: &mut FileConn, io: &mut Io<'_>) {
        conn.quitting = true;
        io.stop_recv();
        self.advance(conn, io);
    }

    fn closed(&mut self, conn: FileConn, key: CompletionKey) {
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        debug!(%key, peer = ?conn.peer, "closed");
    }
}
