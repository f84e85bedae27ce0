//! The echo server of the first article: every byte received is sent back, in order.
//!
//! Each received buffer is sent back as it is (no copy). A client that sends faster than it
//! reads cannot make the server hold more than the port's limits: past
//! [`ringport::PortBuilder::max_unsent`] bytes waiting to be sent (or its quota of receive
//! buffers) the port stops receiving from it until it reads; one that never reads is reset
//! after the send timeout.

use std::io;
use std::net::SocketAddr;

use ringport::{Completion, CompletionKey, Handler, Io, Port, WorkerCtx};
use tracing::{debug, Level};

use crate::PortSettings;

/// Settings of an echo server.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Where it listens and how its port runs.
    pub port: PortSettings,
}

impl EchoConfig {
    /// Defaults for listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        EchoConfig {
            port: PortSettings::new(listen),
        }
    }
}

/// Starts an echo server.
///
/// # Errors
/// When the port cannot start (backend unavailable, address in use…).
pub fn start(cfg: &EchoConfig) -> io::Result<Port> {
    cfg.port.builder().start(|_| Echo)
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
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, EchoConn>) -> EchoConn {
        let peer = tracing::enabled!(Level::DEBUG)
            .then(|| io.peer_addr().ok())
            .flatten();
        if let Some(peer) = peer {
            debug!(key = %io.key(), %peer, "accepted");
        }
        io.recv();
        EchoConn { peer }
    }

    fn completion(
        &mut self,
        conn: &mut EchoConn,
        io: &mut Io<'_, EchoConn>,
        completion: Completion,
    ) {
        match completion {
            Completion::Received(buf) => io.send(buf),
            Completion::Eof => io.close(),
            Completion::Failed { op, error } => {
                debug!(key = %io.key(), peer = ?conn.peer, ?op, "{error}");
                io.abort();
            }
            _ => {}
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, conn: EchoConn, key: CompletionKey) {
        if let Some(peer) = conn.peer {
            debug!(%key, %peer, "closed");
        }
    }
}
