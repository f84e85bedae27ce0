//! Helpers of the servers' behaviour tests: the shared ones of `ringport-testutil` (the backend
//! matrix, bounded waits, descriptor counting, verifiable streams, echo clients, and in
//! [`files`] the file server's client and served folders), and this crate's servers started
//! in process.
#![allow(dead_code)] // each test file uses a different part of this module

pub use ringport_testutil::*;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ringport::{Backend, Port, PortHandle};
use ringport_servers::echo::{self, EchoConfig};
use ringport_servers::files::FilesConfig;

/// How long a file server may take to shut down and join before the test calls it a hang.
pub const JOIN_BOUND: Duration = Duration::from_secs(30);

/// An echo server with two workers on a free loopback port; shutdown aborts what is left
/// after half a second.
pub fn start_echo(backend: Backend) -> Port {
    let mut cfg = EchoConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.port.workers = 2;
    cfg.port.backend = backend;
    cfg.port.shutdown_timeout = Duration::from_millis(500);
    echo::start(&cfg).expect("the echo server starts")
}

/// An in-process file server; shut down and joined (with a hang guard) on drop.
#[derive(Debug)]
pub struct Server {
    port: Option<Port>,
    pub addr: SocketAddr,
    pub backend: Backend,
}

/// The settings the tests start file servers with: 2 workers on an ephemeral loopback port, a
/// short shutdown timeout.
pub fn config(backend: Backend, root: &Path) -> FilesConfig {
    let mut cfg = FilesConfig::new(root, "127.0.0.1:0".parse().unwrap());
    cfg.port.workers = 2;
    cfg.port.backend = backend;
    cfg.port.shutdown_timeout = Duration::from_secs(2);
    cfg
}

impl Server {
    /// A file server of [`config`] serving `root`.
    pub fn start(backend: Backend, root: &Path) -> Self {
        Server::start_with(&config(backend, root))
    }

    /// A file server of `cfg`.
    pub fn start_with(cfg: &FilesConfig) -> Self {
        let port = ringport_servers::files::start(cfg)
            .unwrap_or_else(|e| panic!("starting a file server on {}: {e}", cfg.port.backend));
        let addr = port.local_addr().expect("a listening address");
        Server {
            port: Some(port),
            addr,
            backend: cfg.port.backend,
        }
    }

    /// A handle of its port.
    pub fn handle(&self) -> PortHandle<()> {
        self.port.as_ref().unwrap().handle()
    }

    /// A client connected to it.
    pub fn connect(&self) -> files::Client {
        files::Client::connect(self.addr)
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
