//! The worker's listeners: multishot accept, back-off after errors such as `EMFILE`, and the
//! association of accepted sockets with the port.

use std::time::{Duration, Instant};

use super::op::{errno, OpData, OpId, Owner};
use super::Packet;
use super::{Phase, Worker};
use crate::handler::Handler;
use crate::sys::{
    code, socket_from_result, socket_raw, Cqe, OwnedSocket, Sub, LISTENER_PER_WORKER,
};

/// How long a listener waits before accepting again after an error such as `EMFILE`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A shortage that comes and goes is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A listening socket of this worker.
#[derive(Debug)]
pub(super) struct Listener {
    fd: Option<OwnedSocket>,
    /// The armed multishot accept, or the back-off timer.
    op: Option<OpId>,
    /// Accepting fails for want of resources: the failures so far.
    failing: Option<u64>,
    /// When a shortage was last logged, and whether the current one was.
    logged_at: Option<Instant>,
    logged: bool,
}

impl Listener {
    pub(super) fn new(fd: OwnedSocket) -> Self {
        Listener {
            fd: Some(fd),
            op: None,
            failing: None,
            logged_at: None,
            logged: false,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.fd.is_some()
    }
}

impl<H: Handler> Worker<H> {
    pub(super) fn arm_accept(&mut self, l: usize) {
        if let Some(fd) = &self.listeners[l].fd {
            let sub = Sub::AcceptMulti { fd: socket_raw(fd) };
            self.listeners[l].op = Some(self.core.start(Owner::Listener(l), OpData::Accept, sub));
        }
    }

    /// Stops accepting: cancels each listener's accept (the listener closes when its final
    /// completion comes) or closes it at once if nothing is armed.
    pub(super) fn stop_accepting(&mut self) {
        for l in 0..self.listeners.len() {
            match self.listeners[l].op {
                Some(id) => self.core.cancel_detached(id),
                None => self.listeners[l].fd = None,
            }
        }
    }

    pub(super) fn listener_completion(&mut self, l: usize, id: OpId, cqe: Cqe) {
        let last = !cqe.more;
        let data = last.then(|| self.core.ops.remove(id).data);
        if last && self.listeners[l].op == Some(id) {
            self.listeners[l].op = None;
        }
        let running = self.phase == Phase::Running;
        match data {
            Some(OpData::Timeout { .. }) if running => self.arm_accept(l),
            None | Some(OpData::Accept) if cqe.result >= 0 => {
                // SAFETY: a successful accept returns a new descriptor that nothing else owns.
                let fd = unsafe { socket_from_result(cqe.result) };
                let listener = &mut self.listeners[l];
                if let Some(failures) = listener.failing.take() {
                    if std::mem::take(&mut listener.logged) {
                        tracing::info!(
                            worker = self.core.worker,
                            failures,
                            "accepting connections again"
                        );
                    }
                }
                // While shutting down, a late connection is closed at once (dropped).
                if running {
                    self.hand_out(fd);
                    if last {
                        self.arm_accept(l);
                    }
                }
            }
            // io_uring gave up after a wakeup found nothing to accept: arm again at once.
            Some(OpData::Accept) if running && cqe.result == -code::AGAIN => self.arm_accept(l),
            Some(OpData::Accept) if running => self.accept_failed(l, cqe.result),
            _ => {}
        }
        if !running && self.listeners[l].op.is_none() {
            self.listeners[l].fd = None;
        }
    }

    /// A connection this worker accepted: its own where every worker has a listener;
    /// otherwise (one listener for the port) handed to the workers in turn, kept here when
    /// the next one's queue is full.
    fn hand_out(&mut self, fd: OwnedSocket) {
        let workers = self.peers.len();
        if LISTENER_PER_WORKER || workers == 1 {
            return self.accepted(fd);
        }
        self.next_peer = (self.next_peer + 1) % workers;
        if self.next_peer == self.core.worker {
            return self.accepted(fd);
        }
        match self.peers[self.next_peer].post(Packet::Socket(fd)) {
            Ok(()) => {}
            Err(Packet::Socket(fd)) => self.accepted(fd),
            Err(Packet::Msg(_)) => unreachable!("a socket was posted"),
        }
    }

    /// Accepting failed: try again after a pause. Running out of descriptors or memory is
    /// said when it starts and when it clears, at most once every [`LOG_EVERY`] (a flood
    /// makes it come and go).
    fn accept_failed(&mut self, l: usize, result: i32) {
        let err = errno(result);
        let scarce = code::is_scarcity(-result);
        let listener = &mut self.listeners[l];
        match (&mut listener.failing, scarce) {
            (Some(n), _) => *n += 1,
            (None, true) => {
                listener.failing = Some(1);
                let due = listener
                    .logged_at
                    .is_none_or(|at| at.elapsed() >= LOG_EVERY);
                if due {
                    listener.logged_at = Some(Instant::now());
                    listener.logged = true;
                    tracing::warn!(
                        worker = self.core.worker,
                        "accept: {err}; retrying every {ACCEPT_BACKOFF:?} until it clears"
                    );
                } else {
                    tracing::debug!(worker = self.core.worker, "accept: {err}");
                }
            }
            (None, false) => tracing::debug!(worker = self.core.worker, "accept: {err}"),
        }
        let id = self.core.timer(Owner::Listener(l), ACCEPT_BACKOFF);
        self.listeners[l].op = Some(id);
    }
}
