//! A chat room on the completion port: every line a client sends reaches every other client,
//! whichever worker holds it, in the order its sender sent them.
//!
//! ```sh
//! cargo run -p ringport --example chat -- --listen 127.0.0.1:7878 --threads 2
//! nc 127.0.0.1 7878        # in several terminals; type lines
//! ```
//!
//! How it is built on the port:
//! - each worker's handler keeps its own members (their completion keys) and sends a line to
//!   each of them through [`Io::to`];
//! - a line for the members of other workers is posted to those workers as a typed message
//!   ([`PortHandle::post`]), whose handlers deliver it to their members in
//!   [`Handler::message`]; a worker whose queue is full gets the line later, from an outbox
//!   flushed by a worker timer, and while outboxes are long the room stops reading new lines
//!   (back-pressure instead of memory without bound);
//! - a member that does not read is disconnected once its backlog passes `--max-backlog`, so it
//!   cannot slow the others (the port's send timeout would end it later anyway).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ringport::{
    Backend, Completion, CompletionKey, Handler, Io, Port, PortHandle, SendBuf, TimerId, WorkerCtx,
    WorkerIo,
};

/// A chat room: every line a client sends goes to every other client.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Backend: auto, uring or epoll.
    #[arg(long, env = Backend::ENV, default_value = "auto")]
    backend: Backend,
    /// Bytes a member may have waiting to be sent before it is disconnected as too slow.
    #[arg(long, default_value_t = 1 << 20)]
    max_backlog: usize,
}

/// The longest line; a member sending a longer one is disconnected.
const MAX_LINE: usize = 64 * 1024;
/// Lines waiting for another worker's queue past which the room stops reading.
const MAX_OUTBOX: usize = 10_000;
/// How soon a full queue is tried again.
const RETRY: Duration = Duration::from_millis(2);

/// What workers post to each other: a line for their members.
type Msg = Arc<[u8]>;

/// One worker's part of the room.
struct Room {
    worker: usize,
    handle: PortHandle<Msg>,
    max_backlog: usize,
    members: Vec<CompletionKey>,
    /// Lines for each other worker that its full queue refused, in order.
    outbox: Vec<VecDeque<Msg>>,
    retry: Option<TimerId>,
    /// Members that stopped reading while the outboxes were long.
    paused: Vec<CompletionKey>,
}

/// A member: the start of a line that has not ended yet.
struct Member {
    partial: Vec<u8>,
}

impl Room {
    /// Sends `line` to a member, or disconnects it if it lets too much pile up.
    fn deliver(&self, member: &mut Io<'_, Member>, line: &Msg) {
        if member.unsent() + line.len() > self.max_backlog {
            tracing::info!(member = %member.key(), backlog = member.unsent(), "too slow: disconnected");
            member.abort();
        } else {
            member.send(SendBuf::Shared(line.clone()));
        }
    }

    /// A line from member `from` of this worker: to every other member here, and to the
    /// other workers.
    fn broadcast(&mut self, w: &mut WorkerIo<'_, Member>, from: CompletionKey, line: Msg) {
        for &key in &self.members {
            if key != from {
                if let Some(mut member) = w.to(key) {
                    self.deliver(&mut member, &line);
                }
            }
        }
        for to in (0..self.outbox.len()).filter(|&to| to != self.worker) {
            self.outbox[to].push_back(line.clone());
        }
        self.flush(w);
    }

    /// Posts what waits in the outboxes, in order, as far as the queues take it.
    fn flush(&mut self, w: &mut WorkerIo<'_, Member>) {
        let mut blocked = false;
        for to in 0..self.outbox.len() {
            while let Some(line) = self.outbox[to].pop_front() {
                if let Err(refused) = self.handle.post(to, line) {
                    self.outbox[to].push_front(refused.0);
                    blocked = true;
                    break;
                }
            }
        }
        if blocked && self.retry.is_none() {
            self.retry = Some(w.set_timer(RETRY));
        }
        if !self.backlogged() {
            for key in self.paused.drain(..) {
                if let Some(mut member) = w.to(key) {
                    member.recv();
                }
            }
        }
    }

    fn backlogged(&self) -> bool {
        self.outbox.iter().any(|o| o.len() > MAX_OUTBOX)
    }
}

impl Handler for Room {
    type Conn = Member;
    type Msg = Msg;

    fn accepted(&mut self, io: &mut Io<'_, Member>) -> Member {
        // Tell the member who it is (its key names its worker).
        io.send(format!("welcome {}\n", io.key()).into_bytes());
        io.recv();
        self.members.push(io.key());
        Member {
            partial: Vec::new(),
        }
    }

    fn completion(&mut self, m: &mut Member, io: &mut Io<'_, Member>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                let mut rest = &buf[..];
                while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                    m.partial.extend_from_slice(&rest[..=end]);
                    rest = &rest[end + 1..];
                    let line: Msg = std::mem::take(&mut m.partial).into();
                    let from = io.key();
                    self.broadcast(io.worker(), from, line);
                }
                m.partial.extend_from_slice(rest);
                if m.partial.len() > MAX_LINE {
                    io.abort();
                } else if self.backlogged() {
                    io.stop_recv();
                    self.paused.push(io.key());
                }
            }
            Completion::Sent(_) => {}
            Completion::Eof => {
                tracing::debug!(member = %io.key(), "left");
                io.close();
            }
            Completion::Failed { op, error } => {
                tracing::info!(member = %io.key(), ?op, "{error}");
                io.abort();
            }
            _ => {}
        }
    }

    fn message(&mut self, ctx: &mut WorkerCtx<'_, Member>, line: Msg) {
        for i in 0..self.members.len() {
            if let Some(mut member) = ctx.to(self.members[i]) {
                self.deliver(&mut member, &line);
            }
        }
    }

    fn timer(&mut self, ctx: &mut WorkerCtx<'_, Member>, _: TimerId) {
        self.retry = None;
        self.flush(ctx);
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, _: Member, key: CompletionKey) {
        self.members.retain(|&k| k != key);
        self.paused.retain(|&k| k != key);
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
    let port: Port<Msg> = Port::builder()
        .workers(args.threads)
        .backend(args.backend)
        .listen(args.listen)
        .start(move |start| Room {
            worker: start.worker(),
            handle: start.handle().clone(),
            max_backlog: args.max_backlog,
            members: Vec::new(),
            outbox: vec![VecDeque::new(); start.workers()],
            retry: None,
            paused: Vec::new(),
        })?;
    ringport::shutdown_on_signals(port.handle())?;
    println!(
        "chat listening on {} ({} backend, {} workers)",
        port.local_addr().unwrap_or(args.listen),
        port.backend(),
        port.workers()
    );
    port.join()?;
    Ok(())
}
