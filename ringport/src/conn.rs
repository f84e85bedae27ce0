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
use std::os::fd::{BorrowedFd, RawFd};

use crate::io::Io;
use crate::key::CompletionKey;
use crate::sys::Sub;
use crate::worker::op::{send_parts, OpData, OpId, Outgoing, Owner};

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

/// The port's bookkeeping of one connection.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) fd: RawFd,
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
    /// Buffer bytes queued or in flight (file ranges do not count: they hold no memory).
    pub(crate) unsent: usize,
    /// The send clock's tick when the sending last made progress.
    pub(crate) progress_tick: u64,
    /// Provided buffers this connection's received data holds.
    pub(crate) bufs_held: u32,
    pub(crate) timeout_op: Option<OpId>,
    pub(crate) connect_op: Option<OpId>,
    /// Operations of this connection not yet finally completed: the descriptor is closed only
    /// when none is left, so that none can reach a later file with the same number.
    pub(crate) inflight: u32,
}

impl ConnIo {
    pub(crate) fn new(fd: RawFd, key: CompletionKey) -> Self {
        ConnIo {
            fd,
            key,
            life: Life::Open,
            recv: Recv::Off,
            want_recv: false,
            throttled: false,
            waiting: false,
            send_op: None,
            send_queue: VecDeque::new(),
            unsent: 0,
            progress_tick: 0,
            bufs_held: 0,
            timeout_op: None,
            connect_op: None,
            inflight: 0,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.life == Life::Open
    }
}

impl Io<'_> {
    /// Starts an operation of this connection: the one place that counts what is in flight.
    pub(crate) fn op(&mut self, data: OpData, sub: Sub) -> OpId {
        self.conn.inflight += 1;
        self.core.start(Owner::Conn(self.slot), data, sub)
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
        self.conn.progress_tick = self.core.tick;
        self.core.tick_wanted = true;
        let (data, sub) = send_parts(self.conn.fd, out, done);
        self.conn.send_op = Some(self.op(data, sub));
    }

    /// Starts the next queued send, if any.
    pub(crate) fn send_next(&mut self) {
        if let Some(next) = self.conn.send_queue.pop_front() {
            self.start_send(next, 0);
        }
    }

    /// Drops what is queued for sending (not what is in flight).
    pub(crate) fn drop_queue(&mut self) {
        for out in self.conn.send_queue.drain(..) {
            self.conn.unsent -= out.held();
        }
    }

    /// Whether the port's limits let the connection receive now; with `scarce`, whether the
    /// only reason it may not is a scarce pool.
    fn within_limits(&self) -> (bool, bool) {
        let (c, l) = (&*self.conn, &self.core.limits);
        // Once throttled, the lower marks apply until they clear (hysteresis).
        let (max_bufs, max_unsent) = match c.throttled {
            true => (l.max_bufs.div_ceil(2), l.max_unsent.div_ceil(4)),
            false => (l.max_bufs, l.max_unsent),
        };
        let own = c.bufs_held < max_bufs && c.unsent < max_unsent;
        let scarce = c.bufs_held >= l.scarce_share && self.core.pool.free() < l.scarce_below;
        (own && !scarce, own && scarce)
    }

    /// Arms or stops the multishot receive as the handler's wish, the connection's state and
    /// the port's limits say.
    pub(crate) fn update_recv(&mut self) {
        let wanted = self.conn.want_recv && self.conn.is_open();
        let (allowed, scarce_only) = if wanted {
            self.within_limits()
        } else {
            (false, false)
        };
        self.conn.throttled = wanted && !allowed;
        match self.conn.recv {
            Recv::Off if allowed => {
                let fd = self.conn.fd;
                self.conn.recv = Recv::Armed(self.op(OpData::Recv, Sub::RecvMulti { fd }));
            }
            Recv::Armed(id) if !allowed => {
                self.cancel(id);
                self.conn.recv = Recv::Stopping(id);
            }
            _ => {}
        }
        if scarce_only {
            self.wait_for_pool();
        }
    }

    /// Queues the connection until the worker's pool has room.
    pub(crate) fn wait_for_pool(&mut self) {
        if !self.conn.waiting {
            self.conn.waiting = true;
            self.core.waiting.push_back(self.conn.key);
        }
    }

    /// Leaves the open state: cancels what is on the descriptor; `reset` closes with a reset.
    pub(crate) fn start_cancelling(&mut self, reset: bool) {
        self.conn.life = Life::Cancelling { reset };
        let c = &*self.conn;
        if c.recv != Recv::Off || c.send_op.is_some() || c.connect_op.is_some() {
            let fd = c.fd;
            self.op(OpData::Cancel, Sub::CancelFd { fd });
        }
    }

    /// Moves the connection on towards closed: once sends are done (or aborted), cancels what
    /// is left, and once nothing is in flight, closes the descriptor.
    pub(crate) fn progress_close(&mut self) {
        if self.conn.life == Life::Draining
            && self.conn.send_op.is_none()
            && self.conn.send_queue.is_empty()
        {
            self.start_cancelling(false);
        }
        let Life::Cancelling { reset } = self.conn.life else {
            return;
        };
        if self.conn.inflight > 0 {
            return;
        }
        if reset {
            // SAFETY: the port owns the descriptor; it is open until the CLOSE queued below.
            let socket = unsafe { BorrowedFd::borrow_raw(self.conn.fd) };
            // A zero linger makes the close send a reset. Not a socket (never here) or already
            // reset: nothing to tell the peer.
            let _ = socket2::SockRef::from(&socket).set_linger(Some(std::time::Duration::ZERO));
        }
        self.conn.life = Life::Closing;
        let fd = self.conn.fd;
        self.op(OpData::Close, Sub::Close { fd });
    }
}
