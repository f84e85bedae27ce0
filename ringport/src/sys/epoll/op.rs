//! The operations the epoll backend emulates, and how one attempt at each is made.
//!
//! An [`Op`] is a pending descriptor operation. [`Op::attempt`] makes one non-blocking try and
//! says what happened ([`Step`]); the driver keeps the op queued on its descriptor's read or
//! write side ([`Op::target`]) until a step finishes it, retrying when epoll says the
//! descriptor is ready.
//!
//! **Adding an operation** that waits for readiness: a variant here, its
//! arm in [`Op::new`] (which copies the [`Sub`]), in [`Op::target`] (which side it waits on) and
//! in [`Op::attempt`] (one non-blocking system call, mapped to a [`Step`]). Nothing else in the
//! driver changes.

use std::io;
use std::rc::Rc;

use crate::buf::BufPool;
use crate::sys::sendfile::{send_round, Round};
use crate::sys::{Gather, Sub};

/// Which readiness an operation waits for. Ops on one side of a descriptor run in FIFO order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Readable: accept, receive, poll.
    Read,
    /// Writable: send, send a file, connect.
    Write,
}

/// The most one `send`/`recv` moves, as the kernel caps it (`MAX_RW_COUNT`): results fit an `i32`.
const MAX_RW: usize = 0x7fff_f000;

/// A pending descriptor operation.
#[derive(Debug)]
pub(super) enum Op {
    /// Multishot accept: one completion per new connection.
    Accept { fd: i32 },
    /// Multishot receive into the worker's provided buffers.
    Recv { fd: i32 },
    /// One `send` of `len` bytes at `ptr` (a short send completes as it is).
    Send { fd: i32, ptr: *const u8, len: u32 },
    /// One `sendmsg` of the buffers of a gather (a short send completes as it is).
    SendV { fd: i32, msg: *const libc::msghdr },
    /// `sendfile(2)` of up to `len` bytes of `file` from `offset` (TransmitFile): one round.
    SendFile {
        sock: i32,
        file: i32,
        offset: u64,
        len: u64,
    },
    /// `connect`, then (once it is in progress) `SO_ERROR` when writable.
    Connect {
        fd: i32,
        addr: *const libc::sockaddr,
        len: u32,
        started: bool,
    },
    /// Multishot readability (the worker's wake-up eventfd).
    PollIn { fd: i32 },
}

/// What one attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The operation is over, with this result (`-errno` on failure): the final completion.
    Done(i32),
    /// One completion of a multishot operation, which goes on; try again at once.
    More { result: i32, buf: Option<u16> },
    /// One completion of a multishot operation, and the descriptor is drained: wait for
    /// readiness before trying again.
    MoreThenWait { result: i32, buf: Option<u16> },
    /// One completion of a multishot receive that read less than it could: the socket's queue
    /// was empty, or it stopped at the peer's FIN. The driver waits only when it knows no FIN
    /// edge was missed (see `FdState::trusts_short_reads`), else tries again.
    Short { result: i32, buf: Option<u16> },
    /// It would block: wait for readiness.
    Wait,
}

/// The driver's free list of provided buffers: which pool buffers no one holds.
#[derive(Debug)]
pub(super) struct Bufs {
    pub(super) pool: Rc<BufPool>,
    free: Vec<u16>,
}

impl Bufs {
    /// Every buffer of `pool` starts free.
    pub(super) fn new(pool: Rc<BufPool>) -> Self {
        let free = (0..pool.count()).rev().collect();
        Bufs { pool, free }
    }

    /// Takes back buffers the worker recycles (handlers have dropped them).
    pub(super) fn put_all(&mut self, bids: &[u16]) {
        self.free.extend_from_slice(bids);
    }

    fn take(&mut self) -> Option<u16> {
        self.free.pop()
    }

    fn put(&mut self, bid: u16) {
        self.free.push(bid);
    }
}

impl Op {
    /// The op of a descriptor submission.
    ///
    /// # Panics
    /// For the submissions the driver completes itself (close, timeout, cancel, open).
    pub(super) fn new(sub: Sub) -> Op {
        match sub {
            Sub::AcceptMulti { fd } => Op::Accept { fd },
            Sub::RecvMulti { fd } => Op::Recv { fd },
            Sub::Send { fd, ptr, len } => Op::Send { fd, ptr, len },
            Sub::SendV { fd, gather } => Op::SendV {
                fd,
                msg: Gather::msghdr(gather),
            },
            Sub::Connect { fd, addr, len } => Op::Connect {
                fd,
                addr,
                len,
                started: false,
            },
            Sub::PollIn { fd } => Op::PollIn { fd },
            Sub::SendFile {
                sock,
                file,
                offset,
                len,
            } => Op::SendFile {
                sock,
                file,
                offset,
                len,
            },
            Sub::Close { .. }
            | Sub::Timeout { .. }
            | Sub::Cancel { .. }
            | Sub::CancelFd { .. }
            | Sub::OpenBeneath { .. }
            | Sub::ReadAt { .. }
            | Sub::WriteAt { .. } => unreachable!("completed by the driver, not queued"),
        }
    }

    /// The descriptor and the readiness this op waits on.
    pub(super) fn target(&self) -> (i32, Side) {
        match *self {
            Op::Accept { fd } | Op::Recv { fd } | Op::PollIn { fd } => (fd, Side::Read),
            Op::Send { fd, .. } | Op::SendV { fd, .. } | Op::Connect { fd, .. } => {
                (fd, Side::Write)
            }
            Op::SendFile { sock, .. } => (sock, Side::Write),
        }
    }

    /// Whether a non-negative result is a new descriptor (closed if never handed out).
    pub(super) fn yields_fds(&self) -> bool {
        matches!(self, Op::Accept { .. })
    }

    /// Makes one non-blocking attempt. `woken`: epoll just reported this side ready.
    pub(super) fn attempt(&mut self, bufs: &mut Bufs, woken: bool) -> Step {
        match self {
            Op::Accept { fd } => accept(*fd),
            Op::Recv { fd } => recv(*fd, bufs),
            Op::Send { fd, ptr, len } => send(*fd, *ptr, *len),
            Op::SendV { fd, msg } => send_msg(*fd, *msg),
            Op::SendFile {
                sock,
                file,
                offset,
                len,
            } => send_file(*sock, *file, *offset, *len),
            Op::Connect {
                fd,
                addr,
                len,
                started,
            } => connect(*fd, *addr, *len, started, woken),
            Op::PollIn { fd } => poll_in(*fd, woken),
        }
    }
}

/// `-errno` of an error.
pub(super) fn neg(e: &io::Error) -> i32 {
    -e.raw_os_error().unwrap_or(libc::EIO)
}

fn accept(fd: i32) -> Step {
    loop {
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: null address pointers ask for no peer address; `fd` is the caller's listener.
        match syscall!(accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            flags
        )) {
            Ok(new) => {
                return Step::More {
                    result: new,
                    buf: None,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            // Interrupted, or a connection reset before we took it: the next one may be fine.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ECONNABORTED)) => {}
            // EMFILE and the like end the multishot accept, as on io_uring; the worker backs off.
            Err(e) => return Step::Done(neg(&e)),
        }
    }
}

fn recv(fd: i32, bufs: &mut Bufs) -> Step {
    let Some(bid) = bufs.take() else {
        return recv_without_buffer(fd);
    };
    let size = (bufs.pool.buf_size() as usize).min(MAX_RW);
    loop {
        let ptr = bufs.pool.addr(bid).cast();
        // SAFETY: buffer `bid` is `size` bytes inside the pool's mapping, free (no RecvBuf
        // holds it), and the Rc in `bufs` keeps the mapping alive.
        match syscall!(recv(fd, ptr, size, libc::MSG_DONTWAIT)) {
            Ok(0) => {
                bufs.put(bid);
                return Step::Done(0);
            }
            // A full buffer may leave more behind: go on.
            Ok(n) if n as usize == size => {
                return Step::More {
                    result: n as i32,
                    buf: Some(bid),
                }
            }
            Ok(n) => {
                return Step::Short {
                    result: n as i32,
                    buf: Some(bid),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                bufs.put(bid);
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Step::Wait,
                    _ => Step::Done(neg(&e)),
                };
            }
        }
    }
}

/// io_uring fails a buffer-select receive with `ENOBUFS` only when data arrives and no buffer
/// is free; peeking one byte tells whether data is there.
fn recv_without_buffer(fd: i32) -> Step {
    let mut byte = 0u8;
    loop {
        let ptr = (&mut byte as *mut u8).cast();
        // SAFETY: peeks at most one byte into a live local.
        match syscall!(recv(fd, ptr, 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)) {
            Ok(0) => return Step::Done(0),
            Ok(_) => return Step::Done(-libc::ENOBUFS),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) => return Step::Done(neg(&e)),
        }
    }
}

fn send(fd: i32, ptr: *const u8, len: u32) -> Step {
    let len = (len as usize).min(MAX_RW);
    loop {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        // SAFETY: `ptr..ptr+len` is the unsent part of the buffer the worker's operation owns
        // until this op's final completion (the `Sub` contract); attempts happen only while
        // the op is pending, inside `push`/`wait`.
        match syscall!(send(fd, ptr.cast(), len, flags)) {
            Ok(n) => return Step::Done(n as i32),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) => return Step::Done(neg(&e)),
        }
    }
}

fn send_msg(fd: i32, msg: *const libc::msghdr) -> Step {
    loop {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        // SAFETY: `msg` and the iovecs and buffers it points to are owned by the worker's
        // operation until this op's final completion (the `Sub` contract); attempts happen only
        // while the op is pending.
        match syscall!(sendmsg(fd, msg, flags)) {
            Ok(n) => return Step::Done(n.min(MAX_RW as isize) as i32),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) => return Step::Done(neg(&e)),
        }
    }
}

/// Sends up to [`crate::sys::sendfile::PER_ROUND`] bytes of the range, as far as the socket takes them.
/// Results as on io_uring: bytes sent, 0 if the file ended first, or `-errno`.
fn send_file(sock: i32, file: i32, offset: u64, len: u64) -> Step {
    match send_round(sock, file, offset, len) {
        Ok(Round::WouldBlock) => Step::Wait,
        Ok(round) => Step::Done(round.result()),
        Err(e) => Step::Done(neg(&e)),
    }
}

fn connect(
    fd: i32,
    addr: *const libc::sockaddr,
    len: u32,
    started: &mut bool,
    woken: bool,
) -> Step {
    if !*started {
        *started = true;
        // SAFETY: `addr` points to `len` bytes of socket address owned by the worker's
        // operation until its final completion; the socket is non-blocking (the port makes it so).
        return match syscall!(connect(fd, addr, len)) {
            Ok(_) => Step::Done(0),
            // In progress (also after EINTR): writable means done, SO_ERROR says how.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {
                Step::Wait
            }
            Err(e) => Step::Done(neg(&e)),
        };
    }
    if !woken {
        return Step::Wait;
    }
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let (level, name) = (libc::SOL_SOCKET, libc::SO_ERROR);
    let ptr = (&mut err as *mut libc::c_int).cast();
    // SAFETY: SO_ERROR writes one c_int into `err`, whose size `len` gives.
    match syscall!(getsockopt(fd, level, name, ptr, &mut len)) {
        Ok(_) => Step::Done(-err),
        Err(e) => Step::Done(neg(&e)),
    }
}

fn poll_in(fd: i32, woken: bool) -> Step {
    const READY: Step = Step::MoreThenWait {
        result: libc::POLLIN as i32,
        buf: None,
    };
    if woken {
        return READY;
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, zero timeout.
        return match syscall!(poll(&mut pfd, 1, 0)) {
            Ok(0) => Step::Wait,
            Ok(_) if pfd.revents & libc::POLLNVAL != 0 => Step::Done(-libc::EBADF),
            Ok(_) => READY,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => Step::Done(neg(&e)),
        };
    }
}
