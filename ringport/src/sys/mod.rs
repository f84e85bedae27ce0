//! Platform backends, chosen at this one selection point.
//!
//! Every backend provides a `Driver` created on its worker thread that:
//! - takes [`Sub`]missions, each tagged with the `user_data` of the operation that owns it
//!   (bit 63 of `user_data` is the backend's own: the worker never sets it);
//! - [`Driver::wait`]s: submits what was queued and waits for at least one completion (one system
//!   call per loop turn), appending [`Cqe`]s to a caller-owned batch;
//! - takes back the provided receive buffers the worker [`Driver::recycle`]s;
//! - never owns memory the kernel reads or writes for an operation (see [`Sub`]);
//! - reports which backend it is.
//!
//! Backends: [`uring`] (io_uring, the fast path) and [`epoll`] (readiness with emulated
//! completions, the fallback). Results mean the same on both (`-errno`, 0 for EOF, `-ECANCELED`,
//! `-ETIME`). Descriptors given to operations are non-blocking sockets (epoll's `connect` and
//! `accept` rely on it).
//!
//! The rest of the crate never names a platform: it speaks [`Sub`] and [`Cqe`]. Runtime fallback
//! between backends is the [`Driver`] enum (no trait objects on the hot path).

use std::io;
use std::rc::Rc;
use std::time::Duration;

use crate::backend::{Backend, BackendKind};
use crate::buf::BufPool;

/// Turns a libc return code into `io::Result` (negative means `errno`).
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        // SAFETY: the caller passes arguments valid for this libc call; see each call site.
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg, )*) };
        if res < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

pub(crate) mod epoll;
mod sendfile;
pub(crate) mod uring;

/// One operation handed to a backend.
///
/// **Ownership rule**: every pointer in a submission points into memory owned by the
/// operation's entry in the worker's table (a send buffer, a path, a socket address, a
/// [`Timespec`], an [`OpenHow`]), boxed or heap-allocated so that it does not move, and that
/// entry is freed only by the operation's **final** completion. So whatever the kernel reads or
/// writes stays valid for as long as the kernel may touch it, whenever it copies it (at
/// submission, at a retry from io-wq, or never), on every path: full queues, errors and
/// cancellation included. Backends never own such memory themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sub {
    /// Multishot accept on a listening socket.
    AcceptMulti { fd: i32 },
    /// Multishot receive into the worker's provided buffers.
    RecvMulti { fd: i32 },
    /// Send `len` bytes from `ptr`.
    Send { fd: i32, ptr: *const u8, len: u32 },
    /// Send the buffers of `gather`, in order, in one call (`sendmsg` with an iovec array).
    SendV { fd: i32, gather: *const Gather },
    /// Connect to the address at `addr`.
    Connect {
        fd: i32,
        addr: *const libc::sockaddr,
        len: u32,
    },
    /// Close the descriptor (all its operations have completed).
    Close { fd: i32 },
    /// Complete with `-ETIME` after the relative time at `ts`.
    Timeout { ts: *const Timespec },
    /// Cancel the operation with this user data.
    Cancel { user_data: u64 },
    /// Cancel every operation on this descriptor.
    CancelFd { fd: i32 },
    /// Multishot readiness for reading (the worker's wake-up eventfd).
    PollIn { fd: i32 },
    /// Send up to `len` bytes of `file` from `offset` to socket `sock` without copying
    /// through user space (TransmitFile). A short result is continued by the worker; 0 means
    /// the file ended early.
    SendFile {
        sock: i32,
        file: i32,
        offset: u64,
        len: u64,
    },
    /// Read up to `len` bytes of file `fd` at `offset` into `ptr` (`pread`).
    ReadAt {
        fd: i32,
        ptr: *mut u8,
        len: u32,
        offset: u64,
    },
    /// Write up to `len` bytes from `ptr` to file `fd` at `offset` (`pwrite`); a short write is
    /// continued by the worker.
    WriteAt {
        fd: i32,
        ptr: *const u8,
        len: u32,
        offset: u64,
    },
    /// Open the NUL-terminated relative `path` beneath directory `dir` as `how` says
    /// ([`OpenHow::beneath`]: read-only, `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`,
    /// `O_NONBLOCK`): the result is the new descriptor.
    OpenBeneath {
        dir: i32,
        path: *const libc::c_char,
        how: *const OpenHow,
    },
}

/// Several buffers to send in one call, as the kernel reads them: an iovec array and the
/// `msghdr` that points to it. Owned (boxed) by its operation. The header comes first, so a
/// pointer to a `Gather` is a pointer to its `msghdr`.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Gather {
    msg: libc::msghdr,
    /// What `msg` points to (held, not read here).
    _iov: Vec<libc::iovec>,
}

impl Gather {
    /// The kernel's view of `slices` (which must outlive it: the operation owns both).
    pub(crate) fn new<'a>(slices: impl Iterator<Item = &'a [u8]>) -> Box<Self> {
        let iov: Vec<libc::iovec> = slices
            .map(|s| libc::iovec {
                iov_base: s.as_ptr().cast_mut().cast(),
                iov_len: s.len(),
            })
            .collect();
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len() as _;
        // The Vec's heap array does not move when the Gather does.
        Box::new(Gather { msg, _iov: iov })
    }

    /// The header to give `sendmsg`, of the gather at `gather`.
    pub(crate) fn msghdr(gather: *const Gather) -> *const libc::msghdr {
        // `msg` is the first field of this `repr(C)` struct.
        gather.cast()
    }
}

/// A relative time as the kernel reads it (`struct __kernel_timespec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Timespec {
    sec: i64,
    nsec: i64,
}

impl Timespec {
    /// `after` as a timespec; times past the year 292 billion are cut to the longest one.
    pub(crate) fn new(after: Duration) -> Self {
        Timespec {
            sec: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            nsec: i64::from(after.subsec_nanos()),
        }
    }

    /// The time as a duration.
    pub(crate) fn duration(&self) -> Duration {
        Duration::new(self.sec as u64, self.nsec as u32)
    }
}

/// How to open a file, as the kernel reads it (`struct open_how`, version 0, 24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct OpenHow {
    pub(crate) flags: u64,
    pub(crate) mode: u64,
    pub(crate) resolve: u64,
}

impl OpenHow {
    /// Read-only, non-blocking (a FIFO never blocks), never leaving the directory, no magic links.
    pub(crate) const fn beneath() -> Self {
        OpenHow {
            flags: (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY) as u64,
            mode: 0,
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
        }
    }
}

/// One completion from a backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cqe {
    /// The owning operation's user data.
    pub(crate) user_data: u64,
    /// Bytes transferred or new descriptor (≥ 0), or `-errno`.
    pub(crate) result: i32,
    /// More completions will follow for this (multishot) operation.
    pub(crate) more: bool,
    /// The provided buffer the data landed in, if any.
    pub(crate) buf: Option<u16>,
}

/// Sizes a worker's driver is built with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DriverConfig {
    /// Submission queue entries.
    pub(crate) entries: u32,
}

/// The backend of one worker.
#[derive(Debug)]
pub(crate) enum Driver {
    /// Linux io_uring.
    Uring(uring::Driver),
    /// Linux epoll: completions emulated from readiness.
    Epoll(epoll::Driver),
}

impl Driver {
    /// Builds the driver of the chosen backend on the calling (worker) thread.
    pub(crate) fn new(kind: BackendKind, cfg: DriverConfig, pool: Rc<BufPool>) -> io::Result<Self> {
        match kind {
            BackendKind::Uring => uring::Driver::new(cfg, pool).map(Driver::Uring),
            BackendKind::Epoll => epoll::Driver::new(cfg, pool).map(Driver::Epoll),
        }
    }

    /// Queues one operation.
    #[inline]
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.push(sub, user_data),
            Driver::Epoll(d) => d.push(sub, user_data),
        }
    }

    /// Gives provided buffers back to the kernel (visible to it from the next [`Driver::wait`]).
    #[inline]
    pub(crate) fn recycle(&mut self, bids: &[u16]) {
        match self {
            Driver::Uring(d) => d.recycle(bids),
            Driver::Epoll(d) => d.recycle(bids),
        }
    }

    /// Submits what is queued and waits for at least one completion (none if `wait` is
    /// false), appending every available completion to `out`.
    #[inline]
    pub(crate) fn wait(&mut self, out: &mut Vec<Cqe>, wait: bool) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.wait(out, wait),
            Driver::Epoll(d) => d.wait(out, wait),
        }
    }
}

/// Decides which backend a port gets.
///
/// `Auto` takes io_uring when it can be set up with every operation ringport needs, else epoll
/// and logs one warning saying why; the returned text says why too.
pub(crate) fn select(requested: Backend) -> io::Result<(BackendKind, String)> {
    match requested {
        Backend::Uring => match uring::probe::check() {
            Ok(()) => Ok((BackendKind::Uring, "requested".into())),
            Err(why) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring was requested but is unavailable: {why}"),
            )),
        },
        Backend::Epoll => Ok((BackendKind::Epoll, "requested".into())),
        Backend::Auto => match uring::probe::check() {
            Ok(()) => Ok((BackendKind::Uring, "io_uring is available".into())),
            Err(why) => {
                tracing::warn!("io_uring unavailable ({why}); using epoll");
                Ok((BackendKind::Epoll, format!("io_uring unavailable: {why}")))
            }
        },
    }
}
