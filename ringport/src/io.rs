//! [`Io`]: what a handler can do with one connection (or file handle) of its worker.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::buf::SendBuf;
use crate::conn::Life;
use crate::dir::Dir;
use crate::key::CompletionKey;
use crate::sys::{borrow_socket, BorrowedSocket};
use crate::worker::op::{open_parts, read_parts, write_parts, Outgoing};
use crate::worker::{TimerId, WorkerIo};

/// One connection, as a handler sees it while handling one of its completions; through it, the
/// rest of the worker too ([`Io::to`], [`Io::worker`]). `C` is the handler's connection state.
///
/// Every method starts operations; their completions come back to
/// [`crate::Handler::completion`] later, on the same worker.
#[derive(Debug)]
pub struct Io<'a, C> {
    pub(crate) w: WorkerIo<'a, C>,
    pub(crate) slot: usize,
}

impl<C> Drop for Io<'_, C> {
    fn drop(&mut self) {
        // Whatever the handler did, the receive and the close follow the rules.
        self.settle();
    }
}

impl<'a, C> Io<'a, C> {
    /// The connection's completion key.
    pub fn key(&self) -> CompletionKey {
        self.c().key
    }

    /// The connection's socket, for options and addresses (`socket2::SockRef::from` it). Do
    /// not read, write or close it.
    pub fn socket(&self) -> BorrowedSocket<'_> {
        // SAFETY: the port owns the descriptor and closes it only after every operation of
        // this connection has completed, which is after this borrow of `self` ends.
        unsafe { borrow_socket(self.c().fd) }
    }

    /// The peer's address (one `getpeername` call).
    ///
    /// # Errors
    /// When the socket is no longer connected, or is not an IP socket.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let addr = socket2::SockRef::from(&self.socket()).peer_addr()?;
        addr.as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "not an IP socket"))
    }

    /// The worker: its other connections, new connections, timers.
    pub fn worker(&mut self) -> &mut WorkerIo<'a, C> {
        &mut self.w
    }

    /// Another connection of this worker, by its key, to start operations on (send, close,
    /// …); `None` if it is gone (closed, its slot perhaps reused by a newer connection, whose
    /// key differs) or belongs to another worker (post to that worker instead).
    pub fn to(&mut self, key: CompletionKey) -> Option<Io<'_, C>> {
        self.w.to(key)
    }

    /// Keeps receiving: every chunk of data arrives as [`crate::Completion::Received`] in
    /// a buffer the worker lends. Does nothing if already receiving or closing.
    ///
    /// The port pauses receiving by itself while the connection is past its limits (buffers
    /// held, bytes unsent; see [`crate::PortBuilder::max_bufs_per_conn`] and
    /// [`crate::PortBuilder::max_unsent`]) and resumes once it is back under them.
    pub fn recv(&mut self) {
        self.cm().want_recv = true;
        self.update_recv();
    }

    /// Stops receiving (backpressure). Data already on its way may still arrive.
    pub fn stop_recv(&mut self) {
        self.cm().want_recv = false;
        self.update_recv();
    }

    /// Whether the handler wants to receive (the port may be pausing it for its limits).
    pub fn is_receiving(&self) -> bool {
        self.c().want_recv
    }

    /// Sends the whole buffer after everything queued before it;
    /// [`crate::Completion::Sent`] gives it back. Ignored once the connection is closing or
    /// its sending side is closed ([`Io::close_send`]). Sends queued before an outgoing
    /// connection is established wait for it.
    ///
    /// A send that makes no progress for the port's send timeout resets the connection
    /// ([`crate::PortBuilder::send_timeout`]).
    pub fn send(&mut self, buf: impl Into<SendBuf>) {
        let buf = buf.into();
        if self.can_send() {
            self.cm().unsent += buf.len();
            self.queue(Outgoing::Buf(buf));
        }
    }

    /// Sends `len` bytes of `file` from `offset` after everything queued before it, without
    /// copying through user space (TransmitFile); [`crate::Completion::FileSent`] gives the
    /// file back. Files over 4 GiB are fine. Ignored once the connection is closing.
    ///
    /// Platform specific: on io_uring and epoll, `sendfile(2)` driven by readiness. Unlike
    /// sends, `sendfile` cannot be told `MSG_NOSIGNAL`: a peer that reset raises `SIGPIPE`,
    /// which Rust programs ignore by default; a host program that does not must ignore it. On
    /// Windows, `TransmitFile` calls of at most 1 MiB.
    pub fn send_file(&mut self, file: Rc<File>, offset: u64, len: u64) {
        if self.can_send() {
            self.queue(Outgoing::File { file, offset, len });
        }
    }

    /// Closes the sending direction once everything queued before is sent: the peer reads
    /// EOF, and can still send (a half-close, `shutdown(SHUT_WR)`). Later sends are ignored.
    pub fn close_send(&mut self) {
        if self.can_send() {
            self.cm().write_closed = true;
            self.queue(Outgoing::HalfClose);
        }
    }

    fn can_send(&self) -> bool {
        self.c().is_open() && !self.c().write_closed
    }

    fn queue(&mut self, out: Outgoing) {
        self.cm().send_queue.push_back(out);
        self.send_next();
    }

    /// Opens `path` read-only beneath directory `dir`, never leaving it: `..`, absolute
    /// paths, symlinks that point outside and `/proc` magic links fail
    /// ([`crate::OpenFailure::of`] says why). FIFOs open without blocking.
    /// [`crate::Completion::Opened`] gives the file.
    ///
    /// Platform specific: io_uring opens on the kernel's side (`openat2`) without blocking
    /// the worker; epoll calls `openat2(2)` on the worker thread; Windows walks the path one
    /// name at a time beneath `dir` on the worker thread (see [`Dir`]).
    ///
    /// # Errors
    /// `path` containing a NUL byte is refused at once (`InvalidInput`).
    pub fn open_beneath(&mut self, dir: &Arc<Dir>, path: &[u8]) -> io::Result<()> {
        let path = CString::new(path)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in path"))?;
        if self.c().is_open() {
            let (data, sub) = open_parts(dir, path);
            self.op(data, sub);
        }
        Ok(())
    }

    /// Reads from this file handle ([`WorkerIo::associate_file`]) at `offset` into the spare
    /// capacity of `buf` (reserve it first); [`crate::Completion::Read`] gives the buffer back
    /// with the bytes appended (none at the end of the file). The operation owns the buffer
    /// until then. On a socket it fails (`ESPIPE`).
    ///
    /// Platform specific: io_uring `READ`; on epoll, a small thread pool per worker (regular
    /// files are never "ready").
    pub fn read_at(&mut self, offset: u64, buf: Vec<u8>) {
        if self.c().is_open() {
            let fd = self.c().fd;
            let (data, sub) = read_parts(fd, offset, buf);
            self.op(data, sub);
        }
    }

    /// Writes all of `buf` to this file handle at `offset` (short writes are continued);
    /// [`crate::Completion::Written`] gives the buffer back. The operation owns the buffer
    /// until then. Writes are not ordered with each other: wait for one before starting an
    /// overlapping one.
    ///
    /// Platform specific: as [`Io::read_at`].
    pub fn write_at(&mut self, offset: u64, buf: impl Into<SendBuf>) {
        if self.c().is_open() {
            let fd = self.c().fd;
            let (data, sub) = write_parts(fd, offset, buf.into(), 0);
            self.op(data, sub);
        }
    }

    /// Bytes queued or in flight for sending (file ranges do not count: they hold no memory).
    pub fn unsent(&self) -> usize {
        self.c().unsent
    }

    /// Provided buffers this connection's received data holds: [`crate::RecvBuf`]s not yet
    /// dropped, including those queued for sending.
    pub fn bufs_held(&self) -> u32 {
        self.c().bufs_held
    }

    /// Provided buffers of this worker's pool that no connection holds.
    pub fn pool_free(&self) -> u32 {
        self.w.core.pool.free()
    }

    /// Arms the connection's timer; [`crate::Completion::Timeout`] fires after `after`.
    /// Replaces an armed timer. (Timers of the worker itself: [`WorkerIo::set_timer`].)
    ///
    /// Connection timers cost no system call: the worker keeps their deadlines and one kernel
    /// timer for the nearest.
    pub fn set_timeout(&mut self, after: Duration) {
        self.clear_timeout();
        if self.c().is_open() {
            let key = self.key();
            let armed = self.w.core.arm_deadline(key, after);
            self.cm().timer = Some(armed);
        }
    }

    /// Disarms the connection's timer, if armed.
    pub fn clear_timeout(&mut self) {
        if self.cm().timer.take().is_some() && self.w.core.forget_deadline() {
            let live = self
                .w
                .ios
                .iter()
                .filter_map(|(_, c)| Some((c.key, c.timer?)));
            self.w.core.rebuild_deadlines(live);
        }
    }

    /// Arms a worker timer (see [`WorkerIo::set_timer`]).
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        self.w.set_timer(after)
    }

    /// Closes gracefully: stops receiving, lets queued sends finish, then closes the socket.
    /// No completion is delivered after this but [`crate::Handler::closed`]. Sends that make no
    /// progress for the send timeout reset the connection meanwhile.
    pub fn close(&mut self) {
        if self.c().is_open() {
            tracing::debug!(key = %self.key(), "close");
            self.cm().life = Life::Draining;
            self.update_recv();
            self.clear_timeout();
        }
    }

    /// Closes at once with a reset: cancels every operation (queued data is dropped), then
    /// closes the socket so that the peer sees a reset (`SO_LINGER` 0), never a normal end: a
    /// client can tell a cut transfer from a whole one. No completion is delivered after this
    /// but [`crate::Handler::closed`].
    pub fn abort(&mut self) {
        if matches!(self.c().life, Life::Open | Life::Draining) {
            tracing::debug!(key = %self.key(), "abort");
            self.cm().life = Life::Draining;
            self.update_recv();
            self.clear_timeout();
            self.drop_queue();
            self.start_cancelling(true);
        }
    }

    /// Whether `close` or `abort` was called.
    pub fn is_closing(&self) -> bool {
        !self.c().is_open()
    }
}
