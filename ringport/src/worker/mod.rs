//! The worker: one thread, one ring, a batch of completions per loop turn, each dispatched to
//! the handler of the connection it belongs to (IOCP's `GetQueuedCompletionStatusEx` loop).

mod complete;
pub(crate) mod ctx;
mod listen;
pub(crate) mod op;
mod shared;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::buf::{BufPool, Returned};
use crate::completion::{Completion, OpKind};
use crate::conn::ConnIo;
use crate::handler::Handler;
use crate::io::Io;
use crate::key::CompletionKey;
use crate::sys::{Cqe, Driver, Sub};
pub use ctx::WorkerCtx;
use listen::Listener;
use op::{Core, Limits, OpData, OpId, Ops, Owner};
pub(crate) use shared::Shared;

/// Connections taken off the pool's waiting queue per loop turn.
const REARM_PER_TURN: usize = 64;

/// A connection: the port's bookkeeping and the handler's state.
#[derive(Debug)]
pub struct Slot<C> {
    pub(crate) io: ConnIo,
    pub(crate) state: C,
}

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Connections are closing; the timer aborts them at the shutdown timeout.
    Draining,
    /// Everything was aborted; waiting for the cancellations to complete.
    Aborting,
    /// Cancellations did not complete in time.
    GaveUp,
}

/// Settings of a worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerConfig {
    pub(crate) shutdown_timeout: Duration,
    /// A send that makes no progress for this long aborts its connection.
    pub(crate) send_timeout: Option<Duration>,
    /// After aborting everything, how long to wait for cancelled operations before giving up.
    pub(crate) cancel_grace: Duration,
    pub(crate) limits: Limits,
}

/// One worker thread's state.
pub(crate) struct Worker<H: Handler> {
    handler: H,
    conns: Slab<Slot<H::Conn>>,
    core: Core,
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    waker_op: Option<OpId>,
    /// The shutdown timer or, once aborting, the cancellation grace timer.
    timer_op: Option<OpId>,
    tick_op: Option<OpId>,
    phase: Phase,
    /// The waker and timers were cancelled: the worker is about to exit.
    internals_cancelled: bool,
    generation: u64,
    returned: Vec<Returned>,
    bids: Vec<u16>,
    cfg: WorkerConfig,
}

impl<H: Handler> Worker<H> {
    pub(crate) fn new(
        worker: usize,
        handler: H,
        driver: Driver,
        pool: Rc<BufPool>,
        listeners: Vec<OwnedFd>,
        shared: Arc<Shared>,
        cfg: WorkerConfig,
    ) -> Self {
        let core = Core {
            driver,
            ops: Ops::with_capacity(1024),
            pool,
            local: Default::default(),
            worker,
            limits: cfg.limits,
            waiting: Default::default(),
            tick: 0,
            tick_wanted: false,
        };
        Worker {
            handler,
            conns: Slab::with_capacity(1024),
            core,
            listeners: listeners.into_iter().map(Listener::new).collect(),
            shared,
            waker_op: None,
            timer_op: None,
            tick_op: None,
            phase: Phase::Running,
            internals_cancelled: false,
            generation: 0,
            returned: Vec::new(),
            bids: Vec::new(),
            cfg,
        }
    }

    /// Runs until the port shuts down and every operation has completed.
    ///
    /// # Errors
    /// When the backend fails, or cancelled operations did not complete in time. Then the
    /// operations still in flight keep their memory forever (leaked, never freed under the
    /// kernel), and so do the buffers and the ring.
    pub(crate) fn run(mut self) -> io::Result<()> {
        self.arm_waker();
        for l in 0..self.listeners.len() {
            self.arm_accept(l);
        }
        let mut ctx = WorkerCtx {
            core: &mut self.core,
            conns: &mut self.conns,
            generation: &mut self.generation,
        };
        self.handler.started(&mut ctx);
        // Posts or a quit sent before the waker was armed are picked up here.
        self.on_wake();

        let mut batch = Vec::with_capacity(256);
        // Checked before waiting: a quit that left nothing in flight must not wait for a
        // completion that never comes.
        let result = loop {
            if self.phase != Phase::Running && self.finished() {
                break Ok(());
            }
            self.recycle();
            self.resume_waiting();
            self.arm_tick();
            let wait = self.core.local.is_empty();
            if let Err(e) = self.core.driver.wait(&mut batch, wait) {
                break Err(e);
            }
            batch.extend(self.core.local.drain(..));
            for cqe in batch.drain(..) {
                self.dispatch(cqe);
            }
        };
        self.exit(result)
    }

    /// Ends the worker. With operations in flight (an error, or cancellations that never
    /// completed), their memory, the buffers and the ring are leaked: the kernel may still
    /// read or write them.
    fn exit(self, result: io::Result<()>) -> io::Result<()> {
        let worker = self.core.worker;
        let in_flight = self.core.ops.len();
        let gave_up = self.phase == Phase::GaveUp;
        let Worker {
            core,
            conns,
            handler,
            ..
        } = self;
        if in_flight > 0 {
            tracing::error!(
                worker,
                ops = in_flight,
                "exiting with operations in flight; leaking their memory"
            );
            std::mem::forget(core);
        } else {
            drop(core);
        }
        drop(conns);
        drop(handler);
        match result {
            Err(e) => Err(io::Error::new(e.kind(), format!("worker {worker}: {e}"))),
            Ok(()) if gave_up => Err(io::Error::other(format!(
                "worker {worker}: {in_flight} operations were still in flight after being \
                 cancelled; their memory was leaked rather than freed"
            ))),
            Ok(()) => Ok(()),
        }
    }

    fn dispatch(&mut self, cqe: Cqe) {
        let id = OpId::from_user_data(cqe.user_data);
        let Some(op) = self.core.ops.get(id) else {
            tracing::error!(
                user_data = cqe.user_data,
                "completion for an operation not in flight"
            );
            if let Some(bid) = cqe.buf {
                self.core.driver.recycle(&[bid]);
            }
            return;
        };
        let last = !cqe.more;
        match op.owner {
            Owner::Conn(slot) => self.conn_completion(slot, id, cqe),
            Owner::Listener(l) => self.listener_completion(l, id, cqe),
            Owner::Waker => {
                if last {
                    self.core.ops.remove(id);
                    self.waker_op = None;
                    if !self.internals_cancelled {
                        self.arm_waker();
                    }
                }
                self.on_wake();
            }
            Owner::ShutdownTimer => {
                self.core.ops.remove(id);
                if self.timer_op == Some(id) {
                    self.timer_op = None;
                    if cqe.result == -libc::ETIME {
                        self.on_shutdown_timer();
                    }
                }
            }
            Owner::Tick => {
                self.core.ops.remove(id);
                self.tick_op = None;
                if cqe.result == -libc::ETIME {
                    self.on_tick();
                }
            }
            Owner::Detached => {
                if last {
                    self.core.ops.remove(id);
                }
            }
        }
    }

    fn conn_completion(&mut self, slot: usize, id: OpId, cqe: Cqe) {
        let Slot { io: conn, state } = &mut self.conns[slot];
        let data = if cqe.more {
            None
        } else {
            conn.inflight -= 1;
            Some(self.core.ops.remove(id).data)
        };
        if matches!(data, Some(OpData::Close)) {
            let Slot { io, state } = self.conns.remove(slot);
            if cqe.result < 0 {
                tracing::warn!(key = %io.key, "close: {}", op::errno(cqe.result));
            }
            self.handler.closed(state, io.key);
            return;
        }
        let mut io = Io {
            core: &mut self.core,
            conn,
            slot,
        };
        if let Some(event) = io.complete(id, data, cqe) {
            self.handler.completion(state, &mut io, event);
        }
        io.update_recv();
        io.progress_close();
    }

    /// Settles the buffers handlers gave back: each connection's count, receives paused for
    /// the quota that may resume, and the buffers handed to the kernel again.
    fn recycle(&mut self) {
        self.core.pool.take_returned(&mut self.returned);
        if self.returned.is_empty() {
            return;
        }
        self.bids.clear();
        for r in self.returned.drain(..) {
            self.bids.push(r.bid);
            let slot = r.holder.slot();
            let Some(Slot { io: conn, .. }) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.key != r.holder {
                continue; // the connection that held it is gone
            }
            conn.bufs_held -= 1;
            if conn.throttled {
                let mut io = Io {
                    core: &mut self.core,
                    conn,
                    slot,
                };
                io.update_recv();
            }
        }
        self.core.driver.recycle(&self.bids);
    }

    /// Lets connections that waited for the buffer pool receive again, a bounded number per
    /// turn, once the pool has free buffers (those still over the scarce share wait on).
    fn resume_waiting(&mut self) {
        let n = self.core.waiting.len().min(REARM_PER_TURN);
        if n == 0 || self.core.pool.free() == 0 {
            return;
        }
        for _ in 0..n {
            let Some(key) = self.core.waiting.pop_front() else {
                break;
            };
            let slot = key.slot();
            if let Some(Slot { io: conn, .. }) = self.conns.get_mut(slot) {
                if conn.key == key {
                    conn.waiting = false;
                    let mut io = Io {
                        core: &mut self.core,
                        conn,
                        slot,
                    };
                    io.update_recv();
                }
            }
        }
    }

    /// The send clock's period: an eighth of the send timeout, within 10 ms and 1 s.
    fn tick_period(timeout: Duration) -> Duration {
        (timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Runs the send clock while some connection is sending.
    fn arm_tick(&mut self) {
        let Some(timeout) = self.cfg.send_timeout else {
            return;
        };
        if self.core.tick_wanted && self.tick_op.is_none() && !self.internals_cancelled {
            self.core.tick_wanted = false;
            let period = Self::tick_period(timeout);
            self.tick_op = Some(self.core.timer(Owner::Tick, period));
        }
    }

    /// One period of the send clock: connections whose send made no progress for the send
    /// timeout are aborted.
    fn on_tick(&mut self) {
        let Some(timeout) = self.cfg.send_timeout else {
            return;
        };
        self.core.tick += 1;
        let period = Self::tick_period(timeout);
        let limit = timeout.as_nanos().div_ceil(period.as_nanos()) as u64;
        let now = self.core.tick;
        let mut stuck = Vec::new();
        for (slot, Slot { io, .. }) in self.conns.iter() {
            if let Some(id) = io.send_op {
                self.core.tick_wanted = true;
                if now - io.progress_tick > limit {
                    let file = matches!(
                        self.core.ops.get(id).map(|op| &op.data),
                        Some(OpData::SendFile { .. })
                    );
                    stuck.push((slot, if file { OpKind::SendFile } else { OpKind::Send }));
                }
            }
        }
        for (slot, op) in stuck {
            let Slot { io: conn, state } = &mut self.conns[slot];
            tracing::debug!(key = %conn.key, ?timeout, "send timeout: aborting");
            let mut io = Io {
                core: &mut self.core,
                conn,
                slot,
            };
            if io.conn.is_open() {
                let error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no send progress for {timeout:?}"),
                );
                let failed = Completion::Failed { op, error };
                self.handler.completion(state, &mut io, failed);
            }
            io.abort();
            io.progress_close();
        }
    }

    fn arm_waker(&mut self) {
        let sub = Sub::PollIn {
            fd: self.shared.eventfd(),
        };
        self.waker_op = Some(self.core.start(Owner::Waker, OpData::Poll, sub));
    }

    /// Handles posts, the quit packet and the abort packet.
    fn on_wake(&mut self) {
        self.shared.clear();
        for value in self.shared.take_posts() {
            let mut ctx = WorkerCtx {
                core: &mut self.core,
                conns: &mut self.conns,
                generation: &mut self.generation,
            };
            self.handler.posted(&mut ctx, value);
        }
        if self.shared.quit_requested() && self.phase == Phase::Running {
            self.begin_shutdown();
        }
        if self.shared.abort_requested() && self.phase == Phase::Draining {
            self.abort_all("aborted");
        }
    }

    /// Stops accepting and asks every connection to close; arms the shutdown timer.
    fn begin_shutdown(&mut self) {
        tracing::debug!(
            worker = self.core.worker,
            connections = self.conns.len(),
            "shutting down"
        );
        self.phase = Phase::Draining;
        self.stop_accepting();
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let Slot { io: conn, state } = &mut self.conns[slot];
            let mut io = Io {
                core: &mut self.core,
                conn,
                slot,
            };
            if !io.is_closing() {
                self.handler.shutdown(state, &mut io);
            }
            io.update_recv();
            io.progress_close();
        }
        self.arm_timer(self.cfg.shutdown_timeout);
    }

    fn arm_timer(&mut self, after: Duration) {
        if let Some(old) = self.timer_op.take() {
            self.core.cancel_detached(old);
        }
        self.timer_op = Some(self.core.timer(Owner::ShutdownTimer, after));
    }

    fn on_shutdown_timer(&mut self) {
        match self.phase {
            Phase::Draining => self.abort_all("shutdown timeout"),
            Phase::Aborting => self.phase = Phase::GaveUp,
            Phase::Running | Phase::GaveUp => {}
        }
    }

    /// Aborts every connection (their peers see a reset) and waits a grace period for the
    /// cancellations to complete.
    fn abort_all(&mut self, why: &str) {
        if !self.conns.is_empty() {
            tracing::warn!(
                worker = self.core.worker,
                connections = self.conns.len(),
                "{why}: resetting the connections still open"
            );
        }
        self.phase = Phase::Aborting;
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let mut io = Io {
                core: &mut self.core,
                conn: &mut self.conns[slot].io,
                slot,
            };
            io.abort();
            io.progress_close();
        }
        self.arm_timer(self.cfg.cancel_grace);
    }

    /// Whether the worker may exit: no connection, no listener, no operation left. Cancels
    /// the waker and the timers once they are all that is left.
    fn finished(&mut self) -> bool {
        if self.phase == Phase::GaveUp {
            return true;
        }
        if !self.conns.is_empty() || self.listeners.iter().any(Listener::is_open) {
            return false;
        }
        if !self.internals_cancelled {
            self.internals_cancelled = true;
            for id in [self.waker_op, self.timer_op.take(), self.tick_op]
                .into_iter()
                .flatten()
            {
                self.core.cancel_detached(id);
            }
        }
        self.core.ops.is_empty()
    }
}

/// Associates socket `fd` with the worker under a new completion key; `init` starts its first
/// operations and makes its state.
pub(crate) fn associate<C>(
    core: &mut Core,
    conns: &mut Slab<Slot<C>>,
    generation: &mut u64,
    fd: OwnedFd,
    init: impl FnOnce(&mut Io<'_>) -> C,
) -> CompletionKey {
    let entry = conns.vacant_entry();
    let slot = entry.key();
    *generation += 1;
    let key = CompletionKey::new(core.worker, slot, *generation);
    let mut conn = ConnIo::new(fd.into_raw_fd(), key);
    let mut io = Io {
        core,
        conn: &mut conn,
        slot,
    };
    let state = init(&mut io);
    io.update_recv();
    io.progress_close();
    entry.insert(Slot { io: conn, state });
    key
}
