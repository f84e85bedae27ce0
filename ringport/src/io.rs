//! [`Io`]: what a handler can do with one connection.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::buf::SendBuf;
use crate::conn::{ConnIo, Life};
use crate::key::CompletionKey;
use crate::worker::op::{open_parts, timer_parts, Core, Outgoing};

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

    /// Keeps receiving: every chunk of data arrives as [`crate::Completion::Received`] in
    /// a buffer the worker lends. Does nothing if already receiving or closing.
    ///
    /// The port pauses receiving by itself while the connection is past its limits (buffers
    /// held, bytes unsent; see [`crate::PortBuilder::max_bufs_per_conn`] and
    /// [`crate::PortBuilder::max_unsent`]) and resumes once it is back under them.
    pub fn recv(&mut self) {
        self.conn.want_recv = true;
        self.update_recv();
    }

    /// Stops receiving (backpressure). Data already on its way may still arrive.
    pub fn stop_recv(&mut self) {
        self.conn.want_recv = false;
        self.update_recv();
    }

    /// Whether the handler wants to receive (the port may be pausing it for its limits).
    pub fn is_receiving(&self) -> bool {
        self.conn.want_recv
    }

    /// Sends the whole buffer after everything queued before it;
    /// [`crate::Completion::Sent`] gives it back. Ignored once the connection is closing.
    ///
    /// A send that makes no progress for the port's send timeout aborts the connection
    /// ([`crate::PortBuilder::send_timeout`]).
    pub fn send(&mut self, buf: impl Into<SendBuf>) {
        let buf = buf.into();
        if self.conn.is_open() {
            self.conn.unsent += buf.len();
            self.queue(Outgoing::Buf(buf));
        }
    }

    /// Sends `len` bytes of `file` from `offset` after everything queued before it, without
    /// copying through user space (TransmitFile); [`crate::Completion::FileSent`] gives the
    /// file back. Files over 4 GiB are fine. Ignored once the connection is closing.
    ///
    /// Platform specific: on io_uring and epoll, `sendfile(2)` driven by readiness. Unlike
    /// sends, `sendfile` cannot be told `MSG_NOSIGNAL`: a peer that reset raises `SIGPIPE`,
    /// which Rust programs ignore by default; a host program that does not must ignore it.
    pub fn send_file(&mut self, file: Rc<File>, offset: u64, len: u64) {
        if self.conn.is_open() {
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
        if self.conn.is_open() {
            let (data, sub) = open_parts(dir, path);
            self.op(data, sub);
        }
        Ok(())
    }

    /// Bytes queued or in flight for sending (file ranges do not count: they hold no memory).
    pub fn unsent(&self) -> usize {
        self.conn.unsent
    }

    /// Provided buffers this connection's received data holds: [`crate::RecvBuf`]s not yet
    /// dropped, including those queued for sending.
    pub fn bufs_held(&self) -> u32 {
        self.conn.bufs_held
    }

    /// Provided buffers of this worker's pool that no connection holds.
    pub fn pool_free(&self) -> u32 {
        self.core.pool.free()
    }

    /// Arms the connection's timer; [`crate::Completion::Timeout`] fires after `after`.
    /// Replaces an armed timer.
    pub fn set_timeout(&mut self, after: Duration) {
        self.clear_timeout();
        if self.conn.is_open() {
            let (data, sub) = timer_parts(after);
            self.conn.timeout_op = Some(self.op(data, sub));
        }
    }

    /// Disarms the connection's timer, if armed.
    pub fn clear_timeout(&mut self) {
        if let Some(id) = self.conn.timeout_op.take() {
            self.cancel(id);
        }
    }

    /// Closes gracefully: stops receiving, lets queued sends finish, then closes the socket.
    /// No completion is delivered after this but [`crate::Handler::closed`]. Sends that make no
    /// progress for the send timeout abort the connection meanwhile.
    pub fn close(&mut self) {
        if self.conn.is_open() {
            self.conn.life = Life::Draining;
            self.update_recv();
            self.clear_timeout();
        }
    }

    /// Closes at once with a reset: cancels every operation (queued data is dropped), then
    /// closes the socket so that the peer sees a reset (`SO_LINGER` 0), never a normal end: a
    /// client can tell a cut transfer from a whole one. No completion is delivered after this
    /// but [`crate::Handler::closed`].
    pub fn abort(&mut self) {
        if matches!(self.conn.life, Life::Open | Life::Draining) {
            self.conn.life = Life::Draining;
            self.update_recv();
            self.clear_timeout();
            self.drop_queue();
            self.start_cancelling(true);
        }
    }

    /// Whether `close` or `abort` was called.
    pub fn is_closing(&self) -> bool {
        !self.conn.is_open()
    }
}
