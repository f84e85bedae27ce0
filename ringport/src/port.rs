//! The completion port: a set of workers built together, posted to and shut down together.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::backend::{Backend, BackendKind};
use crate::buf::BufPool;
use crate::handler::Handler;
use crate::sys::{self, Driver, DriverConfig};
use crate::worker::op::Limits;
use crate::worker::{Shared, Worker, WorkerConfig};

/// After everything was aborted, how long a worker waits for the cancellations to complete
/// before it gives up (and leaks what is still in flight).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Builds a [`Port`]: the number of workers (IOCP's concurrency value), the backend, the
/// addresses to listen on and the sizes of the per-worker resources.
#[derive(Debug, Clone)]
pub struct PortBuilder {
    workers: usize,
    backend: Backend,
    listen: Vec<SocketAddr>,
    buf_count: u16,
    buf_size: u32,
    max_bufs_per_conn: u32,
    max_unsent: usize,
    entries: u32,
    backlog: i32,
    shutdown_timeout: Duration,
    send_timeout: Option<Duration>,
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
        self.listen.push(addr);
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
    /// to 1 s), so the abort comes between the timeout and two ticks after it.
    pub fn send_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.send_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How long workers wait for cancelled operations after aborting everything (tests).
    #[cfg(test)]
    pub(crate) fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// Starts the workers, each running a handler made by `factory(worker_index)` on its own
    /// thread.
    ///
    /// # Errors
    /// When the backend is unavailable, a listener cannot bind, or a worker cannot set up its
    /// ring or buffers.
    pub fn start<H, F>(self, factory: F) -> io::Result<Port>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let (backend, reason) = sys::select(self.backend)?;
        let mut listeners: Vec<Vec<OwnedFd>> = (0..self.workers).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::new();
        for &addr in &self.listen {
            let mut addr = addr;
            for per_worker in &mut listeners {
                let socket = bind_reuseport(addr, self.backlog)?;
                addr = socket.local_addr()?.as_socket().expect("an IP listener");
                per_worker.push(socket.into());
            }
            local_addrs.push(addr);
        }

        let factory = Arc::new(factory);
        let mut shared = Vec::with_capacity(self.workers);
        let mut threads = Vec::with_capacity(self.workers);
        let mut failed = None;
        for (index, listeners) in listeners.into_iter().enumerate() {
            let factory = factory.clone();
            match self.spawn_worker(index, backend, listeners, move |i| factory(i)) {
                Ok((sh, thread)) => {
                    shared.push(sh);
                    threads.push(thread);
                }
                Err(e) => {
                    failed = Some(io::Error::new(
                        e.kind(),
                        format!("setting up {backend} worker {index}: {e}"),
                    ));
                    break;
                }
            }
        }
        let port = Port {
            handle: PortHandle {
                shared: shared.into(),
            },
            threads,
            local_addrs,
            backend,
            reason,
        };
        match failed {
            None => Ok(port),
            // Dropping the port shuts down and joins the workers already started.
            Some(e) => Err(e),
        }
    }

    /// Starts worker `index` and waits until it has set up its ring and buffers.
    fn spawn_worker<H: Handler>(
        &self,
        index: usize,
        backend: BackendKind,
        listeners: Vec<OwnedFd>,
        factory: impl FnOnce(usize) -> H + Send + 'static,
    ) -> io::Result<(Arc<Shared>, JoinHandle<io::Result<()>>)> {
        let shared = Arc::new(Shared::new()?);
        let (tx, rx) = mpsc::channel();
        let (sh, cfg) = (shared.clone(), self.clone());
        let thread = std::thread::Builder::new()
            .name(format!("ringport-w{index}"))
            .spawn(move || {
                let driver_cfg = DriverConfig {
                    entries: cfg.entries,
                };
                let setup = BufPool::new(cfg.buf_count, cfg.buf_size)
                    .map(Rc::new)
                    .and_then(|pool| {
                        let driver = Driver::new(backend, driver_cfg, pool.clone())?;
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
                Worker::new(index, factory(index), driver, pool, listeners, sh, wcfg).run()
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok((shared, thread)),
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

fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    socket.listen(backlog)?;
    Ok(socket)
}

/// A running completion port: its worker threads and their listeners.
///
/// Dropping it shuts it down and waits for the workers.
#[derive(Debug)]
pub struct Port {
    handle: PortHandle,
    threads: Vec<JoinHandle<io::Result<()>>>,
    local_addrs: Vec<SocketAddr>,
    backend: BackendKind,
    reason: String,
}

impl Port {
    /// A builder with the defaults.
    pub fn builder() -> PortBuilder {
        PortBuilder::default()
    }

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
    pub fn handle(&self) -> PortHandle {
        self.handle.clone()
    }

    /// Posts a custom completion to `worker` (see [`PortHandle::post`]).
    pub fn post(&self, worker: usize, value: u64) {
        self.handle.post(worker, value);
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
        result
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.handle.shutdown();
            let _ = self.join_threads();
        }
    }
}

/// Posts to and shuts down a port from any thread (IOCP's `PostQueuedCompletionStatus`).
#[derive(Debug, Clone)]
pub struct PortHandle {
    shared: Arc<[Arc<Shared>]>,
}

impl PortHandle {
    /// Posts a custom completion carrying `value` to `worker`; its handler's
    /// [`crate::Handler::posted`] runs on that worker's thread.
    ///
    /// # Panics
    /// If `worker` is not a worker of this port.
    pub fn post(&self, worker: usize, value: u64) {
        self.shared[worker].post(value);
    }

    /// Posts `value` to every worker.
    pub fn post_all(&self, value: u64) {
        self.shared.iter().for_each(|s| s.post(value));
    }

    /// Posts the quit packet to every worker: they stop accepting, ask every connection to
    /// close ([`crate::Handler::shutdown`]), abort what is left after the shutdown timeout,
    /// wait for every operation to complete, close every descriptor and exit.
    pub fn shutdown(&self) {
        self.shared.iter().for_each(|s| s.quit());
    }

    /// Shuts down at once: workers stop accepting and abort every connection (peers see a
    /// reset: a transfer cut short never looks complete), wait for the cancellations and exit.
    /// Also cuts short a graceful shutdown in progress.
    pub fn abort(&self) {
        self.shared.iter().for_each(|s| s.abort());
    }

    /// Whether [`PortHandle::abort`] was called.
    pub fn was_aborted(&self) -> bool {
        self.shared.iter().any(|s| s.abort_requested())
    }
}
