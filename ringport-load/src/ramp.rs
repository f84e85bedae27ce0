//! The ramp: every connection is established before any of them sends, so that a run
//! measures a server serving N clients, not a server accepting N clients while serving the
//! ones it already has.
//!
//! Without it, 10,000 connections opened at once against a server whose acceptor competes
//! with thousands of busy threads (thread per connection) overflow the listen backlog: SYNs
//! and handshake ACKs are dropped and retried after 1 s, 3 s, 7 s…, and the run measures the
//! kernel's retransmission timers. With it, connections are opened at a steady pace
//! ([`CONNECT_BATCH`] per worker every [`POLL`], about 16,000 a second per worker) while the
//! server is idle, traffic starts once all are established (or failed, or [`RAMP_LIMIT`] has
//! passed), and the warmup and window follow.
//!
//! [`Gate`] wraps a client handler and holds back its `Connected` completion until the
//! controller opens the gate: a connection that is established early waits on its own
//! timer, ticking more slowly the longer it waits (the handler cannot reach other
//! connections, so each one looks for itself). The gate also counts, for the report, the
//! connections that received data in the measured window: a server that accepts clients but
//! never answers some of them (a pool of threads each serving one client) shows as clients
//! established but not served.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringport::{Completion, CompletionKey, Handler, Io, OpKind, PortHandle, WorkerCtx};

use crate::control::{CONNECT_BATCH, MEASURE, STOP};
use crate::stats::Stats;

/// Longest wait for every connection to be established; traffic then starts without the
/// late ones (which join as they connect).
pub(crate) const RAMP_LIMIT: Duration = Duration::from_secs(10);
/// First wait of an established connection for the gate to open; doubled each tick up to
/// [`TICK_MAX`].
const TICK_FIRST: Duration = Duration::from_millis(2);
/// Longest wait between two looks at the gate (10,000 waiting connections: 100,000 timer
/// completions per second at most).
const TICK_MAX: Duration = Duration::from_millis(100);
/// How often the controller looks at the ramp's counters and has each worker open its next
/// batch of connections.
const POLL: Duration = Duration::from_millis(4);
/// Posted value: open the next batch of connections.
const RAMP: u64 = 3;

/// The ramp of one run, shared by the controller and every worker's gate.
#[derive(Debug)]
pub(crate) struct Ramp {
    conns: u64,
    threads: usize,
    /// Connections established or failed (including sockets that could not be created).
    settled: AtomicU64,
    open: AtomicBool,
    /// Connections that received data in the measured window (added up at [`STOP`]).
    served: AtomicU64,
}

impl Ramp {
    /// The ramp of `conns` connections dealt round-robin over `threads` workers.
    pub(crate) fn new(conns: usize, threads: usize) -> Self {
        Ramp {
            conns: conns as u64,
            threads: threads.max(1),
            settled: AtomicU64::new(0),
            open: AtomicBool::new(false),
            served: AtomicU64::new(0),
        }
    }

    /// The connections worker `worker` opens (ids worker, worker + T, …; see
    /// `Control::connect`).
    fn share(&self, worker: usize) -> u64 {
        let (n, t, w) = (self.conns, self.threads as u64, worker as u64);
        if w >= n {
            0
        } else {
            (n - w).div_ceil(t)
        }
    }

    fn settle(&self, n: u64) {
        self.settled.fetch_add(n, Ordering::Relaxed);
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Has the workers of `port` open their connections batch by batch until every
    /// connection is established or failed, or `limit` has passed, then opens the gate;
    /// returns how long the ramp took.
    pub(crate) fn wait_and_open(&self, port: &PortHandle, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.settled.load(Ordering::Relaxed) < self.conns && start.elapsed() < limit {
            port.post_all(RAMP);
            std::thread::sleep(POLL);
        }
        self.open.store(true, Ordering::Relaxed);
        start.elapsed()
    }

    /// Connections that received data in the measured window.
    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Counts the connections that were neither established nor failed by the end of the run
    /// (still waiting on the server's backlog) as connect errors, and records the served count.
    pub(crate) fn finish(&self, stats: &mut Stats) {
        stats.served = self.served();
        let missing = self
            .conns
            .saturating_sub(stats.connected + stats.connect_errors);
        if missing > 0 {
            stats.connect_errors += missing;
            stats.first_error.get_or_insert_with(|| {
                format!("{missing} connection(s) not established by the end of the run")
            });
        }
    }
}

/// A client handler behind the ramp's gate (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Gate<H> {
    inner: H,
    ramp: std::sync::Arc<Ramp>,
    /// Connections of this worker's share asked for so far.
    asked: u64,
    /// Established connections waiting for the gate, with the ticks they have waited.
    waiting: HashMap<CompletionKey, u32>,
    measuring: bool,
    /// Connections that received data in the measured window.
    served: HashSet<CompletionKey>,
}

impl<H> Gate<H> {
    pub(crate) fn new(inner: H, ramp: std::sync::Arc<Ramp>) -> Self {
        Gate {
            inner,
            ramp,
            asked: 0,
            waiting: HashMap::new(),
            measuring: false,
            served: HashSet::new(),
        }
    }
}

/// How long a connection that has waited `ticks` ticks waits before its next look.
fn tick(ticks: u32) -> Duration {
    TICK_FIRST.saturating_mul(1 << ticks.min(16)).min(TICK_MAX)
}

impl<H: Handler> Gate<H> {
    /// Has the client open the next batch of its connections (its `started` does, each time it
    /// is called: see `Control::connect`).
    fn open_batch(&mut self, worker: &mut WorkerCtx<'_, H::Conn>) {
        let share = self.ramp.share(worker.worker());
        if self.asked >= share {
            return;
        }
        let asked = (share - self.asked).min(CONNECT_BATCH as u64);
        self.asked += asked;
        let before = worker.connections();
        self.inner.started(worker);
        let opened = (worker.connections() - before) as u64;
        // Sockets that could not even be created failed at once (the client counted them).
        self.ramp.settle(asked.saturating_sub(opened));
    }
}

impl<H: Handler> Handler for Gate<H> {
    type Conn = H::Conn;

    fn accepted(&mut self, io: &mut Io<'_>) -> H::Conn {
        self.inner.accepted(io)
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, H::Conn>) {
        self.open_batch(worker);
    }

    fn completion(&mut self, conn: &mut H::Conn, io: &mut Io<'_>, completion: Completion) {
        match completion {
            Completion::Connected => {
                self.ramp.settle(1);
                if self.ramp.is_open() {
                    self.inner.completion(conn, io, Completion::Connected);
                } else {
                    self.waiting.insert(io.key(), 0);
                    io.set_timeout(tick(0));
                }
            }
            Completion::Timeout => match self.waiting.get_mut(&io.key()) {
                Some(_) if self.ramp.is_open() => {
                    self.waiting.remove(&io.key());
                    self.inner.completion(conn, io, Completion::Connected);
                }
                Some(ticks) => {
                    *ticks += 1;
                    io.set_timeout(tick(*ticks));
                }
                None => self.inner.completion(conn, io, Completion::Timeout),
            },
            Completion::Failed {
                op: OpKind::Connect,
                error,
            } => {
                self.ramp.settle(1);
                let failed = Completion::Failed {
                    op: OpKind::Connect,
                    error,
                };
                self.inner.completion(conn, io, failed);
            }
            Completion::Received(buf) => {
                if self.measuring {
                    self.served.insert(io.key());
                }
                self.inner.completion(conn, io, Completion::Received(buf));
            }
            other => self.inner.completion(conn, io, other),
        }
    }

    fn posted(&mut self, worker: &mut WorkerCtx<'_, H::Conn>, value: u64) {
        match value {
            RAMP => return self.open_batch(worker),
            MEASURE => self.measuring = true,
            STOP if self.measuring => {
                self.measuring = false;
                let served = std::mem::take(&mut self.served).len() as u64;
                self.ramp.served.fetch_add(served, Ordering::Relaxed);
            }
            _ => {}
        }
        self.inner.posted(worker, value);
    }

    fn shutdown(&mut self, conn: &mut H::Conn, io: &mut Io<'_>) {
        self.waiting.remove(&io.key());
        self.inner.shutdown(conn, io);
    }

    fn closed(&mut self, conn: H::Conn, key: CompletionKey) {
        self.waiting.remove(&key);
        self.inner.closed(conn, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (conns, threads) in [(1, 1), (10, 3), (3, 8), (10_000, 7), (5, 5)] {
            let ramp = Ramp::new(conns, threads);
            let total: u64 = (0..threads).map(|w| ramp.share(w)).sum();
            assert_eq!(total, conns as u64, "{conns} over {threads}");
            let dealt = (0..threads)
                .map(|w| (w..conns).step_by(threads).count() as u64)
                .collect::<Vec<_>>();
            let shares = (0..threads).map(|w| ramp.share(w)).collect::<Vec<_>>();
            assert_eq!(shares, dealt);
        }
    }

    #[test]
    fn ticks_grow_to_a_bound() {
        assert_eq!(tick(0), TICK_FIRST);
        assert_eq!(tick(1), TICK_FIRST * 2);
        assert_eq!(tick(40), TICK_MAX);
    }

    #[test]
    fn unsettled_connections_become_connect_errors() {
        let ramp = Ramp::new(10, 2);
        let mut stats = Stats {
            connected: 6,
            connect_errors: 1,
            ..Stats::default()
        };
        ramp.finish(&mut stats);
        assert_eq!(stats.connect_errors, 4);
        assert!(stats.first_error.unwrap().contains("3 connection(s)"));
        let mut whole = Stats {
            connected: 10,
            ..Stats::default()
        };
        ramp.finish(&mut whole);
        assert_eq!((whole.connect_errors, whole.first_error), (0, None));
    }

    /// A handler with nothing to do: the port only carries the ramp's posts.
    struct Idle;

    impl Handler for Idle {
        type Conn = ();
        fn accepted(&mut self, io: &mut Io<'_>) {
            io.abort();
        }
        fn completion(&mut self, _: &mut (), _: &mut Io<'_>, _: Completion) {}
    }

    #[test]
    fn opens_after_the_limit_even_if_unsettled() {
        let ramp = Ramp::new(3, 1);
        ramp.settle(1);
        let port = ringport::Port::builder()
            .workers(1)
            .start(|_| Idle)
            .unwrap();
        let took = ramp.wait_and_open(&port.handle(), Duration::from_millis(20));
        assert!(took >= Duration::from_millis(20));
        assert!(ramp.is_open());
        port.shutdown();
        port.join().unwrap();
    }
}
