//! The handler: the application code that runs on every worker.

use crate::completion::Completion;
use crate::io::Io;
use crate::key::CompletionKey;
use crate::worker::{TimerId, WorkerCtx};

/// The application of one worker thread: it creates per-connection state (the completion
/// key's data) and is handed every completion of its worker's connections, the messages
/// posted to its worker and its worker timers.
///
/// A port makes one handler per worker, on that worker's thread, so a handler and its
/// connections need not be `Send`; only messages cross threads.
pub trait Handler: 'static {
    /// Per-connection state.
    type Conn: 'static;
    /// What [`crate::PortHandle::post`] carries to a worker (`()` if nothing is posted).
    type Msg: Send + 'static;

    /// A listener accepted a connection, or a socket was associated with the worker from
    /// outside ([`crate::PortHandle::associate`]). Start its first operation here (usually
    /// [`Io::recv`]) and return its state. (Connections a handler opens or associates itself
    /// get their state from it directly: [`crate::WorkerIo::connect`].)
    fn accepted(&mut self, io: &mut Io<'_, Self::Conn>) -> Self::Conn;

    /// An operation of the connection completed. `io` also reaches the worker's other
    /// connections ([`Io::to`]), opens new ones and arms worker timers.
    fn completion(
        &mut self,
        conn: &mut Self::Conn,
        io: &mut Io<'_, Self::Conn>,
        completion: Completion,
    );

    /// The worker started; it may open outgoing connections and arm timers.
    fn started(&mut self, worker: &mut WorkerCtx<'_, Self::Conn>) {
        let _ = worker;
    }

    /// A message posted to this worker arrived (IOCP's custom completion packet).
    fn message(&mut self, worker: &mut WorkerCtx<'_, Self::Conn>, msg: Self::Msg) {
        let _ = (worker, msg);
    }

    /// A worker timer armed with [`crate::WorkerIo::set_timer`] or [`Io::set_timer`] fired.
    fn timer(&mut self, worker: &mut WorkerCtx<'_, Self::Conn>, timer: TimerId) {
        let _ = (worker, timer);
    }

    /// The port is shutting down. The default closes gracefully ([`Io::close`]: queued sends
    /// finish first); whatever is still open when the port's shutdown timeout expires is
    /// reset.
    fn shutdown(&mut self, conn: &mut Self::Conn, io: &mut Io<'_, Self::Conn>) {
        let _ = conn;
        io.close();
    }

    /// The connection is closed: its descriptor is closed and none of its operations is left.
    /// `worker` reaches the other connections (to end a relay's other side, tell a room).
    fn closed(
        &mut self,
        worker: &mut WorkerCtx<'_, Self::Conn>,
        conn: Self::Conn,
        key: CompletionKey,
    ) {
        let _ = (worker, conn, key);
    }
}
