//! Windows: sockets and handles, the IOCP driver, the completion-port waker, console control
//! events and limits. The twin of `linux.rs`: the same names with the same meanings.
//!
//! Handles fit in an `i32` completion result: Windows keeps only the low 32 bits of a kernel
//! handle significant (so that 32- and 64-bit processes can share them), and handle values
//! are small positive numbers; a socket or file handle that does not fit is closed and its
//! operation fails (`ERROR_TOO_MANY_OPEN_FILES`) rather than being truncated.

use std::fs::File;
use std::io;
use std::os::windows::io::{
    AsRawHandle, AsRawSocket, BorrowedSocket as StdBorrowedSocket, FromRawHandle, FromRawSocket,
    IntoRawHandle, IntoRawSocket, OwnedSocket as StdOwnedSocket, RawHandle, RawSocket,
};
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use windows_sys::Win32::Foundation as found;
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::Console as con;
use windows_sys::Win32::System::Memory as mem;

use super::iocp::{self, CompletionPort};
use super::{Cqe, DriverConfig, Sub};
use crate::backend::{Backend, BackendKind};
use crate::buf::BufPool;

/// A socket or handle as operations name it.
pub(crate) type Raw = usize;
/// A socket address as Winsock reads it.
pub(crate) type SockAddrRaw = ws::SOCKADDR;
/// An owned socket (`OwnedFd` on Linux).
pub type OwnedSocket = StdOwnedSocket;
/// A borrowed socket (`BorrowedFd` on Linux).
pub type BorrowedSocket<'a> = StdBorrowedSocket<'a>;

/// Hands an owned socket over to the worker's table (closed by a `Close` operation).
pub(crate) fn socket_into_raw(socket: OwnedSocket) -> Raw {
    socket.into_raw_socket() as Raw
}

/// What operations name an owned socket by.
pub(crate) fn socket_raw(socket: &OwnedSocket) -> Raw {
    socket.as_raw_socket() as Raw
}

/// Hands an open file over to the worker's table (closed by a `Close` operation).
pub(crate) fn file_into_raw(file: File) -> Raw {
    file.into_raw_handle() as Raw
}

/// The handle of an open file.
pub(crate) fn file_raw(file: &File) -> Raw {
    file.as_raw_handle() as Raw
}

/// Borrows a socket of the worker's table.
///
/// # Safety
/// `raw` is open for at least `'a`.
pub(crate) unsafe fn borrow_socket<'a>(raw: Raw) -> BorrowedSocket<'a> {
    // SAFETY: the caller guarantees `raw` stays open for 'a (and it is not INVALID_SOCKET:
    // the table holds only open sockets and files).
    unsafe { StdBorrowedSocket::borrow_raw(raw as RawSocket) }
}

/// Takes ownership of the socket a successful accept completed with.
///
/// # Safety
/// `result` is a new socket that nothing else owns.
pub(crate) unsafe fn socket_from_result(result: i32) -> OwnedSocket {
    // SAFETY: the caller guarantees `result` (≥ 0) is a new socket nobody owns.
    unsafe { StdOwnedSocket::from_raw_socket(result as u32 as RawSocket) }
}

/// Takes ownership of the file a successful open completed with.
///
/// # Safety
/// `result` is a new file handle that nothing else owns.
pub(crate) unsafe fn file_from_result(result: i32) -> File {
    // SAFETY: the caller guarantees `result` (≥ 0) is a new handle nobody owns.
    unsafe { File::from_raw_handle(result as u32 as usize as RawHandle) }
}

/// A handle as a completion result, if it fits (see the module's documentation).
pub(crate) fn handle_result(raw: Raw) -> Option<i32> {
    i32::try_from(raw).ok()
}

/// The error codes the worker tells apart (results are `-code`).
pub(crate) mod code {
    use windows_sys::Win32::Foundation as found;
    use windows_sys::Win32::Networking::WinSock as ws;

    /// Nothing to do now; try again.
    pub(crate) const AGAIN: i32 = ws::WSAEWOULDBLOCK;
    /// The operation was cancelled.
    pub(crate) const CANCELED: i32 = found::ERROR_OPERATION_ABORTED as i32;
    /// A timer expired.
    pub(crate) const TIME: i32 = found::WAIT_TIMEOUT as i32;
    /// No provided buffer was free for a receive.
    pub(crate) const NOBUFS: i32 = ws::WSAENOBUFS;
    /// A generic I/O error, when the system gave none.
    pub(crate) const IO: i32 = found::ERROR_IO_DEVICE as i32;
    /// Nothing to cancel.
    pub(crate) const NOT_FOUND: i32 = found::ERROR_NOT_FOUND as i32;
    /// A name that leaves the served folder (Linux: `EXDEV`, which means the same: "not on
    /// this device").
    pub(crate) const OUTSIDE: i32 = found::ERROR_NOT_SAME_DEVICE as i32;
    /// Not a regular file.
    pub(crate) const NOT_REGULAR: i32 = found::ERROR_BAD_FILE_TYPE as i32;
    /// Out of handles.
    pub(crate) const TOO_MANY: i32 = found::ERROR_TOO_MANY_OPEN_FILES as i32;

    /// Whether `code` means a shortage of handles or memory (accepting pauses).
    pub(crate) fn is_scarcity(code: i32) -> bool {
        code == ws::WSAEMFILE
            || code == ws::WSAENOBUFS
            || code == TOO_MANY
            || code == found::ERROR_NOT_ENOUGH_MEMORY as i32
            || code == found::ERROR_NO_SYSTEM_RESOURCES as i32
    }
}

/// A socket waits on one completion port only, so one worker listens and hands the
/// connections to the others (Windows has no `SO_REUSEPORT` that spreads them).
pub(crate) const LISTENER_PER_WORKER: bool = false;

/// Prepares a listener before its bind: nothing on Windows (`SO_REUSEADDR` there would let
/// another program take the port over).
pub(crate) fn share_port(_socket: &socket2::Socket) -> io::Result<()> {
    Ok(())
}

/// A new non-blocking, overlapped stream socket, not inherited by child processes.
pub(crate) fn stream_socket(
    domain: socket2::Domain,
    protocol: Option<socket2::Protocol>,
) -> io::Result<socket2::Socket> {
    // socket2 creates sockets overlapped and not inheritable on Windows.
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, protocol)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Several buffers to send in one call, as Winsock reads them: a WSABUF list. Owned (boxed)
/// by its operation, with the buffers it points to.
pub(crate) struct Gather {
    bufs: Vec<ws::WSABUF>,
}

impl std::fmt::Debug for Gather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather")
            .field("bufs", &self.bufs.len())
            .finish()
    }
}

impl Gather {
    /// Winsock's view of `slices` (which must outlive it: the operation owns both), cut
    /// where the total would pass [`iocp::SEND_CHUNK`] (the worker sends the rest next).
    pub(crate) fn new<'a>(slices: impl Iterator<Item = &'a [u8]>) -> Box<Self> {
        let mut total = 0usize;
        let bufs = slices
            .map_while(|s| {
                let len = s.len().min(iocp::SEND_CHUNK - total);
                total += len;
                (len > 0 || s.is_empty()).then(|| ws::WSABUF {
                    len: len as u32,
                    buf: s.as_ptr().cast_mut(),
                })
            })
            .collect();
        Box::new(Gather { bufs })
    }

    /// The WSABUF list (`WSASend` copies it; the data stays with the operation).
    pub(crate) fn bufs(&self) -> &[ws::WSABUF] {
        &self.bufs
    }
}

/// How to open a file beneath a folder: fixed on Windows (read-only, confined; see
/// `iocp/open.rs`), so nothing for the system to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenHow;

impl OpenHow {
    /// Read-only, never leaving the folder.
    pub(crate) const fn beneath() -> Self {
        OpenHow
    }
}

/// The backend of one worker.
#[derive(Debug)]
pub(crate) struct Driver(iocp::Driver);

impl Driver {
    /// Builds the driver on the calling (worker) thread, on the completion port of `waker`.
    pub(crate) fn new(
        kind: BackendKind,
        cfg: DriverConfig,
        pool: Rc<BufPool>,
        waker: &Waker,
    ) -> io::Result<Self> {
        match kind {
            BackendKind::Iocp => iocp::Driver::new(cfg, pool, waker.port.clone()).map(Driver),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Queues one operation.
    #[inline]
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        self.0.push(sub, user_data)
    }

    /// Gives provided buffers back (free for the next receive).
    #[inline]
    pub(crate) fn recycle(&mut self, bids: &[u16]) {
        self.0.recycle(bids)
    }

    /// Waits for at least one completion (none if `wait` is false), appending every
    /// available completion to `out`.
    #[inline]
    pub(crate) fn wait(&mut self, out: &mut Vec<Cqe>, wait: bool) -> io::Result<()> {
        self.0.wait(out, wait)
    }
}

/// Decides which backend a port gets: IOCP, the only one here.
pub(crate) fn select(requested: Backend) -> io::Result<(BackendKind, String)> {
    match requested {
        Backend::Auto => Ok((BackendKind::Iocp, "the Windows backend".into())),
        Backend::Iocp => Ok((BackendKind::Iocp, "requested".into())),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the {other} backend is Linux only (here: auto or iocp)"),
        )),
    }
}

/// Wakes a worker from another thread: a packet posted to its completion port.
#[derive(Debug)]
pub(crate) struct Waker {
    port: Arc<CompletionPort>,
}

impl Waker {
    /// Creates the worker's completion port.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Waker {
            port: Arc::new(CompletionPort::new()?),
        })
    }

    /// What the worker's `PollIn` operation watches: the port itself.
    pub(crate) fn raw(&self) -> Raw {
        self.port.raw()
    }

    /// Wakes the worker (PostQueuedCompletionStatus).
    pub(crate) fn wake(&self) {
        self.port.post_wake();
    }

    /// Nothing to reset: every post is one packet, taken by the driver.
    pub(crate) fn clear(&self) {}
}

/// Zeroed memory for buffer pools, committed page by page on first touch.
#[derive(Debug)]
pub(crate) struct Pages {
    ptr: NonNull<u8>,
}

impl Pages {
    /// Reserves and commits `len` (> 0) bytes.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh allocation with no address hint has no preconditions.
        let ptr = unsafe {
            mem::VirtualAlloc(
                std::ptr::null(),
                len,
                mem::MEM_RESERVE | mem::MEM_COMMIT,
                mem::PAGE_READWRITE,
            )
        };
        let ptr = NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(Pages { ptr })
    }

    /// The start of the memory.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: releases exactly the allocation made in `new`; nothing uses it any more
        // (the pool that owns it is dropped after its worker's driver).
        unsafe { mem::VirtualFree(self.ptr.as_ptr().cast(), 0, mem::MEM_RELEASE) };
    }
}

/// Windows has no descriptor limit to read: a process may hold about 2^24 handles.
const HANDLE_LIMIT: u64 = 1 << 24;

/// The limit on open handles.
pub(crate) fn fd_limit() -> io::Result<u64> {
    Ok(HANDLE_LIMIT)
}

/// Nothing to raise on Windows: the limit in force.
pub(crate) fn raise_fd_limit() -> io::Result<u64> {
    Ok(HANDLE_LIMIT)
}

/// Where the console control handler sends the events it gets.
static CONTROL: OnceLock<Mutex<Option<mpsc::Sender<&'static str>>>> = OnceLock::new();

/// The console control handler (the articles' `SetConsoleCtrlHandler`): Ctrl+C, Ctrl+Break
/// and closing the console are handed to the signal thread; the process does not end here.
unsafe extern "system" fn on_control(kind: u32) -> windows_sys::core::BOOL {
    let name = match kind {
        con::CTRL_C_EVENT => "Ctrl+C",
        con::CTRL_BREAK_EVENT => "Ctrl+Break",
        con::CTRL_CLOSE_EVENT => "console close",
        _ => return found::FALSE,
    };
    let sent = CONTROL
        .get()
        .and_then(|tx| tx.lock().ok()?.as_ref()?.send(name).ok())
        .is_some();
    if sent {
        found::TRUE
    } else {
        found::FALSE
    }
}

/// Calls `on_signal` with the event's name for every Ctrl+C, Ctrl+Break and console close,
/// on a thread of its own, for as long as the process lives.
pub(crate) fn on_stop_signals(
    mut on_signal: impl FnMut(&'static str) + Send + 'static,
) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let slot = CONTROL.get_or_init(|| Mutex::new(None));
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    std::thread::Builder::new()
        .name("ringport-signals".into())
        .spawn(move || {
            for name in rx {
                on_signal(name);
            }
        })?;
    // SAFETY: `on_control` is a valid handler for the life of the process (a static fn).
    if unsafe { con::SetConsoleCtrlHandler(Some(on_control), found::TRUE) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a failed open beneath a folder means.
pub(crate) fn open_failure(e: &io::Error) -> crate::dir::OpenFailure {
    use crate::dir::OpenFailure;
    let Some(raw) = e.raw_os_error() else {
        return OpenFailure::Other;
    };
    match raw as u32 {
        found::ERROR_FILE_NOT_FOUND | found::ERROR_PATH_NOT_FOUND | found::ERROR_INVALID_NAME => {
            OpenFailure::NotFound
        }
        found::ERROR_NOT_SAME_DEVICE => OpenFailure::Outside,
        found::ERROR_BAD_FILE_TYPE | found::ERROR_DIRECTORY => OpenFailure::NotRegular,
        found::ERROR_CANT_RESOLVE_FILENAME => OpenFailure::LinkLoop,
        found::ERROR_FILENAME_EXCED_RANGE | found::ERROR_BUFFER_OVERFLOW => {
            OpenFailure::NameTooLong
        }
        found::ERROR_ACCESS_DENIED | found::ERROR_SHARING_VIOLATION => {
            OpenFailure::PermissionDenied
        }
        found::ERROR_TOO_MANY_OPEN_FILES
        | found::ERROR_NOT_ENOUGH_MEMORY
        | found::ERROR_NO_SYSTEM_RESOURCES => OpenFailure::Busy,
        _ => OpenFailure::Other,
    }
}

/// A folder whose files are opened beneath it (see `iocp/open.rs`).
#[derive(Debug)]
pub(crate) struct DirHandle(std::os::windows::io::OwnedHandle);

impl DirHandle {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        iocp::open::open_dir(path).map(DirHandle)
    }

    pub(crate) fn raw(&self) -> Raw {
        self.0.as_raw_handle() as Raw
    }
}
