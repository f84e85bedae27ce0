//! The echo server of the first article: every byte received is sent back, in order.
//!
//! Each received buffer is sent back as it is (no copy). When a client sends faster than it
//! reads, receiving pauses once [`PAUSE_AT`] bytes wait to be sent, and resumes below
//! [`RESUME_AT`]: memory per client stays bounded.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ringport::{Backend, Completion, CompletionKey, Handler, Io, Port};
use tracing::{debug, Level};

/// Unsent bytes at which a connection stops receiving.
pub const PAUSE_AT: usize = 256 * 1024;
/// Unsent bytes below which it receives again.
pub const RESUME_AT: usize = 64 * 1024;

/// Settings of an echo server.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// Backend.
    pub backend: Backend,
    /// How long shutdown lets clients finish before aborting them.
    pub shutdown_timeout: Duration,
}

/// Starts an echo server.
///
/// # Errors
/// When the port cannot start (backend unavailable, address in use…).
pub fn start(cfg: &EchoConfig) -> io::Result<Port> {
    Port::builder()
        .workers(cfg.workers)
        .backend(cfg.backend)
        .listen(cfg.listen)
        .shutdown_timeout(cfg.shutdown_timeout)
        .start(|_| Echo)
}

/// The echo handler of one worker.
#[derive(Debug, Default)]
pub struct Echo;

/// Per-connection state: the client's address, kept only for logging.
#[derive(Debug)]
pub struct EchoConn {
    peer: Option<SocketAddr>,
}

impl Handler for Echo {
    type Conn = EchoConn;

    fn accepted(&mut self, io: &mut Io<'_>) -> EchoConn {
        let peer = tracing::enabled!(Level::DEBUG)
            .then(|| io.peer_addr().ok())
            .flatten();
        if let Some(peer) = peer {
            debug!(key = %io.key(), %peer, "accepted");
        }
        io.recv();
        EchoConn { peer }
    }

    fn completion(&mut self, conn: &mut EchoConn, io: &mut Io<'_>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                io.send(buf);
                if io.unsent() >= PAUSE_AT {
                    io.stop_recv();
                }
            }
            Completion::Sent(_) if !io.is_receiving() && io.unsent() < RESUME_AT => io.recv(),
            Completion::Eof => io.close(),
            Completion::Failed { op, error } => {
                debug!(key = %io.key(), peer = ?conn.peer, ?op, "{error}");
                io.abort();
            }
            _ => {}
        }
    }

    fn closed(&mut self, conn: EchoConn, key: CompletionKey) {
        if let Some(peer) = conn.peer {
            debug!(%key, %peer, "closed");
        }
    }
}
