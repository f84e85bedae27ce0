//! The echo client: a [`Handler`] on the load generator's own port that keeps one message in
//! flight per connection and verifies every byte that comes back.
//!
//! The run's controller talks to it with posted completions: [`MEASURE`] starts the measured
//! window and [`STOP`] ends it, after which the handler hands its [`Stats`] back. Port shutdown
//! aborts the connections ([`Handler::shutdown`]): a load generator has nothing to finish.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use ringport::{Completion, Handler, Io, OpKind, SendBuf, WorkerCtx};

use crate::pattern::{self, Check};
use crate::stats::{Failure, LiveCounter, Stats};

/// Posted value: the measured window starts.
pub(crate) const MEASURE: u64 = 1;
/// Posted value: the measured window is over; hand the results back.
pub(crate) const STOP: u64 = 2;

/// What every worker's client shares: the plan and the live counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) threads: usize,
    /// Round trips per worker, warmup included, for the progress display.
    pub(crate) round_trips: Box<[LiveCounter]>,
}

impl Shared {
    /// Round trips completed so far by all workers.
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.iter().map(LiveCounter::get).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measuring,
    Stopped,
}

/// The echo client of one worker.
#[derive(Debug)]
pub(crate) struct EchoClient {
    worker: usize,
    shared: Arc<Shared>,
    phase: Phase,
    stats: Stats,
    /// Where the stats go at [`STOP`] (or on drop, if the worker ends first).
    results: Option<mpsc::Sender<Stats>>,
}

/// One connection: the message in flight and how much of it has come back.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    round: u64,
    /// The bytes sent, kept to check the echo against. The send shares them (no copy); once
    /// its completion has dropped its reference the next message is written in place.
    message: Arc<[u8]>,
    received: usize,
    sent_at: Instant,
}

impl Conn {
    fn new(id: u64) -> Self {
        Conn {
            id,
            round: 0,
            message: Arc::new([]),
            received: 0,
            sent_at: Instant::now(),
        }
    }
}

impl EchoClient {
    pub(crate) fn new(worker: usize, shared: Arc<Shared>, results: mpsc::Sender<Stats>) -> Self {
        EchoClient {
            worker,
            shared,
            phase: Phase::Warmup,
            stats: Stats::default(),
            results: Some(results),
        }
    }

    /// Writes the next message of `conn` and sends it.
    fn send_next(&self, conn: &mut Conn, io: &mut Io<'_>) {
        conn.round += 1;
        let seed = pattern::seed(conn.id, conn.round);
        match Arc::get_mut(&mut conn.message).filter(|m| m.len() == self.shared.size) {
            Some(message) => pattern::fill(seed, message),
            None => {
                // The previous send has not given its reference back yet (or first round).
                let mut message = vec![0; self.shared.size];
                pattern::fill(seed, &mut message);
                conn.message = message.into();
            }
        }
        conn.received = 0;
        conn.sent_at = Instant::now();
        io.send(SendBuf::Shared(conn.message.clone()));
    }

    /// Counts a failure (until the window ends: failures caused by stopping are not errors)
    /// and aborts the connection.
    fn fail(&mut self, io: &mut Io<'_>, failure: Failure, why: String) {
        if self.phase != Phase::Stopped {
            tracing::debug!(key = %io.key(), ?failure, "{why}");
            self.stats.count(failure, why);
        }
        io.abort();
    }

    fn send_results(&mut self) {
        if let Some(tx) = self.results.take() {
            let _ = tx.send(std::mem::take(&mut self.stats));
        }
    }
}

impl Handler for EchoClient {
    type Conn = Conn;

    fn accepted(&mut self, io: &mut Io<'_>) -> Conn {
        // The load generator's port listens nowhere; refuse anything all the same.
        io.abort();
        Conn::new(u64::MAX)
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, Conn>) {
        let Shared {
            addr,
            conns,
            threads,
            ..
        } = *self.shared;
        // Connections are dealt round-robin: worker w opens ids w, w + T, w + 2T…
        for id in (self.worker..conns).step_by(threads) {
            if let Err(e) = worker.connect(addr, Conn::new(id as u64)) {
                tracing::debug!(%addr, "connect: {e}");
                self.stats.count(Failure::Connect, format!("connect: {e}"));
            }
        }
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_>, completion: Completion) {
        match completion {
            Completion::Connected => {
                self.stats.connected += 1;
                io.recv();
                self.send_next(conn, io);
            }
            Completion::Received(buf) => match pattern::check(&conn.message, conn.received, &buf) {
                Check::Partial => conn.received += buf.len(),
                Check::Complete => {
                    let latency = conn.sent_at.elapsed();
                    drop(buf);
                    if self.phase == Phase::Measuring {
                        self.stats.record(latency, self.shared.size);
                    }
                    self.shared.round_trips[self.worker].bump();
                    self.send_next(conn, io);
                }
                Check::Mismatch { at } => {
                    let why = format!(
                        "echo differs from the bytes sent at byte {at} of message {} \
                         on connection {}",
                        conn.round, conn.id
                    );
                    self.fail(io, Failure::Verify, why);
                }
            },
            Completion::Sent(_) => {}
            Completion::Eof => {
                let why = "the server closed the connection".to_owned();
                self.fail(io, Failure::Io, why);
            }
            Completion::Failed {
                op: OpKind::Connect,
                error,
            } => self.fail(io, Failure::Connect, format!("connect: {error}")),
            Completion::Failed { op, error } => {
                self.fail(io, Failure::Io, format!("{op:?}: {error}"));
            }
            _ => {}
        }
    }

    fn posted(&mut self, _: &mut WorkerCtx<'_, Conn>, value: u64) {
        match value {
            MEASURE if self.phase == Phase::Warmup => self.phase = Phase::Measuring,
            STOP => {
                self.phase = Phase::Stopped;
                self.send_results();
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, _: &mut Conn, io: &mut Io<'_>) {
        io.abort();
    }
}

impl Drop for EchoClient {
    fn drop(&mut self) {
        // A worker that ends before STOP (an error) still reports what it counted.
        self.send_results();
    }
}
