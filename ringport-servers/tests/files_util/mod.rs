//! Helpers of the file server's behaviour tests: the backend matrix, served folders with
//! files of known content, in-process servers, protocol clients and bounded waits.
//!
//! Content is verified, never only counted: every file's bytes come from a keyed BLAKE3 output
//! stream, so any range of it can be regenerated to compare a partial download, and whole
//! downloads are compared by hash.
#![allow(dead_code)] // each test file uses a different part of this module

mod client;
mod scenarios;
mod tree;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub use ringport::Backend;
use ringport::{Port, PortHandle};
use ringport_servers::files::{self, FilesConfig};

// Re-exported for the test files; each uses some.
#[allow(unused_imports)]
pub use client::{all_served_at_once, download_when_free, error_line, Client, BUSY_LINE};
#[allow(unused_imports)]
pub use scenarios::{idle_timeout_scenario, max_connections_scenario};
#[allow(unused_imports)]
pub use tree::{content_at, content_stream, Expected, TempDir, Tree};

/// Read and write timeout of every client socket: a server bug fails a test, never hangs it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to shut down and join before the test calls it a hang.
pub const JOIN_BOUND: Duration = Duration::from_secs(30);
/// Generous deadline of every "eventually" poll.
pub const EVENTUALLY: Duration = Duration::from_secs(15);

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

// ---------------------------------------------------------------------------------------------
// Backends

/// The backends to test on: io_uring and epoll where a file server can start here, or only the
/// one named by `RINGPORT_BACKEND` (which then must start). Skipped backends are reported on
/// stderr once per test binary.
pub fn backends() -> Vec<Backend> {
    static BACKENDS: OnceLock<Vec<Backend>> = OnceLock::new();
    BACKENDS.get_or_init(probe_backends).clone()
}

fn probe_backends() -> Vec<Backend> {
    let forced = match std::env::var(Backend::ENV) {
        Ok(name) if !name.is_empty() => match name.parse::<Backend>() {
            Ok(Backend::Auto) => None,
            Ok(backend) => Some(backend),
            Err(e) => panic!("{}: {e}", Backend::ENV),
        },
        _ => None,
    };
    let candidates = match forced {
        Some(backend) => vec![backend],
        None => vec![Backend::Uring, Backend::Epoll],
    };
    let dir = TempDir::new("probe");
    let mut usable = Vec::new();
    for backend in candidates {
        let mut cfg = FilesConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        cfg.workers = 1;
        cfg.backend = backend;
        match files::start(&cfg) {
            Ok(port) => {
                port.shutdown();
                port.join().expect("the probe server joins");
                usable.push(backend);
            }
            Err(e) if forced.is_some() => {
                panic!(
                    "{}={backend} but that backend cannot start: {e}",
                    Backend::ENV
                )
            }
            Err(e) => eprintln!("note: skipping backend {backend}: {e}"),
        }
    }
    if usable.is_empty() {
        eprintln!("note: no backend can start here: nothing tested");
    }
    usable
}

/// Runs `test` once per usable backend, saying which on stderr.
pub fn each_backend(mut test: impl FnMut(Backend)) {
    for backend in backends() {
        eprintln!("--- backend {backend}");
        test(backend);
    }
}

/// The name `ringport serve` prints for a backend (`BackendKind`'s display).
pub fn kind_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Uring => "io_uring",
        Backend::Epoll => "epoll",
        _ => "auto",
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded waits

/// Runs `f` on a helper thread and waits for it at most `limit`: a hang guard, not a timing
/// assertion. A panic of `f` is passed on.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = thread.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the helper sends before it ends"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: {what} took over {limit:?}"),
    }
}

/// Polls `check` until it gives a value, for at most `limit` (polling, not timing).
pub fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Servers

/// An in-process file server; shut down and joined (with a hang guard) on drop.
#[derive(Debug)]
pub struct Server {
    port: Option<Port>,
    pub addr: SocketAddr,
    pub backend: Backend,
}

/// The settings the tests start servers with: 2 workers on an ephemeral loopback port, a
/// short shutdown timeout.
pub fn config(backend: Backend, root: &Path) -> FilesConfig {
    let mut cfg = FilesConfig::new(root, "127.0.0.1:0".parse().unwrap());
    cfg.workers = 2;
    cfg.backend = backend;
    cfg.shutdown_timeout = Duration::from_secs(2);
    cfg
}

impl Server {
    pub fn start(backend: Backend, root: &Path) -> Self {
        Server::start_with(&config(backend, root))
    }

    pub fn start_with(cfg: &FilesConfig) -> Self {
        let port = files::start(cfg)
            .unwrap_or_else(|e| panic!("starting a file server on {}: {e}", cfg.backend));
        let addr = port.local_addr().expect("a listening address");
        Server {
            port: Some(port),
            addr,
            backend: cfg.backend,
        }
    }

    pub fn handle(&self) -> PortHandle {
        self.port.as_ref().unwrap().handle()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Shuts down and joins, failing the test if that takes over [`JOIN_BOUND`].
    pub fn stop(mut self) -> io::Result<()> {
        let port = self.port.take().unwrap();
        port.shutdown();
        join_within(port, JOIN_BOUND)
    }

    /// Joins a server already asked to shut down (through a handle), within `limit`.
    pub fn join(mut self, limit: Duration) -> io::Result<()> {
        join_within(self.port.take().unwrap(), limit)
    }
}

fn join_within(port: Port, limit: Duration) -> io::Result<()> {
    within(limit, "joining the file server", move || port.join())
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(port) = self.port.take() {
            port.shutdown();
            if std::thread::panicking() {
                // Do not hang a failing test on a server that may be stuck: leak it.
                std::thread::spawn(move || drop(port));
            } else {
                join_within(port, JOIN_BOUND).expect("the file server stops cleanly");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors

/// Descriptors open in process `pid` (`/proc/PID/fd`).
pub fn open_fds_of(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("listing /proc/PID/fd")
        .count()
}

/// Descriptors open in this process.
pub fn open_fds() -> usize {
    open_fds_of("self")
}
