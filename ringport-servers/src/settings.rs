//! The port settings every server of this crate takes: where to listen and how to run.

use std::net::SocketAddr;
use std::time::Duration;

use ringport::{Backend, PortBuilder};

/// Where a server listens and how its port runs.
#[derive(Debug, Clone)]
pub struct PortSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// Backend.
    pub backend: Backend,
    /// Submission queue entries of each worker's ring (a tuning knob; see
    /// [`PortBuilder::entries`]).
    pub ring_entries: u32,
    /// How long shutdown lets connections finish before resetting them.
    pub shutdown_timeout: Duration,
    /// A send or transfer that makes no progress for this long resets its connection
    /// (`None`: never; see [`PortBuilder::send_timeout`]).
    pub send_timeout: Option<Duration>,
}

impl PortSettings {
    /// Defaults for listening on `listen`: one worker per CPU, the automatic backend, the
    /// port's default ring size and send timeout, 10 s to shut down.
    pub fn new(listen: SocketAddr) -> Self {
        PortSettings {
            listen,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: Backend::Auto,
            ring_entries: PortBuilder::DEFAULT_ENTRIES,
            shutdown_timeout: Duration::from_secs(10),
            send_timeout: Some(PortBuilder::DEFAULT_SEND_TIMEOUT),
        }
    }

    /// A port builder with these settings.
    pub fn builder(&self) -> PortBuilder {
        ringport::Port::builder()
            .workers(self.workers)
            .backend(self.backend)
            .listen(self.listen)
            .entries(self.ring_entries)
            .shutdown_timeout(self.shutdown_timeout)
            .send_timeout(self.send_timeout)
    }
}
