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
//! controller opens the gate: established connections wait, by key, and are handed to the
//! client all at once when the gate opens. The gate also counts, for the report, the
//! connections that received data in the measured window: a server that accepts clients but
//! never answers some of them (a pool of threads each serving one client) shows as clients
//! established but not served.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringport::{Completion, CompletionKey, Handler, Io, OpKind, PortHandle, TimerId, WorkerCtx};

use crate::control::{CONNECT_BATCH, MEASURE, STOP};
use crate::stats::Stats;

/// Longest wait for every connection to be established; traffic then starts without the
/// late ones (which join as they connect).
pub(crate) const RAMP_LIMIT: Duration = Duration::from_secs(10);
/// How often the controller looks at the ramp's counters and has each worker open its next
/// batch of connections.
const POLL: Duration = Duration::from_millis(4);
/// Posted value: open the next batch of connections (or, once the gate is open, release the
/// connections waiting for it).
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
    pub(crate) fn wait_and_open(&self, port: &PortHandle<u64>, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.settled.load(Ordering::Relaxed) < self.conns && start.elapsed() < limit {
            // A full message queue is asked again at the next poll.
            let _ = port.post_all(RAMP);
            std::thread::sleep(POLL);
        }
        self.open.store(true, Ordering::Relaxed);
        if let Err(e) = port.post_all(RAMP) {
            tracing::warn!("opening the ramp's gate: {e}");
        }
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
    /// Established connections waiting for the gate.
    waiting: Vec<CompletionKey>,
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
            waiting: Vec::new(),
            measuring: false,
            served: HashSet::new(),
        }
    }
}

impl<H: Handler<Msg = u64>> Gate<H> {
    /// Hands every waiting connection to the client, as just established.
    fn release(&mut self, worker: &mut WorkerCtx<'_, H::Conn>) {
        for key in std::mem::take(&mut self.waiting) {
            if let Some((conn, mut io)) = worker.get(key) {
                self.inner.completion(conn, &mut io, Completion::Connected);
            }
        }
    }

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

impl<H: Handler<Msg = u64>> Handler for Gate<H> {
    type Conn = H::Conn;
    type Msg = u64;

    fn accepted(&mut self, io: &mut Io<'_, H::Conn>) -> H::Conn {
        self.inner.accepted(io)
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, H::Conn>) {
        self.open_batch(worker);
    }

    fn completion(&mut self, conn: &mut H::Conn, io: &mut Io<'_, H::Conn>, completion: Completion) {
        match completion {
            Completion::Connected => {
                self.ramp.settle(1);
                if self.ramp.is_open() {
                    self.inner.completion(conn, io, Completion::Connected);
                } else {
                    self.waiting.push(io.key());
                }
            }
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

    fn message(&mut self, worker: &mut WorkerCtx<'_, H::Conn>, value: u64) {
        match value {
            RAMP if self.ramp.is_open() => return self.release(worker),
            RAMP => return self.open_batch(worker),
            MEASURE => self.measuring = true,
            STOP if self.measuring => {
                self.measuring = false;
                let served = std::mem::take(&mut self.served).len() as u64;
                self.ramp.served.fetch_add(served, Ordering::Relaxed);
            }
            _ => {}
        }
        self.inner.message(worker, value);
    }

    fn timer(&mut self, worker: &mut WorkerCtx<'_, H::Conn>, timer: TimerId) {
        self.inner.timer(worker, timer);
    }

    fn shutdown(&mut self, conn: &mut H::Conn, io: &mut Io<'_, H::Conn>) {
        self.inner.shutdown(conn, io);
    }

    fn closed(&mut self, worker: &mut WorkerCtx<'_, H::Conn>, conn: H::Conn, key: CompletionKey) {
        self.waiting.retain(|&k| k != key);
        self.inner.closed(worker, conn, key);
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
        type Msg = u64;
        fn accepted(&mut self, io: &mut Io<'_, ()>) {
            io.abort();
        }
        fn completion(&mut self, _: &mut (), _: &mut Io<'_, ()>, _: Completion) {}
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
