//! The server models of the second article, as real servers of the same two services, so that
//! they can be measured side by side (`ringport compare`):
//!
//! | [`Model`] | the article's model | how it serves |
//! |---|---|---|
//! | [`Model::Threads`] | (3) one thread per connection | blocking I/O, a thread started for each client |
//! | [`Model::Pool`] | (4) a pool of pre-started threads | accepted clients queue; each thread serves one client until it leaves |
//! | [`Model::Reactor`] | readiness (nginx, tokio) | one thread per CPU, each an edge-triggered epoll loop ([`mio`]) over its clients |
//! | [`Model::PortUring`] | (5) completion port | ringport's port on io_uring, one worker per CPU |
//! | [`Model::PortEpoll`] | (5) completion port | the same on ringport's epoll backend |
//! | [`Model::PortRule`] | (5) with the rule of thumb | ringport on io_uring with 2 × CPUs + 2 workers |
//!
//! Each serves both [`Service`]s exactly like `ringport echo` and `ringport serve`: the echo
//! service sends every byte back in order; the file service takes names ended by LF and sends
//! each file whole (zero-copy `sendfile`), or one line `error: REASON: NAME` in the same words
//! as `ringport serve` ([`ringport_servers::files::reply`]), beneath the served folder only
//! (`openat2` with `RESOLVE_BENEATH`). The completion-port models *are* `ringport echo` and
//! `ringport serve`, started with [`ringport_servers::echo::start`] and
//! [`ringport_servers::files::start`].
//!
//! Every model is tuned the way its kind of server is run in production, never handicapped:
//! listen backlogs of 4096, `TCP_NODELAY`, zero-copy file sends, small thread stacks for the
//! thread models, no locks on the reactor's paths. [`ModelConfig`] says what each setting is.
//!
//! # Example
//! ```no_run
//! use ringport_models::{start, Model, ModelConfig, Service};
//!
//! let server = start(Model::Threads, &Service::Echo, &ModelConfig::new("127.0.0.1:0".parse()?))?;
//! println!("thread per connection, echo, on {}", server.local_addr());
//! server.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Platforms
//! Linux only: the models are the article's Linux servers (an epoll reactor through `mio`,
//! `sendfile`, `openat2` confinement, the io_uring and epoll backends side by side). On other
//! platforms the crate is empty.
#![cfg(target_os = "linux")]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod blocking;
mod files;
mod listener;
mod port;
mod reactor;
mod slots;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A server model of the article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// (3) One thread per connection, blocking I/O.
    Threads,
    /// (4) A fixed pool of pre-started threads; accepted connections wait in a queue, and each
    /// thread serves one client until it leaves.
    Pool,
    /// An epoll reactor, one thread per CPU (the readiness model of nginx and tokio).
    Reactor,
    /// (5) ringport's completion port on io_uring, one worker per CPU.
    PortUring,
    /// (5) ringport's completion port on its epoll backend, one worker per CPU.
    PortEpoll,
    /// (5) ringport on io_uring with the article's rule of thumb: 2 × CPUs + 2 workers.
    PortRule,
}

impl Model {
    /// Every model, in the article's order.
    pub const ALL: [Model; 6] = [
        Model::Threads,
        Model::Pool,
        Model::Reactor,
        Model::PortUring,
        Model::PortEpoll,
        Model::PortRule,
    ];

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Pool => "pool",
            Model::Reactor => "reactor",
            Model::PortUring => "port-uring",
            Model::PortEpoll => "port-epoll",
            Model::PortRule => "port-rule",
        }
    }

    /// What the model is, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Model::Threads => "(3) thread per connection",
            Model::Pool => "(4) thread pool, one client per thread",
            Model::Reactor => "epoll reactor, thread per CPU",
            Model::PortUring => "(5) completion port, io_uring",
            Model::PortEpoll => "(5) completion port, epoll",
            Model::PortRule => "(5) io_uring, 2 × CPUs + 2 workers",
        }
    }

    /// Threads that serve clients, for `cpus` CPUs (`None`: one per connection).
    pub fn serving_threads(self, cfg: &ModelConfig) -> Option<usize> {
        match self {
            Model::Threads => None,
            Model::Pool => Some(cfg.pool_threads),
            Model::Reactor | Model::PortUring | Model::PortEpoll => Some(cfg.cpus),
            Model::PortRule => Some(2 * cfg.cpus + 2),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model {s:?} (expected one of {})", names.join(", "))
            })
    }
}

/// What a model serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// The first article's echo server: every byte back, in order.
    Echo,
    /// The second article's file download server (nc protocol) serving this folder.
    Files(PathBuf),
}

/// Settings every model shares; each model uses those that apply to it.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Address to listen on (port 0: the kernel picks).
    pub listen: SocketAddr,
    /// CPUs the server may use: the reactor's threads and the port's workers (default: the
    /// CPUs this process may run on, which honours `taskset` and `sched_setaffinity`).
    pub cpus: usize,
    /// Threads of the pool model (default 256, Apache's `MaxRequestWorkers` of the prefork
    /// model and about what thread-pool servers of the article's time ran).
    pub pool_threads: usize,
    /// Connections served at once; more are told "server busy" (files) or closed (echo).
    /// Lowered to what the descriptor limit can serve. Default 10,000.
    pub max_connections: usize,
    /// The file service closes a connection with no request and no progress for this long
    /// (default 300 s, as `ringport serve`).
    pub idle_timeout: Duration,
    /// Longest file name accepted, in bytes (default 4096, as `ringport serve`).
    pub max_name: usize,
}

impl ModelConfig {
    /// The defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        ModelConfig {
            listen,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pool_threads: 256,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            max_name: 4096,
        }
    }
}

/// A running model server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    running: Running,
}

#[derive(Debug)]
enum Running {
    Blocking(blocking::Acceptor),
    Reactor(reactor::Reactor),
    Port(ringport::Port),
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits for the server's threads (those
    /// serving a client end once their connection is shut down).
    ///
    /// # Errors
    /// When a thread of the server failed.
    pub fn stop(self) -> io::Result<()> {
        match self.running {
            Running::Blocking(acceptor) => acceptor.stop(),
            Running::Reactor(reactor) => reactor.stop(),
            Running::Port(port) => {
                port.shutdown();
                port.join()
            }
        }
    }
}

/// Starts `model` serving `service`.
///
/// # Errors
/// When the address cannot be bound, the served folder cannot be opened, or a model's
/// threads or backend cannot start (io_uring refused for [`Model::PortUring`]).
pub fn start(model: Model, service: &Service, cfg: &ModelConfig) -> io::Result<Server> {
    let (addr, running) = match model {
        Model::Threads | Model::Pool => {
            let acceptor = blocking::Acceptor::start(model == Model::Pool, service, cfg)?;
            (acceptor.local_addr(), Running::Blocking(acceptor))
        }
        Model::Reactor => {
            let reactor = reactor::Reactor::start(service, cfg)?;
            (reactor.local_addr(), Running::Reactor(reactor))
        }
        Model::PortUring | Model::PortEpoll | Model::PortRule => {
            let port = port::start(model, service, cfg)?;
            let addr = port
                .local_addr()
                .ok_or_else(|| io::Error::other("the port has no listener"))?;
            (addr, Running::Port(port))
        }
    };
    Ok(Server { addr, running })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for model in Model::ALL {
            assert_eq!(model.name().parse(), Ok(model));
        }
        assert!("iocp".parse::<Model>().unwrap_err().contains("port-uring"));
    }

    #[test]
    fn serving_threads_follow_the_cpus() {
        let mut cfg = ModelConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.cpus = 1;
        assert_eq!(Model::PortRule.serving_threads(&cfg), Some(4));
        assert_eq!(Model::Reactor.serving_threads(&cfg), Some(1));
        assert_eq!(Model::Pool.serving_threads(&cfg), Some(256));
        assert_eq!(Model::Threads.serving_threads(&cfg), None);
    }
}
