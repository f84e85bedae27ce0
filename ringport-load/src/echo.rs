//! The echo client: a [`Handler`] on the load generator's own port that keeps one message in
//! flight per connection and verifies every byte that comes back.
//!
//! It follows the run's controller through a [`Control`]: posted completions start and end the
//! measured window, after which the handler hands its [`Stats`] back. Port shutdown aborts the
//! connections ([`Handler::shutdown`]): a load generator has nothing to finish.
//!
//! [`Stats`]: crate::stats::Stats

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use ringport::{Completion, Handler, Io, SendBuf, WorkerCtx};

use crate::control::Control;
use crate::pattern::{self, Check};
use crate::stats::{Failure, LiveCounter, Stats};

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

/// The echo client of one worker.
#[derive(Debug)]
pub(crate) struct EchoClient {
    shared: Arc<Shared>,
    control: Control,
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
            shared,
            control: Control::new(worker, results),
        }
    }

    /// Writes the next message of `conn` and sends it.
    fn send_next(&self, conn: &mut Conn, io: &mut Io<'_, Conn>) {
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
}

impl Handler for EchoClient {
    type Conn = Conn;
    type Msg = u64;

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        // The load generator's port listens nowhere; refuse anything all the same.
        io.abort();
        Conn::new(u64::MAX)
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, Conn>) {
        let s = &self.shared;
        self.control
            .connect(worker, s.addr, s.conns, s.threads, Conn::new);
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match completion {
            Completion::Connected => {
                self.control.stats.connected += 1;
                io.recv();
                self.send_next(conn, io);
            }
            Completion::Received(buf) => match pattern::check(&conn.message, conn.received, &buf) {
                Check::Partial => conn.received += buf.len(),
                Check::Complete => {
                    let latency = conn.sent_at.elapsed();
                    drop(buf);
                    if self.control.measuring() {
                        self.control.stats.record(latency, self.shared.size);
                    }
                    self.shared.round_trips[self.control.worker()].bump();
                    self.send_next(conn, io);
                }
                Check::Mismatch { at } => {
                    let why = format!(
                        "echo differs from the bytes sent at byte {at} of message {} \
                         on connection {}",
                        conn.round, conn.id
                    );
                    self.control.fail(io, Failure::Verify, why);
                }
            },
            Completion::Sent(_) => {}
            Completion::Eof => {
                let why = "the server closed the connection".to_owned();
                self.control.fail(io, Failure::Io, why);
            }
            Completion::Failed { op, error } => self.control.failed(io, op, &error),
            _ => {}
        }
    }

    fn message(&mut self, _: &mut WorkerCtx<'_, Conn>, value: u64) {
        self.control.posted(value);
    }

    fn shutdown(&mut self, _: &mut Conn, io: &mut Io<'_, Conn>) {
        io.abort();
    }
}
