//! Linux: descriptors, the io_uring and epoll drivers, the eventfd waker, signals and limits.
//!
//! Everything here has a Windows twin in `windows.rs` with the same names and meanings.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;

use super::{epoll, uring, Cqe, DriverConfig, Sub};
use crate::backend::{Backend, BackendKind};
use crate::buf::BufPool;

/// A descriptor as operations name it.
pub(crate) type Raw = RawFd;
/// A socket address as the kernel reads it.
pub(crate) type SockAddrRaw = libc::sockaddr;
/// An owned socket: a descriptor on Linux (`OwnedSocket` on Windows).
pub type OwnedSocket = OwnedFd;
/// A borrowed socket: a descriptor on Linux (`BorrowedSocket` on Windows).
pub type BorrowedSocket<'a> = BorrowedFd<'a>;

/// Hands an owned socket over to the worker's table (closed by a `Close` operation).
pub(crate) fn socket_into_raw(socket: OwnedSocket) -> Raw {
    socket.into_raw_fd()
}

/// What operations name an owned socket by.
pub(crate) fn socket_raw(socket: &OwnedSocket) -> Raw {
    socket.as_raw_fd()
}

/// Hands an open file over to the worker's table (closed by a `Close` operation).
pub(crate) fn file_into_raw(file: File) -> Raw {
    file.into_raw_fd()
}

/// The descriptor of an open file.
pub(crate) fn file_raw(file: &File) -> Raw {
    file.as_raw_fd()
}

/// Borrows a socket of the worker's table.
///
/// # Safety
/// `raw` is open for at least `'a`.
pub(crate) unsafe fn borrow_socket<'a>(raw: Raw) -> BorrowedSocket<'a> {
    // SAFETY: the caller guarantees `raw` stays open for 'a.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

/// Takes ownership of the socket a successful accept completed with.
///
/// # Safety
/// `result` is a new socket that nothing else owns.
pub(crate) unsafe fn socket_from_result(result: i32) -> OwnedSocket {
    // SAFETY: the caller guarantees `result` is a new descriptor nobody owns.
    unsafe { OwnedFd::from_raw_fd(result) }
}

/// Takes ownership of the file a successful open completed with.
///
/// # Safety
/// `result` is a new file that nothing else owns.
pub(crate) unsafe fn file_from_result(result: i32) -> File {
    // SAFETY: the caller guarantees `result` is a new descriptor nobody owns.
    unsafe { File::from_raw_fd(result) }
}

/// The error codes the worker tells apart (results are `-code`).
pub(crate) mod code {
    /// Nothing to do now (a spurious wakeup); try again.
    pub(crate) const AGAIN: i32 = libc::EAGAIN;
    /// The operation was cancelled.
    pub(crate) const CANCELED: i32 = libc::ECANCELED;
    /// A timer expired.
    pub(crate) const TIME: i32 = libc::ETIME;
    /// No provided buffer was free for a receive.
    pub(crate) const NOBUFS: i32 = libc::ENOBUFS;
    /// A generic I/O error, when the system gave none.
    pub(crate) const IO: i32 = libc::EIO;

    /// Whether `code` means a shortage of descriptors or memory (accepting pauses).
    pub(crate) fn is_scarcity(code: i32) -> bool {
        matches!(
            code,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
        )
    }
}

/// Whether each worker listens on a TCP address with its own socket (`SO_REUSEPORT`: the
/// kernel spreads connections over them). Where it cannot, one worker accepts and hands
/// connections to the others.
pub(crate) const LISTENER_PER_WORKER: bool = true;

/// Prepares a listener before its bind: `SO_REUSEADDR` (restarts do not wait for old
/// connections) and `SO_REUSEPORT` (every worker binds its own listener on the address).
pub(crate) fn share_port(socket: &socket2::Socket) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)
}

/// A new non-blocking stream socket, not inherited by child processes.
pub(crate) fn stream_socket(
    domain: socket2::Domain,
    protocol: Option<socket2::Protocol>,
) -> io::Result<socket2::Socket> {
    let ty = socket2::Type::STREAM.nonblocking().cloexec();
    socket2::Socket::new(domain, ty, protocol)
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

/// The backend of one worker.
#[derive(Debug)]
pub(crate) enum Driver {
    /// Linux io_uring.
    Uring(uring::Driver),
    /// Linux epoll: completions emulated from readiness.
    Epoll(epoll::Driver),
}

impl Driver {
    /// Builds the driver of the chosen backend on the calling (worker) thread (`_waker` is
    /// polled with a `PollIn` operation like any descriptor).
    pub(crate) fn new(
        kind: BackendKind,
        cfg: DriverConfig,
        pool: Rc<BufPool>,
        _waker: &Waker,
    ) -> io::Result<Self> {
        match kind {
            BackendKind::Uring => uring::Driver::new(cfg, pool).map(Driver::Uring),
            BackendKind::Epoll => epoll::Driver::new(cfg, pool).map(Driver::Epoll),
            BackendKind::Iocp => Err(io::ErrorKind::Unsupported.into()),
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
        Backend::Iocp => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the iocp backend is Windows only (here: auto, uring or epoll)",
        )),
        Backend::Auto => match uring::probe::check() {
            Ok(()) => Ok((BackendKind::Uring, "io_uring is available".into())),
            Err(why) => {
                tracing::warn!("io_uring unavailable ({why}); using epoll");
                Ok((BackendKind::Epoll, format!("io_uring unavailable: {why}")))
            }
        },
    }
}

/// Wakes a worker from another thread: an eventfd the worker's driver polls.
#[derive(Debug)]
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
        // SAFETY: eventfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker { fd })
    }

    /// What the worker's `PollIn` operation watches.
    pub(crate) fn raw(&self) -> Raw {
        self.fd.as_raw_fd()
    }

    /// Wakes the worker.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd. It can only fail with
        // EAGAIN when the counter is saturated, and then the worker is awake anyway.
        let _ = syscall!(write(self.raw(), (&one as *const u64).cast(), 8));
    }

    /// Resets the wake-up (the worker is awake now).
    pub(crate) fn clear(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (nothing to read) is fine.
        let _ = syscall!(read(self.raw(), (&mut n as *mut u64).cast(), 8));
    }
}

/// Zeroed memory for buffer pools, touched (made resident) only when used.
#[derive(Debug)]
pub(crate) struct Pages {
    ptr: NonNull<u8>,
    len: usize,
}

impl Pages {
    /// Maps `len` (> 0) bytes.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: an anonymous private mapping with no address hint has no preconditions.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).expect("mmap returned null");
        Ok(Pages { ptr, len })
    }

    /// The start of the memory.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; nothing uses it any more (the
        // pool that owns it is dropped after its worker's driver).
        let _ = syscall!(munmap(self.ptr.as_ptr().cast(), self.len));
    }
}

fn rlimit() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// The soft limit on open descriptors.
pub(crate) fn fd_limit() -> io::Result<u64> {
    Ok(rlimit()?.rlim_cur)
}

/// Raises the soft limit on open descriptors to the hard one; the limit in force.
pub(crate) fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = rlimit()?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one rlimit from the valid `lim`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Calls `on_signal` with the signal's name for every SIGINT and SIGTERM, on a thread of its
/// own, for as long as the process lives.
pub(crate) fn on_stop_signals(
    mut on_signal: impl FnMut(&'static str) + Send + 'static,
) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("ringport-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                });
            }
        })?;
    Ok(())
}

/// A folder whose files are opened beneath it: an `O_PATH` descriptor.
#[derive(Debug)]
pub(crate) struct DirHandle(OwnedFd);

impl DirHandle {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(DirHandle(file.into()))
    }

    pub(crate) fn raw(&self) -> Raw {
        self.0.as_raw_fd()
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.as_fd()
    }
}

/// What a failed open beneath a folder means.
pub(crate) fn open_failure(e: &io::Error) -> crate::dir::OpenFailure {
    use crate::dir::OpenFailure;
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => OpenFailure::NotFound,
        Some(libc::EXDEV) => OpenFailure::Outside,
        Some(libc::ENXIO | libc::ENODEV) => OpenFailure::NotRegular,
        Some(libc::ELOOP) => OpenFailure::LinkLoop,
        Some(libc::ENAMETOOLONG) => OpenFailure::NameTooLong,
        Some(libc::EACCES | libc::EPERM) => OpenFailure::PermissionDenied,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => OpenFailure::Busy,
        _ => OpenFailure::Other,
    }
}
