//! The completion port: a set of workers built together, posted to and shut down together.

mod handle;
mod listen;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::{Backend, BackendKind};
use crate::buf::BufPool;
use crate::handler::Handler;
use crate::sys::OwnedSocket;
use crate::sys::{self, Driver, DriverConfig};
use crate::worker::op::Limits;
use crate::worker::{Shared, Worker, WorkerConfig};
pub use handle::{Full, PortHandle, Refused};
use listen::Endpoint;

/// After everything was aborted, how long a worker waits for the cancellations to complete
/// before it gives up (and leaks what is still in flight).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Builds a [`Port`]: the number of workers (IOCP's concurrency value), the backend, the
/// addresses to listen on and the sizes of the per-worker resources.
#[derive(Debug, Clone)]
pub struct PortBuilder {
    workers: usize,
    backend: Backend,
    listen: Vec<Endpoint>,
    buf_count: u16,
    buf_size: u32,
    max_bufs_per_conn: u32,
    max_unsent: usize,
    entries: u32,
    backlog: i32,
    shutdown_timeout: Duration,
    send_timeout: Option<Duration>,
    message_queue: usize,
    cancel_grace: Duration,
}

impl PortBuilder {
    /// Default of [`PortBuilder::max_bufs_per_conn`].
    pub const DEFAULT_MAX_BUFS_PER_CONN: u32 = 32;
    /// Default of [`PortBuilder::max_unsent`].
    pub const DEFAULT_MAX_UNSENT: usize = 256 * 1024;
    /// Default of [`PortBuilder::entries`].
    pub const DEFAULT_ENTRIES: u32 = 1024;
    /// Default of [`PortBuilder::send_timeout`].
    pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default of [`PortBuilder::message_queue`].
    pub const DEFAULT_MESSAGE_QUEUE: usize = 65_536;
}

impl Default for PortBuilder {
    fn default() -> Self {
        PortBuilder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: Backend::Auto,
            listen: Vec::new(),
            buf_count: 1024,
            buf_size: 16 * 1024,
            max_bufs_per_conn: Self::DEFAULT_MAX_BUFS_PER_CONN,
            max_unsent: Self::DEFAULT_MAX_UNSENT,
            entries: Self::DEFAULT_ENTRIES,
            backlog: 4096,
            shutdown_timeout: Duration::from_secs(10),
            send_timeout: Some(Self::DEFAULT_SEND_TIMEOUT),
            message_queue: Self::DEFAULT_MESSAGE_QUEUE,
            cancel_grace: CANCEL_GRACE,
        }
    }
}

impl PortBuilder {
    /// Number of worker threads, each with its own ring (default: available CPUs).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.clamp(1, usize::from(u16::MAX));
        self
    }

    /// The backend (default: [`Backend::Auto`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Listens on `addr`: one `SO_REUSEPORT` socket per worker, each with a multishot accept.
    /// With port 0, every worker shares the port the first one gets.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen.push(Endpoint::Tcp(addr));
        self
    }

    /// Listens on a Unix-domain socket at `path` (servers behind a local proxy use one): one
    /// socket that every worker accepts on. The path must not exist (a file left by a server
    /// that died is refused, not removed: another server may be using it); the port removes
    /// the socket file when it stops.
    ///
    /// Platform specific: Linux; on Windows the port fails to start (`Unsupported`).
    pub fn listen_unix(mut self, path: impl AsRef<Path>) -> Self {
        self.listen.push(Endpoint::Unix(path.as_ref().to_owned()));
        self
    }

    /// Provided receive buffers per worker: `count` buffers of `size` bytes (default 1024 ×
    /// 16 KiB). Memory is touched only as buffers are used.
    pub fn buffers(mut self, count: u16, size: u32) -> Self {
        self.buf_count = count.clamp(1, 32768);
        self.buf_size = size.max(1);
        self
    }

    /// Provided buffers one connection may hold — received and not yet dropped, including
    /// buffers queued for sending — before the port stops it receiving (default 32). It
    /// receives again once it holds half as many. Besides, while a worker's pool is scarce
    /// (under a quarter free), a connection that holds more than a small share of it stops
    /// receiving until the pool recovers: no client can take a worker's whole pool.
    ///
    /// Clamped to 1 ..= the pool's size.
    pub fn max_bufs_per_conn(mut self, n: u32) -> Self {
        self.max_bufs_per_conn = n.max(1);
        self
    }

    /// Bytes queued for sending (not counting file ranges, which hold no memory) at which a
    /// connection stops receiving (default 256 KiB); it receives again below a quarter of it.
    /// This bounds the memory of a client that sends without reading.
    pub fn max_unsent(mut self, bytes: usize) -> Self {
        self.max_unsent = bytes.max(1);
        self
    }

    /// Submission queue entries of each worker's ring (default 1024): a tuning knob. A full
    /// queue is submitted early, so any size works; larger ones save system calls under
    /// bursts. io_uring rounds it up to a power of two; the epoll backend takes it as a hint.
    pub fn entries(mut self, entries: u32) -> Self {
        self.entries = entries.clamp(1, 32768);
        self
    }

    /// How long shutdown waits for connections to close gracefully before aborting them
    /// (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a send or file transfer may make no progress (the peer reads nothing) before
    /// the port aborts its connection, also during a graceful close (default 60 s, like
    /// nginx's `send_timeout`; `None`: never). The handler gets
    /// [`crate::Completion::Failed`] with [`io::ErrorKind::TimedOut`] if the connection was
    /// open; the peer sees a reset. Measured with a clock of an eighth of the timeout (10 ms
    /// to 1 s), so the abort comes between the timeout and two ticks after it. Progress is seen
    /// in steps — each time the socket takes more (Linux), each `WSASend`/`TransmitFile` call
    /// of at most 1 MiB that completes (IOCP) — so a peer that takes less than one step per
    /// timeout counts as stuck.
    pub fn send_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.send_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// Messages and sockets each worker's queue holds (default 65,536): a post beyond it is
    /// refused ([`Full`]) until the worker drains it.
    pub fn message_queue(mut self, capacity: usize) -> Self {
        self.message_queue = capacity.max(1);
        self
    }

    /// How long workers wait for cancelled operations after aborting everything (tests).
    #[cfg(test)]
    pub(crate) fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// Starts the workers, each running a handler made by `factory` on its own thread. The
    /// factory learns which worker it makes the handler for, how many there are, and gets the
    /// port's handle (to post to any worker from the start).
    ///
    /// # Errors
    /// When the backend is unavailable, a listener cannot bind, or a worker cannot set up its
    /// ring or buffers.
    pub fn start<H, F>(self, factory: F) -> io::Result<Port<H::Msg>>
    where
        H: Handler,
        F: Fn(&WorkerStart<H::Msg>) -> H + Send + Sync + 'static,
    {
        let (backend, reason) = sys::select(self.backend)?;
        let bound = listen::bind(&self.listen, self.workers, self.backlog)?;
        let shared = (0..self.workers)
            .map(|_| Shared::new(self.message_queue).map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        let handle = PortHandle {
            shared: shared.into(),
        };
        let mut port = Port {
            handle: handle.clone(),
            threads: Vec::with_capacity(self.workers),
            local_addrs: bound.tcp,
            unix_paths: bound.unix,
            backend,
            reason,
        };
        let factory = Arc::new(factory);
        for (index, listeners) in bound.per_worker.into_iter().enumerate() {
            let start = WorkerStart {
                worker: index,
                workers: self.workers,
                handle: handle.clone(),
            };
            let factory = factory.clone();
            match self.spawn_worker(start, backend, listeners, move |s| factory(s)) {
                Ok(thread) => port.threads.push(thread),
                // Dropping the port shuts down and joins the workers already started.
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("setting up {backend} worker {index}: {e}"),
                    ))
                }
            }
        }
        Ok(port)
    }

    /// Starts a worker and waits until it has set up its ring and buffers.
    fn spawn_worker<H: Handler>(
        &self,
        start: WorkerStart<H::Msg>,
        backend: BackendKind,
        listeners: Vec<OwnedSocket>,
        factory: impl FnOnce(&WorkerStart<H::Msg>) -> H + Send + 'static,
    ) -> io::Result<JoinHandle<io::Result<()>>> {
        let (tx, rx) = mpsc::channel();
        let cfg = self.clone();
        let index = start.worker;
        let thread = std::thread::Builder::new()
            .name(format!("ringport-w{index}"))
            .spawn(move || {
                let driver_cfg = DriverConfig {
                    entries: cfg.entries,
                };
                let setup = BufPool::new(cfg.buf_count, cfg.buf_size)
                    .map(Rc::new)
                    .and_then(|pool| {
                        let waker = start.handle.shared[index].waker();
                        let driver = Driver::new(backend, driver_cfg, pool.clone(), waker)?;
                        Ok((pool, driver))
                    });
                let (pool, driver) = match setup {
                    Ok(ok) => {
                        let _ = tx.send(Ok(()));
                        ok
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return Ok(());
                    }
                };
                let wcfg = WorkerConfig {
                    shutdown_timeout: cfg.shutdown_timeout,
                    send_timeout: cfg.send_timeout,
                    cancel_grace: cfg.cancel_grace,
                    limits: Limits::new(cfg.max_bufs_per_conn, cfg.max_unsent, pool.count()),
                };
                let peers = start.handle.shared.clone();
                let handler = factory(&start);
                Worker::new(index, handler, driver, pool, listeners, peers, wcfg).run()
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(thread),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("a worker died during setup"))
            }
        }
    }
}

/// What a handler factory learns about the worker it makes a handler for.
#[derive(Debug)]
pub struct WorkerStart<M> {
    worker: usize,
    workers: usize,
    handle: PortHandle<M>,
}

impl<M> WorkerStart<M> {
    /// The worker's index, `0..workers()`.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Number of workers of the port.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The port's handle: posts to any worker, shutdown. Keep a clone in the handler.
    pub fn handle(&self) -> &PortHandle<M> {
        &self.handle
    }
}

/// A running completion port: its worker threads and their listeners.
///
/// Dropping it shuts it down and waits for the workers.
#[derive(Debug)]
pub struct Port<M = ()> {
    handle: PortHandle<M>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    local_addrs: Vec<SocketAddr>,
    unix_paths: Vec<PathBuf>,
    backend: BackendKind,
    reason: String,
}

impl Port {
    /// A builder with the defaults.
    pub fn builder() -> PortBuilder {
        PortBuilder::default()
    }
}

impl<M> Port<M> {
    /// The address of the first listener (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addrs.first().copied()
    }

    /// The backend the port runs on.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// Why that backend was chosen.
    pub fn backend_reason(&self) -> &str {
        &self.reason
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.handle.shared.len()
    }

    /// A handle that other threads can use to post to and shut down the port.
    pub fn handle(&self) -> PortHandle<M> {
        self.handle.clone()
    }

    /// Posts a message to `worker` (see [`PortHandle::post`]).
    ///
    /// # Errors
    /// [`Full`] with the message, when the worker's queue is full.
    pub fn post(&self, worker: usize, msg: M) -> Result<(), Full<M>> {
        self.handle.post(worker, msg)
    }

    /// Starts a graceful shutdown (see [`PortHandle::shutdown`]).
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }

    /// Shuts down at once, resetting every connection (see [`PortHandle::abort`]).
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// Waits until every worker has exited.
    ///
    /// # Errors
    /// The first error a worker stopped with: its backend failed, or operations it cancelled
    /// never completed (their memory was leaked, never freed under the kernel), or it panicked.
    pub fn join(mut self) -> io::Result<()> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        // Every worker closed its listeners: the socket files can go.
        for path in self.unix_paths.drain(..) {
            let _ = std::fs::remove_file(path);
        }
        result
    }
}

impl<M> Drop for Port<M> {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.handle.shutdown();
            let _ = self.join_threads();
        }
    }
}
