//! The port's bookkeeping of one connection (IOCP's per-handle data) and the rules the port
//! applies to it by itself: when it may receive, how it closes.
//!
//! **Receiving.** A connection receives while its handler wants it ([`crate::Io::recv`]), it
//! is open, and it is within the port's limits:
//! - it holds fewer provided buffers than the quota (received and not yet dropped, including
//!   buffers queued for sending);
//! - fewer bytes wait to be sent than the unsent limit;
//! - when the worker's pool is scarce (under a quarter free), it holds fewer than a small share.
//!
//! Past a limit the port cancels the multishot receive (the kernel may still hand over what it
//! had already taken in that loop turn) and arms it again once the connection is back under
//! the lower marks (half the quota, a quarter of the unsent limit) or the pool has recovered.
//!
//! **Closing** is one state ([`Life`]): open → draining (graceful: queued sends finish) →
//! cancelling (whatever is left on the descriptor is cancelled) → closing (the `CLOSE` is in
//! flight once no operation is). An abort skips draining and resets the connection
//! (`SO_LINGER` 0: the peer sees a reset, not a normal end, so it can tell data was cut).

use std::collections::VecDeque;

use crate::buf::SendBuf;
use crate::io::Io;
use crate::key::CompletionKey;
use crate::sys::{borrow_socket, IoHandle, Raw, Sub};
use crate::worker::deadlines::Armed;
use crate::worker::op::{send_parts, sendv_parts, OpData, OpId, Outgoing, Owner};

/// Where a connection is on its way to closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Open,
    /// Closing gracefully: queued sends finish first.
    Draining,
    /// What is left on the descriptor is cancelled; closes once nothing is in flight.
    /// `reset`: close with a reset (abort).
    Cancelling {
        reset: bool,
    },
    /// The `CLOSE` is in flight.
    Closing,
}

/// The connection's multishot receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recv {
    Off,
    Armed(OpId),
    /// Cancelled; its final completion has not come yet.
    Stopping(OpId),
}

/// Buffers sent in one call at most (queued ones beyond wait for the next).
const GATHER: usize = 64;

/// The port's bookkeeping of one connection.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) fd: Raw,
    /// A file handle rather than a socket.
    pub(crate) file: bool,
    pub(crate) key: CompletionKey,
    pub(crate) life: Life,
    pub(crate) recv: Recv,
    /// The handler wants to receive.
    pub(crate) want_recv: bool,
    /// The port stopped receiving: a limit was reached (lower marks apply until it clears).
    pub(crate) throttled: bool,
    /// In the worker's queue of connections waiting for the buffer pool.
    pub(crate) waiting: bool,
    /// The send in flight; at most one, for ordering.
    pub(crate) send_op: Option<OpId>,
    pub(crate) send_queue: VecDeque<Outgoing>,
    /// The sending side is closed (or will be, once the queue is sent).
    pub(crate) write_closed: bool,
    /// Buffer bytes queued or in flight (file ranges do not count: they hold no memory).
    pub(crate) unsent: usize,
    /// The send clock's tick when the sending last made progress.
    pub(crate) progress_tick: u64,
    /// Provided buffers this connection's received data holds.
    pub(crate) bufs_held: u32,
    /// The connection's timer, kept by the worker's deadlines.
    pub(crate) timer: Option<Armed>,
    pub(crate) connect_op: Option<OpId>,
    /// Operations of this connection not yet finally completed: the descriptor is closed only
    /// when none is left, so that none can reach a later file with the same number.
    pub(crate) inflight: u32,
}

impl ConnIo {
    pub(crate) fn new(handle: IoHandle, key: CompletionKey) -> Self {
        ConnIo {
            fd: handle.raw,
            file: handle.file,
            key,
            life: Life::Open,
            recv: Recv::Off,
            want_recv: false,
            throttled: false,
            waiting: false,
            send_op: None,
            send_queue: VecDeque::new(),
            write_closed: false,
            unsent: 0,
            progress_tick: 0,
            bufs_held: 0,
            timer: None,
            connect_op: None,
            inflight: 0,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.life == Life::Open
    }
}

impl<C> Io<'_, C> {
    /// This connection's bookkeeping.
    pub(crate) fn c(&self) -> &ConnIo {
        &self.w.ios[self.slot]
    }

    /// This connection's bookkeeping, to change.
    pub(crate) fn cm(&mut self) -> &mut ConnIo {
        &mut self.w.ios[self.slot]
    }

    /// Starts an operation of this connection: the one place that counts what is in flight.
    pub(crate) fn op(&mut self, data: OpData, sub: Sub) -> OpId {
        self.cm().inflight += 1;
        self.w.core.start(Owner::Conn(self.slot), data, sub)
    }

    /// Cancels one operation of this connection (by `user_data`).
    pub(crate) fn cancel(&mut self, id: OpId) {
        let sub = Sub::Cancel {
            user_data: id.user_data(),
        };
        self.op(OpData::Cancel, sub);
    }

    /// Starts sending `out` from byte `done` on. Starting a send is progress for the send clock.
    pub(crate) fn start_send(&mut self, out: Outgoing, done: u64) {
        self.cm().progress_tick = self.w.core.tick;
        self.resend(out, done);
    }

    /// Sends `out` from byte `done` on again, without counting it as progress (the kernel said
    /// "try again": io_uring gives up a send whose socket was still full after a wakeup).
    pub(crate) fn resend(&mut self, out: Outgoing, done: u64) {
        self.w.core.tick_wanted = true;
        let (data, sub) = send_parts(self.c().fd, out, done);
        let id = self.op(data, sub);
        self.cm().send_op = Some(id);
    }

    /// Starts the next queued send, if any (none while connecting: the queue waits for it).
    pub(crate) fn send_next(&mut self) {
        if self.c().connect_op.is_some() || self.c().send_op.is_some() {
            return;
        }
        let queue = &mut self.cm().send_queue;
        match queue.pop_front() {
            Some(Outgoing::HalfClose) => {
                self.shut_write();
                self.send_next();
            }
            // Several buffers in a row leave in one call.
            Some(Outgoing::Buf(first)) if matches!(queue.front(), Some(Outgoing::Buf(_))) => {
                let mut bufs = vec![first];
                while bufs.len() < GATHER {
                    match queue.pop_front() {
                        Some(Outgoing::Buf(b)) => bufs.push(b),
                        Some(other) => {
                            queue.push_front(other);
                            break;
                        }
                        None => break,
                    }
                }
                self.start_sendv(bufs, 0, true);
            }
            Some(next) => self.start_send(next, 0),
            None => {}
        }
    }

    /// Starts sending `bufs` in one call, from byte `skip` of the first; `progress`: whether
    /// this counts as progress for the send clock (not for a retry after "try again").
    pub(crate) fn start_sendv(&mut self, bufs: Vec<SendBuf>, skip: usize, progress: bool) {
        if progress {
            self.cm().progress_tick = self.w.core.tick;
        }
        self.w.core.tick_wanted = true;
        let (data, sub) = sendv_parts(self.c().fd, bufs, skip);
        let id = self.op(data, sub);
        self.cm().send_op = Some(id);
    }

    /// Ends the sending direction (the peer reads EOF); receiving goes on.
    fn shut_write(&mut self) {
        // SAFETY: the port owns the descriptor; it is open until the connection's CLOSE.
        let socket = unsafe { borrow_socket(self.c().fd) };
        // Not connected any more: the peer will learn that from the close.
        let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Write);
    }

    /// Drops what is queued for sending (not what is in flight).
    pub(crate) fn drop_queue(&mut self) {
        let c = self.cm();
        for out in c.send_queue.drain(..) {
            c.unsent -= out.held();
        }
    }

    /// Whether the port's limits let the connection receive now.
    fn gate(&self) -> Gate {
        let (c, l) = (self.c(), &self.w.core.limits);
        if c.waiting {
            return Gate::Queued;
        }
        // Once throttled, the lower marks apply until they clear (hysteresis).
        let (max_bufs, max_unsent) = match c.throttled {
            true => (l.max_bufs.div_ceil(2), l.max_unsent.div_ceil(4)),
            false => (l.max_bufs, l.max_unsent),
        };
        if c.bufs_held >= max_bufs || c.unsent >= max_unsent {
            Gate::OverLimit
        } else if c.bufs_held >= l.scarce_share && self.w.core.pool.free() < l.scarce_below {
            Gate::Scarce
        } else {
            Gate::Open
        }
    }

    /// Arms or stops the multishot receive as the handler's wish, the connection's state and
    /// the port's limits say.
    pub(crate) fn update_recv(&mut self) {
        let wanted = self.c().want_recv && self.c().is_open();
        let gate = if wanted { self.gate() } else { Gate::Open };
        let allowed = wanted && gate == Gate::Open;
        self.cm().throttled = wanted && !allowed;
        match self.c().recv {
            Recv::Off if allowed => {
                let fd = self.c().fd;
                let id = self.op(OpData::Recv, Sub::RecvMulti { fd });
                self.cm().recv = Recv::Armed(id);
            }
            Recv::Armed(id) if !allowed => {
                self.cancel(id);
                self.cm().recv = Recv::Stopping(id);
            }
            _ => {}
        }
        if wanted && gate == Gate::Scarce {
            self.wait_for_pool();
        }
    }

    /// Queues the connection until the worker's pool has room.
    pub(crate) fn wait_for_pool(&mut self) {
        if !self.c().waiting {
            self.cm().waiting = true;
            let key = self.c().key;
            self.w.core.waiting.push_back(key);
        }
    }

    /// Leaves the open state: cancels what is on the descriptor; `reset` closes with a reset.
    pub(crate) fn start_cancelling(&mut self, reset: bool) {
        self.cm().life = Life::Cancelling { reset };
        let c = self.c();
        if c.recv != Recv::Off || c.send_op.is_some() || c.connect_op.is_some() {
            let fd = c.fd;
            self.op(OpData::Cancel, Sub::CancelFd { fd });
        }
    }

    /// Moves the connection on towards closed: once sends are done (or aborted), cancels what
    /// is left, and once nothing is in flight, closes the descriptor.
    pub(crate) fn progress_close(&mut self) {
        let c = self.c();
        if c.life == Life::Draining && c.send_op.is_none() && c.send_queue.is_empty() {
            self.start_cancelling(false);
        }
        let Life::Cancelling { reset } = self.c().life else {
            return;
        };
        if self.c().inflight > 0 {
            return;
        }
        if reset {
            // SAFETY: the port owns the descriptor; it is open until the CLOSE queued below.
            let socket = unsafe { borrow_socket(self.c().fd) };
            // A zero linger makes the close send a reset. Not a socket (a file handle) or
            // already reset: nothing to tell a peer.
            let _ = socket2::SockRef::from(&socket).set_linger(Some(std::time::Duration::ZERO));
        }
        self.cm().life = Life::Closing;
        let (fd, file) = (self.c().fd, self.c().file);
        self.op(OpData::Close, Sub::Close { fd, file });
    }

    /// What every change to a connection ends with: its receive and its close moved on.
    pub(crate) fn settle(&mut self) {
        self.update_recv();
        self.progress_close();
    }
}

/// Whether the port's limits let a connection receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Open,
    /// Over its own quota of buffers or unsent bytes.
    OverLimit,
    /// The pool is scarce and the connection holds more than a small share.
    Scarce,
    /// In the queue of connections waiting for the pool.
    Queued,
}
