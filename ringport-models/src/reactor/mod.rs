//! The epoll reactor: one thread per CPU, each with its own `SO_REUSEPORT` listener and an
//! edge-triggered epoll loop ([`mio`], the poller under tokio) over its clients, the way
//! nginx's workers and tokio's runtime serve. A connection stays on the thread that accepted
//! it; nothing is shared between threads but the connection limit.
//!
//! Readiness, not completion: the loop is told a socket *can* be read or written and does
//! the read or write itself, then waits for the next edge. Each connection gets a budget of
//! reads and sends per turn, so that one busy client cannot starve the others; a connection
//! that used its budget is taken up again after the next poll.

mod echo;
mod files;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::files::FilesCtx;
use crate::listener::{bind, is_shortage};
use crate::slots::{Slot, Slots};
use crate::{ModelConfig, Service};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Reads or sends one connection may do per turn of the loop.
const BUDGET: u32 = 16;
/// Events taken per poll.
const EVENTS: usize = 1024;
/// The shared read buffer of a thread: one read of any client goes here first, and only
/// what cannot be sent at once is kept by the connection.
const SCRATCH: usize = 64 * 1024;
/// How often idle connections are looked for.
const SWEEP: Duration = Duration::from_secs(1);
/// Pause after an accept that failed for want of descriptors or memory.
const BACKOFF: Duration = Duration::from_millis(10);

/// What a connection's turn ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing more to do until the socket's next edge.
    Wait,
    /// The budget ran out with work left: take it up again after the next poll.
    Again,
    /// Close the connection.
    Close,
}

/// A service as the reactor runs it: a state machine per connection, driven by readiness.
trait Protocol: Send + 'static {
    /// Per-connection state.
    type Conn;

    fn new_conn(&self) -> Self::Conn;

    /// Does what the connection can do now without blocking, within [`BUDGET`].
    fn drive(&self, conn: &mut Self::Conn, stream: &mut TcpStream, scratch: &mut [u8]) -> Step;

    /// Turns away a client over the connection limit.
    fn refuse(&self, stream: &mut TcpStream) {
        let _ = stream;
    }

    /// Whether the connection has been idle past the service's timeout at `now`.
    fn idle(&self, conn: &Self::Conn, now: Instant) -> bool {
        let _ = (conn, now);
        false
    }
}

/// The running reactor: its threads and how to wake them.
#[derive(Debug)]
pub(crate) struct Reactor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<(Arc<Waker>, JoinHandle<io::Result<()>>)>,
}

impl Reactor {
    /// Starts `cfg.cpus` threads serving `service`.
    pub(crate) fn start(service: &Service, cfg: &ModelConfig) -> io::Result<Self> {
        let threads = cfg.cpus.max(1);
        let slots = Slots::new(cfg, threads, matches!(service, Service::Files(_)));
        let stop = Arc::new(AtomicBool::new(false));
        let files = match service {
            Service::Echo => None,
            Service::Files(root) => Some(Arc::new(FilesCtx::new(root, cfg)?)),
        };
        let mut addr = cfg.listen;
        let mut running = Reactor {
            addr,
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for i in 0..threads {
            let listener = bind(addr, true)?;
            listener.set_nonblocking(true)?;
            // With port 0, the other threads share the port the first one got.
            addr = listener.local_addr()?;
            let mut listener = TcpListener::from_std(listener);
            let poll = Poll::new()?;
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (slots, stop) = (slots.clone(), stop.clone());
            let spawn = |name: String, f: Box<dyn FnOnce() -> io::Result<()> + Send>| {
                std::thread::Builder::new().name(name).spawn(f)
            };
            let name = format!("reactor-{i}");
            let thread = match &files {
                None => spawn(
                    name,
                    Box::new(move || Loop::new(poll, listener, slots, stop, echo::Echo).run()),
                ),
                Some(ctx) => {
                    let proto = files::Files::new(ctx.clone());
                    spawn(
                        name,
                        Box::new(move || Loop::new(poll, listener, slots, stop, proto).run()),
                    )
                }
            };
            match thread {
                Ok(thread) => running.threads.push((waker, thread)),
                Err(e) => {
                    let _ = running.stop();
                    return Err(e);
                }
            }
        }
        running.addr = addr;
        Ok(running)
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wakes every thread to stop; each closes its connections and listener.
    pub(crate) fn stop(self) -> io::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        for (waker, _) in &self.threads {
            waker.wake()?;
        }
        let mut result = Ok(());
        for (_, thread) in self.threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(io::Error::other("a reactor thread panicked")),
            }
        }
        result
    }
}

/// One connection of a thread.
struct Conn<C> {
    stream: TcpStream,
    state: C,
    _slot: Slot,
}

/// One reactor thread.
struct Loop<P: Protocol> {
    poll: Poll,
    listener: TcpListener,
    slots: Arc<Slots>,
    stop: Arc<AtomicBool>,
    proto: P,
    conns: Slab<Conn<P::Conn>>,
    scratch: Box<[u8]>,
    /// Connections whose budget ran out, to drive again after the next poll.
    again: Vec<Token>,
    /// When accepting may be tried again after a shortage.
    accept_paused_until: Option<Instant>,
}

impl<P: Protocol> Loop<P> {
    fn new(
        poll: Poll,
        listener: TcpListener,
        slots: Arc<Slots>,
        stop: Arc<AtomicBool>,
        proto: P,
    ) -> Self {
        Loop {
            poll,
            listener,
            slots,
            stop,
            proto,
            conns: Slab::new(),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            again: Vec::new(),
            accept_paused_until: None,
        }
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let now = Instant::now();
            let mut timeout = next_sweep.saturating_duration_since(now);
            if let Some(at) = self.accept_paused_until {
                timeout = timeout.min(at.saturating_duration_since(now));
            }
            if !self.again.is_empty() {
                timeout = Duration::ZERO;
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let mut retry = std::mem::take(&mut self.again);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    token => {
                        retry.retain(|&t| t != token);
                        self.drive(token);
                    }
                }
            }
            for token in retry {
                self.drive(token);
            }
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|at| at <= now) {
                self.accept_paused_until = None;
                self.accept_all();
            }
            if now >= next_sweep {
                self.close_idle(now);
                next_sweep = now + SWEEP;
            }
        }
    }

    /// Accepts until the listener has no connection left (the edge is consumed).
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if is_shortage(&e) => {
                    tracing::warn!("accept: {e}; pausing");
                    self.accept_paused_until = Some(Instant::now() + BACKOFF);
                    return;
                }
                Err(e) => {
                    tracing::debug!("accept: {e}");
                    continue;
                }
            };
            let Some(slot) = self.slots.take() else {
                self.proto.refuse(&mut stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let token = Token(entry.key());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                tracing::debug!("registering a connection: {e}");
                continue;
            }
            entry.insert(Conn {
                stream,
                state: self.proto.new_conn(),
                _slot: slot,
            });
        }
    }

    fn drive(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        match self
            .proto
            .drive(&mut conn.state, &mut conn.stream, &mut self.scratch)
        {
            Step::Wait => {}
            Step::Again => self.again.push(token),
            Step::Close => self.close(token),
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.try_remove(token.0) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.again.retain(|&t| t != token);
        }
    }

    fn close_idle(&mut self, now: Instant) {
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| self.proto.idle(&c.state, now))
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            tracing::debug!("idle timeout");
            self.close(Token(key));
        }
    }
}

/// Writes as much of `data` as the socket takes now: the bytes written, or the error that
/// ends the connection.
fn write_now(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    let mut written = 0;
    while written < data.len() {
        match stream.write(&data[written..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
