//! TransmitFile on io_uring, which has no sendfile opcode: `sendfile(2)` driven by readiness.
//!
//! A transfer is tried at once (speculatively, as Boost.Asio does); when the socket is full it
//! waits for `POLLOUT` through a one-shot poll on the ring, then sends again. Each completion
//! reports the bytes sent in that round (the worker continues short transfers), at most
//! [`crate::sys::sendfile::PER_ROUND`] so that one large file cannot monopolise its worker.
//!
//! A parked transfer is cancelled with its socket's other operations (`CancelFd`): the poll is
//! on the socket, so its `-ECANCELED` ends the round.

use slab::Slab;

use super::Cqe;
use crate::sys::sendfile::{send_round, Round};

/// `user_data` bit of the driver's own polls, which never reach the worker.
pub(crate) const INTERNAL: u64 = 1 << 63;

/// Transfers waiting for their socket to become writable.
#[derive(Debug, Default)]
pub(crate) struct SendFiles {
    waiting: Slab<Transfer>,
}

/// One transfer's round: the worker's operation and what it asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    pub(crate) user_data: u64,
    pub(crate) sock: i32,
    pub(crate) file: i32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// What to do next with a transfer.
#[derive(Debug)]
pub(crate) enum Step {
    /// The round is over: deliver this completion.
    Done(Cqe),
    /// Wait until `sock` is writable; the poll carries `user_data`.
    Poll { user_data: u64, sock: i32 },
}

impl SendFiles {
    /// Sends what the socket takes now, or parks the transfer until it is writable.
    pub(crate) fn attempt(&mut self, t: Transfer) -> Step {
        let result = match send_round(t.sock, t.file, t.offset, t.len) {
            Ok(Round::WouldBlock) => {
                let idx = self.waiting.insert(t);
                return Step::Poll {
                    user_data: INTERNAL | idx as u64,
                    sock: t.sock,
                };
            }
            Ok(round) => round.result(),
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        };
        Step::Done(Cqe {
            user_data: t.user_data,
            result,
            more: false,
            buf: None,
        })
    }

    /// The poll of parked transfer `internal` completed with `result`.
    pub(crate) fn on_poll(&mut self, internal: u64, result: i32) -> Step {
        let t = self.waiting.remove((internal & !INTERNAL) as usize);
        if result < 0 {
            return Step::Done(Cqe {
                user_data: t.user_data,
                result,
                more: false,
                buf: None,
            });
        }
        self.attempt(t)
    }
}
