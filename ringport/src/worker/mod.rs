//! The worker: one thread, one ring, a batch of completions per loop turn, each dispatched to
//! the handler of the connection it belongs to (IOCP's `GetQueuedCompletionStatusEx` loop).

mod complete;
pub(crate) mod ctx;
pub(crate) mod deadlines;
mod listen;
pub(crate) mod op;
mod shared;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::buf::{BufPool, Returned};
use crate::completion::{Completion, OpKind};
use crate::conn::ConnIo;
use crate::handler::Handler;
use crate::io::Io;
use crate::sys::{code, Cqe, Driver, IoHandle, OwnedSocket, Sub};
use complete::Events;
use ctx::install;
pub use ctx::{TimerId, WorkerCtx, WorkerIo};
use listen::Listener;
use op::{Core, Limits, OpData, OpId, Ops, Owner};
pub(crate) use shared::{Packet, Shared};

/// Connections taken off the pool's waiting queue per loop turn.
const REARM_PER_TURN: usize = 64;

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
    /// The port's side of each connection (and file handle), by slot.
    ios: Slab<ConnIo>,
    /// The handler's side, by the same slot.
    states: Vec<Option<H::Conn>>,
    /// States of connections made during the callback running now.
    fresh: Vec<(usize, H::Conn)>,
    core: Core,
    listeners: Vec<Listener>,
    shared: Arc<Shared<H::Msg>>,
    /// Every worker's shared side (this one's included), for handing out connections.
    peers: Arc<[Arc<Shared<H::Msg>>]>,
    /// The worker the last connection was handed to.
    next_peer: usize,
    posted: VecDeque<Packet<H::Msg>>,
    waker_op: Option<OpId>,
    /// The shutdown timer or, once aborting, the cancellation grace timer.
    timer_op: Option<OpId>,
    tick_op: Option<OpId>,
    phase: Phase,
    /// The waker and timers were cancelled: the worker is about to exit.
    internals_cancelled: bool,
    returned: Vec<Returned>,
    bids: Vec<u16>,
    cfg: WorkerConfig,
}

/// A view of the worker's connections for one callback (the borrows `Io` and `WorkerCtx` take).
macro_rules! view {
    ($w:expr) => {
        WorkerIo {
            core: &mut $w.core,
            ios: &mut $w.ios,
            fresh: &mut $w.fresh,
        }
    };
}

impl<H: Handler> Worker<H> {
    pub(crate) fn new(
        worker: usize,
        handler: H,
        driver: Driver,
        pool: Rc<BufPool>,
        listeners: Vec<OwnedSocket>,
        peers: Arc<[Arc<Shared<H::Msg>>]>,
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
            generation: 0,
            timers: Default::default(),
            deadlines: Default::default(),
        };
        Worker {
            handler,
            ios: Slab::with_capacity(1024),
            states: Vec::with_capacity(1024),
            fresh: Vec::new(),
            core,
            listeners: listeners.into_iter().map(Listener::new).collect(),
            shared: peers[worker].clone(),
            peers,
            next_peer: worker,
            posted: VecDeque::new(),
            waker_op: None,
            timer_op: None,
            tick_op: None,
            phase: Phase::Running,
            internals_cancelled: false,
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
            w: view!(self),
            states: &mut self.states,
        };
        self.handler.started(&mut ctx);
        self.install_fresh();
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
            states,
            fresh,
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
        drop((states, fresh, handler));
        match result {
            Err(e) => Err(io::Error::new(e.kind(), format!("worker {worker}: {e}"))),
            Ok(()) if gave_up => Err(io::Error::other(format!(
                "worker {worker}: {in_flight} operations were still in flight after being \
                 cancelled; their memory was leaked rather than freed"
            ))),
            Ok(()) => Ok(()),
        }
    }

    /// Puts the states of connections made during the last callback where they belong.
    fn install_fresh(&mut self) {
        install(&mut self.states, &mut self.fresh);
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
                    if cqe.result == -code::TIME {
                        self.on_shutdown_timer();
                    }
                }
            }
            Owner::Tick => {
                self.core.ops.remove(id);
                self.tick_op = None;
                if cqe.result == -code::TIME {
                    self.on_tick();
                }
            }
            Owner::Timer => {
                self.core.ops.remove(id);
                // A cancelled timer left the set: even if it expired first, it is not delivered.
                if self.core.timers.remove(&id.user_data()) && cqe.result == -code::TIME {
                    let mut ctx = WorkerCtx {
                        w: view!(self),
                        states: &mut self.states,
                    };
                    self.handler.timer(&mut ctx, TimerId(id.user_data()));
                    self.install_fresh();
                }
            }
            Owner::Deadlines => {
                self.core.ops.remove(id);
                if self.core.deadlines.take_kernel(id) && cqe.result == -code::TIME {
                    self.deadlines_due();
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
        let data = if cqe.more {
            None
        } else {
            self.ios[slot].inflight -= 1;
            Some(self.core.ops.remove(id).data)
        };
        if matches!(data, Some(OpData::Close)) {
            let io = self.ios.remove(slot);
            let state = self.states[slot].take().expect("a connection's state");
            if cqe.result < 0 {
                tracing::warn!(key = %io.key, "close: {}", op::errno(cqe.result));
            }
            let mut ctx = WorkerCtx {
                w: view!(self),
                states: &mut self.states,
            };
            self.handler.closed(&mut ctx, state, io.key);
            self.install_fresh();
            return;
        }
        let mut io = Io {
            w: view!(self),
            slot,
        };
        let state = self.states[slot].as_mut().expect("a connection's state");
        match io.complete(data, cqe) {
            Events::One(None) => {}
            Events::One(Some(event)) => self.handler.completion(state, &mut io, event),
            Events::Sent(bufs) => {
                for buf in bufs {
                    if io.is_closing() {
                        break; // no completion after close or abort
                    }
                    self.handler
                        .completion(state, &mut io, Completion::Sent(buf));
                }
            }
        }
        drop(io);
        self.install_fresh();
    }

    /// Settles the buffers handlers gave back: each connection's count, receives paused for
    /// the quota that may resume, and the buffers handed to the kernel again.
    fn recycle(&mut self) {
        self.core.pool.take_returned(&mut self.returned);
        if self.returned.is_empty() {
            return;
        }
        self.bids.clear();
        for r in std::mem::take(&mut self.returned) {
            self.bids.push(r.bid);
            let slot = r.holder.slot();
            let Some(conn) = self.ios.get_mut(slot) else {
                continue;
            };
            if conn.key != r.holder {
                continue; // the connection that held it is gone
            }
            conn.bufs_held -= 1;
            if conn.throttled {
                // Dropping the view moves the receive on (resumed below the lower mark).
                drop(Io {
                    w: view!(self),
                    slot,
                });
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
            if let Some(conn) = self.ios.get_mut(slot) {
                if conn.key == key {
                    conn.waiting = false;
                    drop(Io {
                        w: view!(self),
                        slot,
                    });
                }
            }
        }
    }

    /// The kernel timer of the connections' deadlines fired: every connection whose timer is
    /// due gets its `Timeout`; the kernel timer waits for the next deadline.
    fn deadlines_due(&mut self) {
        let mut due = Vec::new();
        let ios = &self.ios;
        self.core.deadlines.due(
            std::time::Instant::now(),
            |key, armed| {
                ios.get(key.slot())
                    .is_some_and(|c| c.key == key && c.timer == Some(armed))
            },
            &mut due,
        );
        for key in due {
            let slot = key.slot();
            self.ios[slot].timer = None;
            let mut io = Io {
                w: view!(self),
                slot,
            };
            if !io.is_closing() {
                let state = self.states[slot].as_mut().expect("a connection's state");
                self.handler.completion(state, &mut io, Completion::Timeout);
            }
            drop(io);
            self.install_fresh();
        }
        if !self.internals_cancelled {
            self.core.arm_kernel_deadline();
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
        for (slot, io) in self.ios.iter() {
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
            let mut io = Io {
                w: view!(self),
                slot,
            };
            tracing::debug!(key = %io.key(), ?timeout, "send timeout: aborting");
            if !io.is_closing() {
                let error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no send progress for {timeout:?}"),
                );
                let state = self.states[slot].as_mut().expect("a connection's state");
                self.handler
                    .completion(state, &mut io, Completion::Failed { op, error });
            }
            io.abort();
            drop(io);
            self.install_fresh();
        }
    }

    fn arm_waker(&mut self) {
        let sub = Sub::PollIn {
            fd: self.shared.waker_raw(),
        };
        self.waker_op = Some(self.core.start(Owner::Waker, OpData::Poll, sub));
    }

    /// Handles what was posted (messages, sockets to associate), the quit packet and the
    /// abort packet.
    fn on_wake(&mut self) {
        self.shared.clear();
        self.shared.take(&mut self.posted);
        while let Some(packet) = self.posted.pop_front() {
            match packet {
                Packet::Msg(msg) => {
                    let mut ctx = WorkerCtx {
                        w: view!(self),
                        states: &mut self.states,
                    };
                    self.handler.message(&mut ctx, msg);
                    self.install_fresh();
                }
                Packet::Socket(fd) => self.associate_posted(fd),
            }
        }
        if self.shared.quit_requested() && self.phase == Phase::Running {
            self.begin_shutdown();
        }
        if self.shared.abort_requested() && self.phase == Phase::Draining {
            self.abort_all("aborted");
        }
    }

    /// A socket associated from outside: non-blocking, then handed to the handler as if
    /// accepted. While shutting down it is closed at once.
    fn associate_posted(&mut self, fd: OwnedSocket) {
        if self.phase != Phase::Running {
            return;
        }
        let socket = socket2::Socket::from(fd);
        if let Err(e) = socket.set_nonblocking(true) {
            tracing::warn!(worker = self.core.worker, "associating a socket: {e}");
            return;
        }
        self.accepted(socket.into());
    }

    /// Associates an accepted socket with the port under a new completion key; the handler
    /// makes its state.
    fn accepted(&mut self, fd: OwnedSocket) {
        let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
        let mut w = view!(self);
        let key = w.insert_io(IoHandle::socket(fd));
        let mut io = Io {
            w,
            slot: key.slot(),
        };
        let state = self.handler.accepted(&mut io);
        drop(io);
        self.fresh.push((key.slot(), state));
        self.install_fresh();
    }

    /// Stops accepting and asks every connection to close; arms the shutdown timer.
    fn begin_shutdown(&mut self) {
        tracing::debug!(
            worker = self.core.worker,
            connections = self.ios.len(),
            "shutting down"
        );
        self.phase = Phase::Draining;
        self.stop_accepting();
        let slots: Vec<usize> = self.ios.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let mut io = Io {
                w: view!(self),
                slot,
            };
            if !io.is_closing() {
                let state = self.states[slot].as_mut().expect("a connection's state");
                self.handler.shutdown(state, &mut io);
            }
            drop(io);
            self.install_fresh();
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
        if !self.ios.is_empty() {
            tracing::warn!(
                worker = self.core.worker,
                connections = self.ios.len(),
                "{why}: resetting the connections still open"
            );
        }
        self.phase = Phase::Aborting;
        let slots: Vec<usize> = self.ios.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            Io {
                w: view!(self),
                slot,
            }
            .abort();
        }
        self.arm_timer(self.cfg.cancel_grace);
    }

    /// Whether the worker may exit: no connection, no listener, no operation left. Cancels
    /// the waker and the timers once they are all that is left.
    fn finished(&mut self) -> bool {
        if self.phase == Phase::GaveUp {
            return true;
        }
        if !self.ios.is_empty() || self.listeners.iter().any(Listener::is_open) {
            return false;
        }
        if !self.internals_cancelled {
            self.internals_cancelled = true;
            let timers: Vec<u64> = self.core.timers.drain().collect();
            let ids = [
                self.waker_op,
                self.timer_op.take(),
                self.tick_op,
                self.core.deadlines.kernel(),
            ]
            .into_iter()
            .flatten()
            .chain(timers.into_iter().map(OpId::from_user_data));
            for id in ids.collect::<Vec<_>>() {
                self.core.cancel_detached(id);
            }
        }
        self.core.ops.is_empty()
    }
}
