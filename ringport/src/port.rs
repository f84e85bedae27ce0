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
use crate::worker::{Shared, Worker, WorkerConfig};

/// Builds a [`Port`]: the number of workers (IOCP's concurrency value), the backend, the
/// addresses to listen on and the sizes of the per-worker resources.
#[derive(Debug, Clone)]
pub struct PortBuilder {
    workers: usize,
    backend: Backend,
    listen: Vec<SocketAddr>,
    buf_count: u16,
    buf_size: u32,
    entries: u32,
    backlog: i32,
    shutdown_timeout: Duration,
    splice: bool,
}

/// Environment variable that picks how io_uring sends files: `sendfile` (the default) or
/// `splice`; it exists to rerun the measurement in `docs/BENCHMARKS.md`.
pub const SEND_FILE_ENV: &str = "RINGPORT_SEND_FILE";

impl Default for PortBuilder {
    fn default() -> Self {
        PortBuilder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: Backend::Auto,
            listen: Vec::new(),
            buf_count: 1024,
            buf_size: 16 * 1024,
            entries: 1024,
            backlog: 4096,
            shutdown_timeout: Duration::from_secs(10),
            splice: std::env::var(SEND_FILE_ENV).is_ok_and(|v| v == "splice"),
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

    /// How long shutdown waits for connections to close gracefully before aborting them
    /// (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
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
                    splice: cfg.splice,
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

    /// Waits until every worker has exited.
    ///
    /// # Errors
    /// The first error a worker stopped with.
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
}
