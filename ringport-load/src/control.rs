//! What every client handler of the load generator does alike: open its share of the
//! connections, follow the run's controller (which posts [`MEASURE`] and [`STOP`]), count
//! failures, and hand its [`Stats`] back.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;

use ringport::{Io, OpKind, WorkerCtx};

use crate::stats::{Failure, Stats};

/// Posted value: the measured window starts.
pub(crate) const MEASURE: u64 = 1;
/// Posted value: the measured window is over; hand the results back.
pub(crate) const STOP: u64 = 2;
/// Connections a worker opens at a time (see [`Control::connect`]).
pub(crate) const CONNECT_BATCH: usize = 64;

/// Where the run is, as the controller posted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measuring,
    Stopped,
}

/// One worker's part of a run: where the run is, what the worker measured, and where that
/// goes. Dropped before [`STOP`] (the worker ended with an error), it still hands the stats
/// back.
#[derive(Debug)]
pub(crate) struct Control {
    worker: usize,
    phase: Phase,
    /// The id of the next connection to open.
    next_id: usize,
    /// What the worker measured so far.
    pub(crate) stats: Stats,
    /// Where the stats go at [`STOP`] (or on drop, if the worker ends first).
    results: Option<mpsc::Sender<Stats>>,
}

impl Control {
    pub(crate) fn new(worker: usize, results: mpsc::Sender<Stats>) -> Self {
        Control {
            worker,
            phase: Phase::Warmup,
            next_id: worker,
            stats: Stats::default(),
            results: Some(results),
        }
    }

    /// The worker's index.
    pub(crate) fn worker(&self) -> usize {
        self.worker
    }

    /// Whether the measured window is on: only then are results recorded.
    pub(crate) fn measuring(&self) -> bool {
        self.phase == Phase::Measuring
    }

    /// Opens the next [`CONNECT_BATCH`] connections of this worker's share of `conns`
    /// connections to `addr`, dealt round-robin over `threads` workers: worker w opens ids w,
    /// w + T, w + 2T…, each with the state `conn(id)`. Called again, it opens the next batch
    /// (the ramp paces connections this way), and nothing once the share is open.
    pub(crate) fn connect<C>(
        &mut self,
        worker: &mut WorkerCtx<'_, C>,
        addr: SocketAddr,
        conns: usize,
        threads: usize,
        conn: impl Fn(u64) -> C,
    ) {
        let batch: Vec<usize> = (self.next_id..conns)
            .step_by(threads)
            .take(CONNECT_BATCH)
            .collect();
        self.next_id = batch.last().map_or(conns, |last| last + threads);
        for id in batch {
            if let Err(e) = worker.connect(addr, conn(id as u64)) {
                tracing::debug!(%addr, "connect: {e}");
                self.stats.count(Failure::Connect, format!("connect: {e}"));
            }
        }
    }

    /// Counts a failure (until the window ends: failures caused by stopping are not errors)
    /// and aborts the connection.
    pub(crate) fn fail<C>(&mut self, io: &mut Io<'_, C>, failure: Failure, why: String) {
        if self.phase != Phase::Stopped {
            tracing::debug!(key = %io.key(), ?failure, "{why}");
            self.stats.count(failure, why);
        }
        io.abort();
    }

    /// Counts a failed operation (a connect's as a connect error, any other's as an I/O
    /// error) and aborts the connection.
    pub(crate) fn failed<C>(&mut self, io: &mut Io<'_, C>, op: OpKind, error: &io::Error) {
        match op {
            OpKind::Connect => self.fail(io, Failure::Connect, format!("connect: {error}")),
            op => self.fail(io, Failure::Io, format!("{op:?}: {error}")),
        }
    }

    /// Follows a value the controller posted.
    pub(crate) fn posted(&mut self, value: u64) {
        match value {
            MEASURE if self.phase == Phase::Warmup => self.phase = Phase::Measuring,
            STOP => {
                self.phase = Phase::Stopped;
                self.send_results();
            }
            _ => {}
        }
    }

    fn send_results(&mut self) {
        if let Some(tx) = self.results.take() {
            let _ = tx.send(std::mem::take(&mut self.stats));
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // A worker that ends before STOP (an error) still reports what it counted.
        self.send_results();
    }
}
