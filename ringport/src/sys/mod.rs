//! Platform backends, chosen at this one selection point.
//!
//! Every backend provides a `Driver` created on its worker thread that:
//! - takes [`Sub`]missions, each tagged with the `user_data` of the operation that owns it
//!   (bit 63 of `user_data` is the backend's own: the worker never sets it);
//! - `wait`s: submits what was queued and waits for at least one completion (one system
//!   call per loop turn), appending [`Cqe`]s to a caller-owned batch;
//! - takes back the provided receive buffers the worker `recycle`s;
//! - never frees memory the kernel reads or writes for an operation before that operation's
//!   final completion (see [`Sub`]);
//! - reports which backend it is.
//!
//! Backends: on Linux [`uring`] (io_uring, the fast path) and [`epoll`] (readiness with
//! emulated completions, the fallback), in `linux.rs`; on Windows [`iocp`] (I/O completion
//! ports), in `windows.rs`. The two platform files hold the same names with the same meanings
//! (descriptors or handles, error codes, the waker, signals, limits, confined opens). Results
//! mean the same everywhere: bytes or a new descriptor (≥ 0), 0 for EOF, `-code` for an error,
//! where `code` is the platform's (`errno`, or a Win32/Winsock code) and the ones the worker
//! tells apart are named in `code`. Descriptors given to operations are non-blocking sockets.
//!
//! The rest of the crate never names a platform: it speaks [`Sub`] and [`Cqe`]. Runtime
//! fallback between Linux backends is the `Driver` enum (no trait objects on the hot path).

use std::time::Duration;

/// Turns a libc return code into `io::Result` (negative means `errno`).
#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
pub(crate) use syscall;

#[cfg(target_os = "linux")]
pub(crate) mod epoll;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod sendfile;
mod timers;
#[cfg(target_os = "linux")]
pub(crate) mod uring;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "linux")]
pub use linux::{BorrowedSocket, OwnedSocket};

#[cfg(windows)]
pub(crate) mod iocp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
#[cfg(windows)]
pub use windows::{BorrowedSocket, OwnedSocket};

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!("ringport runs on Linux (io_uring, epoll) and Windows (IOCP)");

/// One operation handed to a backend.
///
/// **Ownership rule**: every pointer in a submission points into memory owned by the
/// operation's entry in the worker's table (a send buffer, a path, a socket address, a
/// [`Timespec`], an `OpenHow`), boxed or heap-allocated so that it does not move, and that
/// entry is freed only by the operation's **final** completion. So whatever the kernel reads or
/// writes stays valid for as long as the kernel may touch it, whenever it copies it (at
/// submission, at a retry from io-wq, or never), on every path: full queues, errors and
/// cancellation included. The only memory a backend owns for an operation is its own
/// bookkeeping (IOCP's OVERLAPPED), freed when the kernel has said it is done with it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sub {
    /// Multishot accept on a listening socket.
    AcceptMulti { fd: Raw },
    /// Multishot receive into the worker's provided buffers.
    RecvMulti { fd: Raw },
    /// Send `len` bytes from `ptr`.
    Send { fd: Raw, ptr: *const u8, len: u32 },
    /// Send the buffers of `gather`, in order, in one call (`sendmsg` with an iovec array).
    SendV { fd: Raw, gather: *const Gather },
    /// Connect to the address at `addr`.
    Connect {
        fd: Raw,
        addr: *const SockAddrRaw,
        len: u32,
    },
    /// Close the descriptor (all its operations have completed); `file` says whether it is a
    /// file rather than a socket (Windows closes them differently).
    Close {
        fd: Raw,
        #[cfg_attr(target_os = "linux", allow(dead_code))]
        file: bool,
    },
    /// Complete with `-ETIME` after the relative time at `ts`.
    Timeout { ts: *const Timespec },
    /// Cancel the operation with this user data.
    Cancel { user_data: u64 },
    /// Cancel every operation on this descriptor.
    CancelFd { fd: Raw },
    /// Multishot readiness for reading (the worker's wake-up eventfd).
    PollIn { fd: Raw },
    /// Send up to `len` bytes of `file` from `offset` to socket `sock` without copying
    /// through user space (TransmitFile). A short result is continued by the worker; 0 means
    /// the file ended early.
    SendFile {
        sock: Raw,
        file: Raw,
        offset: u64,
        len: u64,
    },
    /// Read up to `len` bytes of file `fd` at `offset` into `ptr` (`pread`).
    ReadAt {
        fd: Raw,
        ptr: *mut u8,
        len: u32,
        offset: u64,
    },
    /// Write up to `len` bytes from `ptr` to file `fd` at `offset` (`pwrite`); a short write is
    /// continued by the worker.
    WriteAt {
        fd: Raw,
        ptr: *const u8,
        len: u32,
        offset: u64,
    },
    /// Open the NUL-terminated relative `path` beneath directory `dir` as `how` says
    /// ([`OpenHow::beneath`]: read-only, `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`,
    /// `O_NONBLOCK`): the result is the new descriptor.
    OpenBeneath {
        dir: Raw,
        path: *const std::ffi::c_char,
        #[cfg_attr(windows, allow(dead_code))]
        how: *const OpenHow,
    },
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

/// A socket or file handed over to a worker's table: closed by its `Close` operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoHandle {
    /// What operations name it by.
    pub(crate) raw: Raw,
    /// A file rather than a socket.
    pub(crate) file: bool,
}

impl IoHandle {
    /// Takes over a socket.
    pub(crate) fn socket(socket: OwnedSocket) -> Self {
        IoHandle {
            raw: socket_into_raw(socket),
            file: false,
        }
    }

    /// Takes over an open file.
    pub(crate) fn file(file: std::fs::File) -> Self {
        IoHandle {
            raw: file_into_raw(file),
            file: true,
        }
    }
}
