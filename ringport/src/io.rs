//! [`Io`]: what a handler can do with one connection.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::buf::SendBuf;
use crate::key::CompletionKey;
use crate::sys::Sub;
use crate::worker::op::{Core, OpData, Outgoing, Owner};

/// How far a connection is on its way to closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Open.
    No,
    /// Close once queued sends are done.
    Graceful,
    /// Cancel everything and close.
    Abort,
}

/// The port's bookkeeping of one connection (the per-handle data).
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) fd: RawFd,
    pub(crate) key: CompletionKey,
    /// The armed multishot receive.
    pub(crate) recv_op: Option<usize>,
    /// Whether the handler wants to receive (receives are re-armed after `ENOBUFS`).
    pub(crate) want_recv: bool,
    /// The send in flight; at most one, for ordering.
    pub(crate) send_op: Option<usize>,
    pub(crate) send_queue: VecDeque<Outgoing>,
    /// Buffer bytes queued or in flight (file ranges do not count: they hold no memory).
    pub(crate) unsent: usize,
    pub(crate) timeout_op: Option<usize>,
    pub(crate) connect_op: Option<usize>,
    /// Operations of this connection not yet finally completed.
    pub(crate) inflight: u32,
    pub(crate) closing: Closing,
    pub(crate) cancelled: bool,
    pub(crate) close_started: bool,
}

impl ConnIo {
    pub(crate) fn new(fd: RawFd, key: CompletionKey) -> Self {
        ConnIo {
            fd,
            key,
            recv_op: None,
            want_recv: false,
            send_op: None,
            send_queue: VecDeque::new(),
            unsent: 0,
            timeout_op: None,
            connect_op: None,
            inflight: 0,
            closing: Closing::No,
            cancelled: false,
            close_started: false,
        }
    }
}

/// One connection, as a handler sees it while handling one of its completions.
///
/// Every method starts operations; their completions come back to
/// [`crate::Handler::completion`] later, on the same worker.
#[derive(Debug)]
pub struct Io<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) conn: &'a mut ConnIo,
    pub(crate) slot: usize,
}

impl Io<'_> {
    /// The connection's completion key.
    pub fn key(&self) -> CompletionKey {
        self.conn.key
    }

    /// The connection's socket, for options and addresses. Do not read, write or close it.
    pub fn socket(&self) -> BorrowedFd<'_> {
        // SAFETY: the port owns the descriptor and closes it only after every operation of
        // this connection has completed, which is after this borrow of `self` ends.
        unsafe { BorrowedFd::borrow_raw(self.conn.fd) }
    }

    /// The peer's address (one `getpeername` call).
    ///
    /// # Errors
    /// When the socket is no longer connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let addr = socket2::SockRef::from(&self.socket()).peer_addr()?;
        addr.as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "not an IP socket"))
    }

    fn op(&mut self, data: OpData, sub: Sub) -> usize {
        self.conn.inflight += 1;
        self.core.start(Owner::Conn(self.slot), data, sub)
    }

    /// Keeps receiving: every chunk of data arrives as [`crate::Completion::Received`] in
    /// a buffer the worker lends. Does nothing if already receiving or closing.
    pub fn recv(&mut self) {
        self.conn.want_recv = true;
        if self.conn.recv_op.is_none() && self.conn.closing == Closing::No {
            let fd = self.conn.fd;
            self.conn.recv_op = Some(self.op(OpData::Recv, Sub::RecvMulti { fd }));
        }
    }

    /// Stops receiving (backpressure). Data already on its way may still arrive.
    pub fn stop_recv(&mut self) {
        self.conn.want_recv = false;
        if let Some(idx) = self.conn.recv_op {
            self.cancel(idx);
        }
    }

    /// Whether a receive is armed or wanted.
    pub fn is_receiving(&self) -> bool {
        self.conn.want_recv
    }

    /// Sends the whole buffer after everything queued before it;
    /// [`crate::Completion::Sent`] gives it back. Ignored once the connection is closing.
    pub fn send(&mut self, buf: impl Into<SendBuf>) {
        let buf = buf.into();
        if self.conn.closing != Closing::No {
            return;
        }
        self.conn.unsent += buf.len();
        self.queue(Outgoing::Buf(buf));
    }

    /// Sends `len` bytes of `file` from `offset` after everything queued before it, without
    /// copying through user space (TransmitFile); [`crate::Completion::FileSent`] gives the
    /// file back. Files over 4 GiB are fine. Ignored once the connection is closing.
    ///
    /// Platform specific: on io_uring and epoll, `sendfile(2)` driven by readiness. Unlike
    /// sends, `sendfile` cannot be told `MSG_NOSIGNAL`: a peer that reset raises `SIGPIPE`,
    /// which Rust programs ignore by default; a host program that does not must ignore it.
    pub fn send_file(&mut self, file: Rc<File>, offset: u64, len: u64) {
        if self.conn.closing == Closing::No {
            self.queue(Outgoing::File { file, offset, len });
        }
    }

    fn queue(&mut self, out: Outgoing) {
        if self.conn.send_op.is_none() {
            self.start_send(out, 0);
        } else {
            self.conn.send_queue.push_back(out);
        }
    }

    pub(crate) fn start_send(&mut self, out: Outgoing, done: u64) {
        self.conn.inflight += 1;
        self.conn.send_op = Some(self.core.start_send(self.slot, self.conn.fd, out, done));
    }

    /// Opens `path` read-only beneath directory `dir`, never leaving it: `..`, absolute
    /// paths, symlinks that point outside and `/proc` magic links fail with
    /// `EXDEV`/`ELOOP`. FIFOs open without blocking. [`crate::Completion::Opened`] gives the
    /// file.
    ///
    /// Platform specific: io_uring opens on the kernel's side (`openat2`) without blocking
    /// the worker; epoll calls `openat2(2)` on the worker thread.
    ///
    /// # Errors
    /// `path` containing a NUL byte is refused at once (`InvalidInput`).
    pub fn open_beneath(&mut self, dir: &Arc<OwnedFd>, path: &[u8]) -> io::Result<()> {
        let path = CString::new(path)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in path"))?;
        if self.conn.closing == Closing::No {
            let sub = Sub::OpenBeneath {
                dir: dir.as_raw_fd(),
                path: path.as_ptr(),
            };
            self.op(
                OpData::Open {
                    _dir: dir.clone(),
                    _path: path,
                },
                sub,
            );
        }
        Ok(())
    }

    /// Starts the next queued send, if any.
    pub(crate) fn send_next(&mut self) {
        if let Some(next) = self.conn.send_queue.pop_front() {
            self.start_send(next, 0);
        }
    }

    /// A send failed: the queue is dropped; the error is reported unless the handler closed
    /// the connection (then cancellation is expected).
    pub(crate) fn send_failed(
        &mut self,
        op: crate::OpKind,
        error: io::Error,
    ) -> Option<crate::Completion> {
        self.conn.send_queue.clear();
        self.conn.unsent = 0;
        (self.conn.closing == Closing::No).then_some(crate::Completion::Failed { op, error })
    }

    /// Bytes queued or in flight for sending.
    pub fn unsent(&self) -> usize {
        self.conn.unsent
    }

    /// Arms the connection's timer; [`crate::Completion::Timeout`] fires after `after`.
    /// Replaces an armed timer.
    pub fn set_timeout(&mut self, after: Duration) {
        self.clear_timeout();
        if self.conn.closing == Closing::No {
            let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
            self.conn.timeout_op = Some(self.op(OpData::Timeout, Sub::Timeout { nanos }));
        }
    }

    /// Disarms the connection's timer, if armed.
    pub fn clear_timeout(&mut self) {
        if let Some(idx) = self.conn.timeout_op.take() {
            self.cancel(idx);
        }
    }

    fn cancel(&mut self, idx: usize) {
        self.conn.inflight += 1;
        self.core.cancel(Owner::Conn(self.slot), idx);
    }

    /// Closes gracefully: stops receiving, lets queued sends finish, then closes the socket.
    /// No completion is delivered after this but [`crate::Handler::closed`].
    pub fn close(&mut self) {
        if self.conn.closing == Closing::No {
            self.conn.closing = Closing::Graceful;
            self.stop_recv();
            self.clear_timeout();
        }
    }

    /// Closes at once: cancels every operation (queued data is dropped), then closes the
    /// socket. No completion is delivered after this but [`crate::Handler::closed`].
    pub fn abort(&mut self) {
        self.close();
        self.conn.closing = Closing::Abort;
        self.conn.send_queue.clear();
    }

    /// Whether `close` or `abort` was called.
    pub fn is_closing(&self) -> bool {
        self.conn.closing != Closing::No
    }

    /// Moves the connection on towards closed: once sends are done (or aborted), cancels what
    /// is left, and once nothing is in flight, closes the descriptor.
    pub(crate) fn progress_close(&mut self) {
        let c = &mut *self.conn;
        if c.closing == Closing::No || c.close_started {
            return;
        }
        if c.closing == Closing::Graceful && (c.send_op.is_some() || !c.send_queue.is_empty()) {
            return;
        }
        if !c.cancelled {
            c.cancelled = true;
            let fd = c.fd;
            if c.recv_op.is_some() || c.send_op.is_some() || c.connect_op.is_some() {
                self.op(OpData::Cancel, Sub::CancelFd { fd });
            }
        }
        if self.conn.inflight == 0 {
            self.conn.close_started = true;
            let fd = self.conn.fd;
            self.op(OpData::Close, Sub::Close { fd });
        }
    }
}
