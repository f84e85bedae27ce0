//! [`PortHandle`]: posting to a port's workers from any thread (IOCP's
//! `PostQueuedCompletionStatus`), associating sockets with them, and shutting them down.

use std::fmt;
use std::sync::Arc;

use crate::sys::OwnedSocket;
use crate::worker::{Packet, Shared};

/// Posts to and shuts down a port from any thread, its workers' included
/// (IOCP's `PostQueuedCompletionStatus`). Cheap to clone.
///
/// Every worker has a bounded queue ([`crate::PortBuilder::message_queue`]): a post to a full
/// queue is refused at once and the message handed back, never blocking the poster and never
/// growing memory without bound; the poster decides (retry later, drop, slow its own clients).
pub struct PortHandle<M> {
    pub(crate) shared: Arc<[Arc<Shared<M>>]>,
}

impl<M> Clone for PortHandle<M> {
    fn clone(&self) -> Self {
        PortHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<M> fmt::Debug for PortHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortHandle")
            .field("workers", &self.shared.len())
            .finish()
    }
}

/// A post refused because the worker's queue is full: the message (or socket) comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the worker's queue is full")
    }
}

impl<T: fmt::Debug> std::error::Error for Full<T> {}

/// A message posted to every worker was refused by some (their queues were full); the others
/// got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The workers whose queues were full.
    pub workers: Vec<usize>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the queues of workers {:?} are full", self.workers)
    }
}

impl std::error::Error for Refused {}

impl<M> PortHandle<M> {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.len()
    }

    /// Posts `msg` to `worker`; its handler's [`crate::Handler::message`] runs on that worker's
    /// thread. Messages from one poster to one worker arrive in the order they were posted.
    ///
    /// # Errors
    /// [`Full`] with the message, when the worker's queue is full.
    ///
    /// # Panics
    /// If `worker` is not a worker of this port.
    pub fn post(&self, worker: usize, msg: M) -> Result<(), Full<M>> {
        self.shared[worker]
            .post(Packet::Msg(msg))
            .map_err(|p| match p {
                Packet::Msg(msg) => Full(msg),
                Packet::Socket(_) => unreachable!("a message was posted"),
            })
    }

    /// Posts a clone of `msg` to every worker.
    ///
    /// # Errors
    /// [`Refused`], naming the workers whose queues were full (the others got the message).
    pub fn post_all(&self, msg: M) -> Result<(), Refused>
    where
        M: Clone,
    {
        let workers: Vec<usize> = (0..self.shared.len())
            .filter(|&w| self.post(w, msg.clone()).is_err())
            .collect();
        if workers.is_empty() {
            Ok(())
        } else {
            Err(Refused { workers })
        }
    }

    /// Associates a connected stream socket (a TCP stream accepted or connected elsewhere, a
    /// Unix-domain stream) with `worker` under a new completion key, IOCP's basic
    /// association step: the worker makes it non-blocking and hands it to its handler's
    /// [`crate::Handler::accepted`], as if its own listener had accepted it. The socket must
    /// have no overlapped operation of its previous owner in flight (on Windows its
    /// completion would come to the worker's port) and must not be associated with another
    /// completion port (its operations then fail).
    ///
    /// # Errors
    /// [`Full`] with the socket, when the worker's queue is full.
    ///
    /// # Panics
    /// If `worker` is not a worker of this port.
    pub fn associate(
        &self,
        worker: usize,
        socket: impl Into<OwnedSocket>,
    ) -> Result<(), Full<OwnedSocket>> {
        self.shared[worker]
            .post(Packet::Socket(socket.into()))
            .map_err(|p| match p {
                Packet::Socket(fd) => Full(fd),
                Packet::Msg(_) => unreachable!("a socket was posted"),
            })
    }

    /// Posts the quit packet to every worker: they stop accepting, ask every connection to
    /// close ([`crate::Handler::shutdown`]), reset what is left after the shutdown timeout,
    /// wait for every operation to complete, close every descriptor and exit.
    pub fn shutdown(&self) {
        self.shared.iter().for_each(|s| s.quit());
    }

    /// Shuts down at once: workers stop accepting and abort every connection (peers see a
    /// reset: a transfer cut short never looks complete), wait for the cancellations and exit.
    /// Also cuts short a graceful shutdown in progress.
    pub fn abort(&self) {
        self.shared.iter().for_each(|s| s.abort());
    }

    /// Whether [`PortHandle::abort`] was called.
    pub fn was_aborted(&self) -> bool {
        self.shared.iter().any(|s| s.abort_requested())
    }
}
