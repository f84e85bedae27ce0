//! A TCP forwarder on the completion port: for each client it connects to the upstream and
//! relays both directions, every byte as it came.
//!
//! ```sh
//! cargo run --release -p ringport --example proxy -- --listen 127.0.0.1:9000 --to 127.0.0.1:7777
//! ```
//!
//! How it is built on the port:
//! - a client's connection and its upstream connection are two connections of the same worker,
//!   each knowing the other's completion key; what one receives is sent on the other with
//!   [`Io::to`], as the very buffer it arrived in (no copy);
//! - back-pressure comes from the port: received buffers queued for sending on the other side
//!   still count against the quota of the connection they came from, so a side that does not
//!   read stops the other side's receiving (and its own send timeout ends it if it never
//!   reads again);
//! - bytes a client sends before the upstream connection is established wait in its send
//!   queue;
//! - a half-close is passed through ([`Io::close_send`] after what was queued), and both
//!   connections close once both directions have ended; an error on either side resets both.

use std::collections::HashSet;
use std::net::SocketAddr;

use clap::Parser;
use ringport::{Backend, Completion, CompletionKey, Handler, Io, Port, WorkerCtx};

/// A TCP forwarder: each client is relayed to `--to`, both directions.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// The upstream to forward to.
    #[arg(long)]
    to: SocketAddr,
    /// Worker threads.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
    /// Backend: auto, uring or epoll.
    #[arg(long, env = Backend::ENV, default_value = "auto")]
    backend: Backend,
}

/// One worker's relays.
struct Proxy {
    upstream: SocketAddr,
    /// Connections whose peer sent its last byte (EOF), waiting for the other direction.
    ended: HashSet<CompletionKey>,
}

/// A side of a relay: the connection on the other side.
struct Side {
    peer: CompletionKey,
}

impl Proxy {
    /// Ends a relay at once: both sides reset.
    fn abort(&mut self, io: &mut Io<'_, Side>, peer: CompletionKey) {
        if let Some(mut other) = io.to(peer) {
            other.abort();
        }
        io.abort();
    }
}

impl Handler for Proxy {
    type Conn = Side;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Side>) -> Side {
        let client = io.key();
        match io.worker().connect(self.upstream, Side { peer: client }) {
            Ok(upstream) => {
                io.recv();
                Side { peer: upstream }
            }
            Err(e) => {
                tracing::warn!("connecting to {}: {e}", self.upstream);
                io.abort();
                Side { peer: client }
            }
        }
    }

    fn completion(&mut self, side: &mut Side, io: &mut Io<'_, Side>, completion: Completion) {
        match completion {
            Completion::Connected => io.recv(),
            Completion::Received(buf) => {
                if let Some(mut peer) = io.to(side.peer) {
                    peer.send(buf);
                    return;
                }
                io.abort(); // the other side is gone
            }
            Completion::Eof => {
                // Pass the half-close on; close both once the other direction has ended too.
                if let Some(mut peer) = io.to(side.peer) {
                    peer.close_send();
                }
                if self.ended.remove(&side.peer) {
                    if let Some(mut peer) = io.to(side.peer) {
                        peer.close();
                    }
                    io.close();
                } else {
                    self.ended.insert(io.key());
                }
            }
            Completion::Sent(_) => {}
            Completion::Failed { op, error } => {
                tracing::debug!(key = %io.key(), ?op, "{error}");
                self.abort(io, side.peer);
            }
            _ => {}
        }
    }

    /// A side closed: if the other is still open (this side was reset, by an error or its
    /// send timeout), the relay is broken: reset the other too.
    fn closed(&mut self, ctx: &mut WorkerCtx<'_, Side>, side: Side, key: CompletionKey) {
        self.ended.remove(&key);
        if let Some(mut peer) = ctx.to(side.peer) {
            if !peer.is_closing() {
                peer.abort();
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let upstream = args.to;
    let port: Port = Port::builder()
        .workers(args.threads)
        .backend(args.backend)
        .listen(args.listen)
        .start(move |_| Proxy {
            upstream,
            ended: HashSet::new(),
        })?;
    ringport::shutdown_on_signals(port.handle())?;
    println!(
        "proxy listening on {} to {upstream} ({} backend, {} workers)",
        port.local_addr().unwrap_or(args.listen),
        port.backend(),
        port.workers()
    );
    port.join()?;
    Ok(())
}
