//! The worker: one thread, one ring, a batch of completions per loop turn, each dispatched to
//! the handler of the connection it belongs to (IOCP's `GetQueuedCompletionStatusEx` loop).

pub(crate) mod ctx;
pub(crate) mod op;
mod shared;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::buf::{BufPool, RecvBuf};
use crate::completion::{Completion, OpKind};
use crate::handler::Handler;
use crate::io::{Closing, ConnIo, Io};
use crate::key::CompletionKey;
use crate::sys::{Cqe, Driver, Sub};
pub use ctx::WorkerCtx;
use op::{errno, Core, OpData, Outgoing, Owner};
pub(crate) use shared::Shared;

/// How long a listener waits before accepting again after an error such as `EMFILE`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// After the shutdown timeout, how long to wait for cancelled operations before giving up.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// Connections re-armed after `ENOBUFS` per loop turn.
const REARM_PER_TURN: usize = 64;

/// A connection: the port's bookkeeping and the handler's state.
#[derive(Debug)]
pub struct Slot<C> {
    pub(crate) io: ConnIo,
    pub(crate) state: C,
}

/// A listening socket of this worker.
#[derive(Debug)]
struct Listener {
    fd: Option<OwnedFd>,
    /// The armed multishot accept, or the back-off timer.
    op: Option<usize>,
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
}

/// One worker thread's state.
pub(crate) struct Worker<H: Handler> {
    handler: H,
    conns: Slab<Slot<H::Conn>>,
    core: Core,
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    waker_op: Option<usize>,
    timer_op: Option<usize>,
    phase: Phase,
    /// The waker and timer were cancelled: the worker is about to exit.
    internals_cancelled: bool,
    generation: u32,
    /// Connections whose receive ran out of provided buffers (`ENOBUFS`).
    starved: VecDeque<usize>,
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
            ops: Slab::with_capacity(1024),
            pool,
            local: VecDeque::new(),
            worker,
        };
        Worker {
            handler,
            conns: Slab::with_capacity(1024),
            core,
            listeners: listeners
                .into_iter()
                .map(|fd| Listener {
                    fd: Some(fd),
                    op: None,
                })
                .collect(),
            shared,
            waker_op: None,
            timer_op: None,
            phase: Phase::Running,
            internals_cancelled: false,
            generation: 0,
            starved: VecDeque::new(),
            cfg,
        }
    }

    /// Runs until the port shuts down and every operation has completed.
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
        while self.phase == Phase::Running || !self.finished() {
            let wait = self.core.local.is_empty();
            self.core.driver.wait(&mut batch, wait)?;
            batch.extend(self.core.local.drain(..));
            for cqe in batch.drain(..) {
                self.dispatch(cqe);
            }
            self.rearm_starved();
        }
        if self.phase == Phase::GaveUp {
            // The kernel may still write into the buffers of unfinished operations: leaking
            // them is the only safe choice.
            tracing::error!(
                worker = self.core.worker,
                ops = self.core.ops.len(),
                "operations did not complete; leaking their buffers"
            );
            std::mem::forget(self);
        }
        Ok(())
    }

    fn dispatch(&mut self, cqe: Cqe) {
        let Some(op) = self.core.ops.get(cqe.user_data as usize) else {
            tracing::error!(
                user_data = cqe.user_data,
                "completion for an unknown operation"
            );
            return;
        };
        match op.owner {
            Owner::Conn(slot) => self.conn_completion(slot, cqe),
            Owner::Listener(l) => self.listener_completion(l, cqe),
            Owner::Waker => {
                if !cqe.more {
                    self.core.ops.remove(cqe.user_data as usize);
                    self.waker_op = None;
                    if self.phase == Phase::Running {
                        self.arm_waker();
                    }
                }
                self.on_wake();
            }
            Owner::ShutdownTimer => {
                self.core.ops.remove(cqe.user_data as usize);
                self.timer_op = None;
                if cqe.result == -libc::ETIME {
                    self.on_shutdown_timer();
                }
            }
        }
    }

    fn conn_completion(&mut self, slot: usize, cqe: Cqe) {
        let idx = cqe.user_data as usize;
        let pool = &self.core.pool;
        // A provided buffer always goes back to the pool, even when the data is dropped.
        let buf = cqe
            .buf
            .map(|bid| RecvBuf::new(pool.clone(), bid, cqe.result.max(0) as u32));
        let data = if cqe.more {
            None
        } else {
            self.conns[slot].io.inflight -= 1;
            Some(self.core.ops.remove(idx).data)
        };
        let was_final = data.is_some();
        let recv_ended = matches!(data, Some(OpData::Recv));
        let Slot { io: conn, state } = &mut self.conns[slot];
        let mut io = Io {
            core: &mut self.core,
            conn,
            slot,
        };
        let res = cqe.result;
        let event = match data {
            None | Some(OpData::Recv) => {
                if was_final {
                    io.conn.recv_op = None;
                }
                match res {
                    _ if io.conn.closing != Closing::No => None,
                    n if n > 0 => match buf {
                        Some(buf) => Some(Completion::Received(buf)),
                        None => Some(Completion::Failed {
                            op: OpKind::Recv,
                            error: io::Error::other("data without a buffer"),
                        }),
                    },
                    0 => {
                        io.conn.want_recv = false;
                        Some(Completion::Eof)
                    }
                    r if r == -libc::ENOBUFS => {
                        self.starved.push_back(slot);
                        None
                    }
                    r if r == -libc::ECANCELED => None,
                    r => {
                        io.conn.want_recv = false;
                        Some(Completion::Failed {
                            op: OpKind::Recv,
                            error: errno(r),
                        })
                    }
                }
            }
            Some(OpData::Send { buf, done }) => {
                io.conn.send_op = None;
                if res >= 0 && io.conn.closing != Closing::Abort {
                    let done = done + res as usize;
                    if done < buf.len() {
                        io.start_send(Outgoing::Buf(buf), done as u64);
                        None
                    } else {
                        io.conn.unsent -= buf.len();
                        io.send_next();
                        (io.conn.closing == Closing::No).then_some(Completion::Sent(buf))
                    }
                } else {
                    io.send_failed(OpKind::Send, errno(res))
                }
            }
            Some(OpData::SendFile {
                file,
                offset,
                len,
                done,
            }) => {
                io.conn.send_op = None;
                if res >= 0 && io.conn.closing != Closing::Abort {
                    let done = done + res as u64;
                    if done >= len {
                        io.send_next();
                        let sent = Completion::FileSent { file, bytes: len };
                        (io.conn.closing == Closing::No).then_some(sent)
                    } else if res == 0 {
                        let error = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file ended before its range was sent",
                        );
                        io.send_failed(OpKind::SendFile, error)
                    } else {
                        io.start_send(Outgoing::File { file, offset, len }, done);
                        None
                    }
                } else {
                    io.send_failed(OpKind::SendFile, errno(res))
                }
            }
            Some(OpData::Open { .. }) => {
                let opened = (res >= 0).then(|| {
                    // SAFETY: a successful open returns a new descriptor nobody else owns.
                    unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(res) }
                });
                match opened {
                    // The handler closed the connection meanwhile: the file is dropped (closed).
                    _ if io.conn.closing != Closing::No => None,
                    Some(file) => Some(Completion::Opened(Ok(file))),
                    None => Some(Completion::Opened(Err(errno(res)))),
                }
            }
            Some(OpData::Connect { .. }) => {
                io.conn.connect_op = None;
                match res {
                    _ if io.conn.closing != Closing::No => None,
                    0 => Some(Completion::Connected),
                    r => Some(Completion::Failed {
                        op: OpKind::Connect,
                        error: errno(r),
                    }),
                }
            }
            Some(OpData::Timeout) => {
                // A timer cleared or replaced after it expired (its cancellation came too late)
                // is not the current one any more: it is not delivered.
                let current = io.conn.timeout_op == Some(idx);
                if current {
                    io.conn.timeout_op = None;
                }
                (current && res == -libc::ETIME && io.conn.closing == Closing::No)
                    .then_some(Completion::Timeout)
            }
            Some(OpData::Close) => {
                let Slot { io, state } = self.conns.remove(slot);
                if res < 0 {
                    tracing::warn!(key = %io.key, "close: {}", errno(res));
                }
                self.handler.closed(state, io.key);
                return;
            }
            Some(OpData::Cancel | OpData::Accept | OpData::Poll) => None,
        };
        if let Some(event) = event {
            self.handler.completion(state, &mut io, event);
        }
        // A multishot receive that ended with data (for example on a full completion queue),
        // or was cancelled by `stop_recv` after which `recv` was asked for again, is re-armed.
        let rearm = res > 0 || res == -libc::ECANCELED;
        if recv_ended && rearm && io.conn.want_recv && io.conn.recv_op.is_none() {
            io.recv();
        }
        io.progress_close();
    }

    fn listener_completion(&mut self, l: usize, cqe: Cqe) {
        let idx = cqe.user_data as usize;
        let data = if cqe.more {
            None
        } else {
            Some(self.core.ops.remove(idx).data)
        };
        if data.is_some() {
            self.listeners[l].op = None;
        }
        let running = self.phase == Phase::Running;
        match (data, cqe.result) {
            (Some(OpData::Timeout), _) if running => self.arm_accept(l),
            (None | Some(OpData::Accept), fd) if fd >= 0 => {
                // SAFETY: a successful accept returns a new descriptor that nothing else owns.
                let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                if running {
                    self.associate(fd);
                }
                if !cqe.more && running {
                    self.arm_accept(l);
                }
            }
            (Some(OpData::Accept), e) if running => {
                let err = errno(e);
                if matches!(
                    -e,
                    libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
                ) {
                    tracing::warn!(
                        worker = self.core.worker,
                        "accept: {err}; retrying in {ACCEPT_BACKOFF:?}"
                    );
                } else {
                    tracing::debug!(worker = self.core.worker, "accept: {err}");
                }
                let nanos = ACCEPT_BACKOFF.as_nanos() as u64;
                self.listeners[l].op = Some(self.core.start(
                    Owner::Listener(l),
                    OpData::Timeout,
                    Sub::Timeout { nanos },
                ));
            }
            _ => {}
        }
        if !running && self.listeners[l].op.is_none() {
            self.listeners[l].fd = None;
        }
    }

    /// Associates an accepted socket with the port under a new completion key.
    fn associate(&mut self, fd: OwnedFd) {
        let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
        let fd = std::os::fd::IntoRawFd::into_raw_fd(fd);
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        self.generation = self.generation.wrapping_add(1);
        let mut conn = ConnIo::new(
            fd,
            CompletionKey::new(self.core.worker, slot, self.generation),
        );
        let mut io = Io {
            core: &mut self.core,
            conn: &mut conn,
            slot,
        };
        let state = self.handler.accepted(&mut io);
        io.progress_close();
        entry.insert(Slot { io: conn, state });
    }

    fn arm_accept(&mut self, l: usize) {
        if let Some(fd) = &self.listeners[l].fd {
            let sub = Sub::AcceptMulti { fd: fd.as_raw_fd() };
            self.listeners[l].op = Some(self.core.start(Owner::Listener(l), OpData::Accept, sub));
        }
    }

    fn arm_waker(&mut self) {
        let sub = Sub::PollIn {
            fd: self.shared.eventfd(),
        };
        self.waker_op = Some(self.core.start(Owner::Waker, OpData::Poll, sub));
    }

    /// Handles posts and the quit packet.
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
    }

    /// Stops accepting and asks every connection to close; arms the shutdown timer.
    fn begin_shutdown(&mut self) {
        tracing::debug!(
            worker = self.core.worker,
            connections = self.conns.len(),
            "shutting down"
        );
        self.phase = Phase::Draining;
        for l in 0..self.listeners.len() {
            match self.listeners[l].op {
                Some(idx) => self.core.cancel(Owner::Listener(l), idx),
                None => self.listeners[l].fd = None,
            }
        }
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
            io.progress_close();
        }
        self.arm_timer(self.cfg.shutdown_timeout);
    }

    fn arm_timer(&mut self, after: Duration) {
        let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        self.timer_op = Some(self.core.start(
            Owner::ShutdownTimer,
            OpData::Timeout,
            Sub::Timeout { nanos },
        ));
    }

    fn on_shutdown_timer(&mut self) {
        match self.phase {
            Phase::Draining => {
                tracing::info!(
                    worker = self.core.worker,
                    connections = self.conns.len(),
                    "shutdown timeout: aborting"
                );
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
                self.arm_timer(CANCEL_GRACE);
            }
            Phase::Aborting => self.phase = Phase::GaveUp,
            Phase::Running | Phase::GaveUp => {}
        }
    }

    /// Whether the worker may exit: no connection, no listener, no operation left. Cancels
    /// the waker and the timer once they are all that is left.
    fn finished(&mut self) -> bool {
        if self.phase == Phase::GaveUp {
            return true;
        }
        if !self.conns.is_empty() || self.listeners.iter().any(|l| l.fd.is_some()) {
            return false;
        }
        if !self.internals_cancelled {
            self.internals_cancelled = true;
            for op in [self.waker_op, self.timer_op].into_iter().flatten() {
                self.core.cancel(Owner::Waker, op);
            }
        }
        self.core.ops.is_empty()
    }

    /// Re-arms receives that ran out of buffers, once buffers have come back.
    fn rearm_starved(&mut self) {
        if self.starved.is_empty() || !self.core.pool.has_free() {
            return;
        }
        for _ in 0..REARM_PER_TURN.min(self.starved.len()) {
            let slot = self.starved.pop_front().expect("non-empty");
            if let Some(Slot { io: conn, .. }) = self.conns.get_mut(slot) {
                if conn.want_recv && conn.recv_op.is_none() {
                    Io {
                        core: &mut self.core,
                        conn,
                        slot,
                    }
                    .recv();
                }
            }
        }
    }
}
