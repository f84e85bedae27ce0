//! TransmitFile on io_uring, which has no sendfile opcode: `sendfile(2)` driven by readiness.
//!
//! A transfer is tried at once (speculatively, as Boost.Asio does); when the socket is full it
//! waits for `POLLOUT` through a one-shot poll on the ring, then sends again. Each completion
//! reports the bytes sent in that round (the worker continues short transfers), at most
//! [`PER_ROUND`] so that one large file cannot monopolise its worker.

use std::io;

use slab::Slab;

use super::Cqe;

/// `user_data` bit of the driver's own polls, which never reach the worker.
pub(crate) const INTERNAL: u64 = 1 << 63;
/// Bytes sent at most per completion.
const PER_ROUND: u64 = 4 << 20;
/// Bytes per `sendfile` call (the kernel's own limit is just under 2 GiB).
const PER_CALL: u64 = 1 << 30;

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
        let result = match send_some(&t) {
            Ok(Round::WouldBlock) => {
                let idx = self.waiting.insert(t);
                return Step::Poll {
                    user_data: INTERNAL | idx as u64,
                    sock: t.sock,
                };
            }
            Ok(Round::Sent(n)) => n as i32,
            Ok(Round::FileEnded) => 0,
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

    /// The internal poll of the transfer owned by operation `user_data`, if it is parked.
    pub(crate) fn parked(&self, user_data: u64) -> Option<u64> {
        self.waiting
            .iter()
            .find(|(_, t)| t.user_data == user_data)
            .map(|(idx, _)| INTERNAL | idx as u64)
    }
}

/// How far one round got.
enum Round {
    /// This many bytes went out (> 0).
    Sent(u64),
    /// The socket is full and nothing went out.
    WouldBlock,
    /// The file ended before anything went out.
    FileEnded,
}

/// Sends up to [`PER_ROUND`] bytes, stopping early when the socket is full.
fn send_some(t: &Transfer) -> io::Result<Round> {
    let want = t.len.min(PER_ROUND);
    let mut off = t.offset as libc::off_t;
    let mut sent = 0;
    while sent < want {
        let chunk = (want - sent).min(PER_CALL) as usize;
        match syscall!(sendfile(t.sock, t.file, &mut off, chunk)) {
            Ok(0) => break,
            Ok(n) => sent += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && sent == 0 => {
                return Ok(Round::WouldBlock)
            }
            // Report what went out; the error (if it persists) comes with the next round.
            Err(_) if sent > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(if sent > 0 {
        Round::Sent(sent)
    } else if want == 0 {
        Round::Sent(0)
    } else {
        Round::FileEnded
    })
}
