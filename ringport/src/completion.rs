//! Completions: what a finished operation hands back to its connection's handler.

use std::io;

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
    /// The connection's timer fired.
    Timeout,
    /// An operation failed. For `Recv`, receiving has stopped; for `Send`, the send queue was
    /// dropped.
    Failed {
        /// The operation that failed.
        op: OpKind,
        /// Why.
        error: io::Error,
    },
}
