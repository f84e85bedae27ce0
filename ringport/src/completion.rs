//! Completions: what a finished operation hands back to its connection's handler.

use std::fs::File;
use std::io;
use std::rc::Rc;

use crate::buf::{RecvBuf, SendBuf};

/// Which kind of operation a completion or error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpKind {
    /// Receive.
    Recv,
    /// Send.
    Send,
    /// Connect.
    Connect,
    /// Send a file (TransmitFile).
    SendFile,
    /// Open a file.
    Open,
    /// Read from a file handle.
    Read,
    /// Write to a file handle.
    Write,
}

/// A completion delivered to a connection's handler: the articles' `switch` over the I/O type,
/// made type-safe.
///
/// Errors mean the same on every backend: a reset peer is
/// [`io::ErrorKind::ConnectionReset`]; cancellations asked for by the handler (`stop_recv`,
/// `clear_timeout`, `close`) are not delivered at all.
#[derive(Debug)]
#[non_exhaustive]
pub enum Completion {
    /// An outgoing connection is established.
    Connected,
    /// Bytes arrived (never empty). Receiving goes on until `stop_recv`, EOF or an error.
    Received(RecvBuf),
    /// The peer closed its sending side: the zero-byte receive of IOCP. Receiving has stopped.
    Eof,
    /// A whole buffer was sent (short sends are continued in order); here it is back.
    Sent(SendBuf),
    /// A whole file range was sent (TransmitFile); here is the file back.
    FileSent {
        /// The file.
        file: Rc<File>,
        /// Bytes sent (the whole range asked for).
        bytes: u64,
    },
    /// [`crate::Io::open_beneath`] finished: the file opened read-only, or why not.
    Opened(io::Result<File>),
    /// The connection's timer fired.
    Timeout,
    /// [`crate::Io::read_at`] finished: the buffer back, the bytes read appended (none at the
    /// end of the file).
    Read(Vec<u8>),
    /// [`crate::Io::write_at`] wrote the whole buffer; here it is back.
    Written(SendBuf),
    /// An operation failed. For `Recv`, receiving has stopped; for `Send` and `SendFile`,
    /// the send queue was dropped. A file that ended before its range was sent fails
    /// `SendFile` with [`io::ErrorKind::UnexpectedEof`].
    Failed {
        /// The operation that failed.
        op: OpKind,
        /// Why.
        error: io::Error,
    },
}
