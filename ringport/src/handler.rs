//! The handler: the application code that runs on every worker.

use crate::completion::Completion;
use crate::io::Io;
use crate::key::CompletionKey;
use crate::worker::WorkerCtx;

/// The application of one worker thread: it creates per-connection state (the completion
/// key's data) and is handed every completion of its worker's connections.
///
/// A port makes one handler per worker, on that worker's thread, so a handler and its
/// connections need not be `Send`.
pub trait Handler: 'static {
    /// Per-connection state.
    type Conn: 'static;

    /// A listener accepted a connection and associated it with the port. Start its first
    /// operation here (usually [`Io::recv`]) and return its state.
    fn accepted(&mut self, io: &mut Io<'_>) -> Self::Conn;

    /// An operation of the connection completed.
    fn completion(&mut self, conn: &mut Self::Conn, io: &mut Io<'_>, completion: Completion);

    /// The worker started; it may open outgoing connections.
    fn started(&mut self, worker: &mut WorkerCtx<'_, Self::Conn>) {
        let _ = worker;
    }

    /// A custom completion posted with [`crate::Port::post`] arrived.
    fn posted(&mut self, worker: &mut WorkerCtx<'_, Self::Conn>, value: u64) {
        let _ = (worker, value);
    }

    /// The port is shutting down. The default closes gracefully ([`Io::close`]: queued sends
    /// finish first); whatever is still open when the port's shutdown timeout expires is
    /// aborted.
    fn shutdown(&mut self, conn: &mut Self::Conn, io: &mut Io<'_>) {
        let _ = conn;
        io.close();
    }

    /// The connection is closed: its descriptor is closed and none of its operations is left.
    fn closed(&mut self, conn: Self::Conn, key: CompletionKey) {
        let _ = (conn, key);
    }
}
