//! Platform backends, chosen at this one selection point.
//!
//! Every backend provides a `Driver` created on its worker thread that:
//! - takes [`Sub`]missions, each tagged with the `user_data` of the operation that owns it;
//! - [`Driver::wait`]s: submits what was queued and waits for at least one completion (one system
//!   call per loop turn), appending [`Cqe`]s to a caller-owned batch;
//! - recycles provided receive buffers handed back by [`crate::buf::BufPool`];
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

/// One operation handed to a backend. Pointers stay valid until the operation's final
/// completion: they point into buffers owned by the operation's entry in the worker's table.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sub {
    /// Multishot accept on a listening socket.
    AcceptMulti { fd: i32 },
    /// Multishot receive into the worker's provided buffers.
    RecvMulti { fd: i32 },
    /// Send `len` bytes from `ptr`.
    Send { fd: i32, ptr: *const u8, len: u32 },
    /// Connect to the address at `addr`.
    Connect {
        fd: i32,
        addr: *const libc::sockaddr,
        len: u32,
    },
    /// Close the descriptor (all its operations have completed).
    Close { fd: i32 },
    /// Complete after `nanos` nanoseconds.
    Timeout { nanos: u64 },
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
    /// Open the NUL-terminated relative `path` read-only beneath directory `dir`
    /// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, `O_NONBLOCK`): the result is
    /// the new descriptor.
    OpenBeneath { dir: i32, path: *const libc::c_char },
}

/// `open_how` flags of [`Sub::OpenBeneath`].
pub(crate) const OPEN_FLAGS: u64 =
    (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
/// `open_how` resolve flags of [`Sub::OpenBeneath`]: never leave `dir`, no magic links.
pub(crate) const OPEN_RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

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
    /// io_uring: send files with `splice` instead of readiness-driven `sendfile`.
    pub(crate) splice: bool,
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
