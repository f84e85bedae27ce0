//! One round of `sendfile(2)` on a non-blocking socket: the TransmitFile step both Linux
//! backends share (io_uring drives it from a `POLLOUT` poll, epoll from readiness).

use std::io;

/// Bytes sent at most per round, so that one large file cannot monopolise its worker.
pub(crate) const PER_ROUND: u64 = 4 << 20;
/// Bytes per `sendfile` call (the kernel's own limit is just under 2 GiB).
const PER_CALL: u64 = 1 << 30;

/// How far one round got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// This many bytes went out (0 only when 0 were asked for).
    Sent(u64),
    /// The socket is full and nothing went out.
    WouldBlock,
    /// The file ended before anything went out.
    FileEnded,
}

impl Round {
    /// The round as a completion result: bytes sent, 0 for an early end of file.
    pub(crate) fn result(self) -> i32 {
        match self {
            Round::Sent(n) => n as i32,
            Round::FileEnded => 0,
            Round::WouldBlock => -libc::EAGAIN,
        }
    }
}

/// Sends up to [`PER_ROUND`] bytes of `file` from `offset` (of `len` wanted) to `sock`,
/// stopping early when the socket is full. An error after some bytes went out is left for the
/// next round to report.
pub(crate) fn send_round(sock: i32, file: i32, offset: u64, len: u64) -> io::Result<Round> {
    let want = len.min(PER_ROUND);
    let mut off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut sent = 0;
    while sent < want {
        let chunk = (want - sent).min(PER_CALL) as usize;
        // SAFETY: `off` is a live local the kernel advances; both descriptors belong to the
        // operation, which keeps them open until its final completion.
        match syscall!(sendfile(sock, file, &mut off, chunk)) {
            Ok(0) => break,
            Ok(n) => sent += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && sent == 0 => {
                return Ok(Round::WouldBlock)
            }
            Err(_) if sent > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(if sent > 0 || want == 0 {
        Round::Sent(sent)
    } else {
        Round::FileEnded
    })
}
