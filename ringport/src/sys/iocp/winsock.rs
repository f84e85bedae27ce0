//! Winsock's extension functions (`AcceptEx`, `ConnectEx`, `TransmitFile`), loaded through
//! their `WSAID` pointers as Microsoft documents (Wine's direct exports are not all usable),
//! and the small calls the driver makes around them.

use std::io;
use std::sync::OnceLock;

use windows_sys::core::GUID;
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::IO::OVERLAPPED;

/// The extension functions, the same for every TCP socket of the process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ext {
    pub(super) accept_ex: AcceptEx,
    pub(super) connect_ex: ConnectEx,
    pub(super) transmit_file: TransmitFile,
}

type AcceptEx = unsafe extern "system" fn(
    ws::SOCKET,
    ws::SOCKET,
    *mut core::ffi::c_void,
    u32,
    u32,
    u32,
    *mut u32,
    *mut OVERLAPPED,
) -> windows_sys::core::BOOL;
type ConnectEx = unsafe extern "system" fn(
    ws::SOCKET,
    *const ws::SOCKADDR,
    i32,
    *const core::ffi::c_void,
    u32,
    *mut u32,
    *mut OVERLAPPED,
) -> windows_sys::core::BOOL;
type TransmitFile = unsafe extern "system" fn(
    ws::SOCKET,
    windows_sys::Win32::Foundation::HANDLE,
    u32,
    u32,
    *mut OVERLAPPED,
    *const ws::TRANSMIT_FILE_BUFFERS,
    u32,
) -> windows_sys::core::BOOL;

static EXT: OnceLock<Ext> = OnceLock::new();

impl Ext {
    /// The functions, loaded with `socket` the first time.
    pub(super) fn get(socket: usize) -> Result<Ext, i32> {
        if let Some(ext) = EXT.get() {
            return Ok(*ext);
        }
        // SAFETY: each GUID names the function whose signature the matching type states
        // (Microsoft's mswsock.h), and `load` checks the pointer is not null.
        let ext = unsafe {
            Ext {
                accept_ex: std::mem::transmute::<usize, AcceptEx>(load(
                    socket,
                    ws::WSAID_ACCEPTEX,
                )?),
                connect_ex: std::mem::transmute::<usize, ConnectEx>(load(
                    socket,
                    ws::WSAID_CONNECTEX,
                )?),
                transmit_file: std::mem::transmute::<usize, TransmitFile>(load(
                    socket,
                    ws::WSAID_TRANSMITFILE,
                )?),
            }
        };
        Ok(*EXT.get_or_init(|| ext))
    }
}

/// One extension function's address (`SIO_GET_EXTENSION_FUNCTION_POINTER`).
fn load(socket: usize, guid: GUID) -> Result<usize, i32> {
    let mut ptr: usize = 0;
    let mut bytes = 0u32;
    // SAFETY: in and out buffers are valid locals of the sizes given; no OVERLAPPED (a
    // synchronous call).
    let rc = unsafe {
        ws::WSAIoctl(
            socket,
            ws::SIO_GET_EXTENSION_FUNCTION_POINTER,
            (&guid as *const GUID).cast(),
            std::mem::size_of::<GUID>() as u32,
            (&mut ptr as *mut usize).cast(),
            std::mem::size_of::<usize>() as u32,
            &mut bytes,
            std::ptr::null_mut(),
            None,
        )
    };
    if rc != 0 {
        return Err(last_error());
    }
    if ptr == 0 {
        return Err(ws::WSAEOPNOTSUPP);
    }
    Ok(ptr)
}

/// The calling thread's last Winsock error.
pub(super) fn last_error() -> i32 {
    // SAFETY: no preconditions.
    unsafe { ws::WSAGetLastError() }
}

/// The outcome of a completed overlapped operation on `socket`: bytes, or the Winsock error
/// (`WSAGetOverlappedResult` gives the codes Linux's mean — reset, aborted — where the
/// packet's NTSTATUS would not).
///
/// # Safety
/// `ovl` is the OVERLAPPED of an operation on `socket` that has completed.
pub(super) unsafe fn overlapped_result(socket: usize, ovl: *const OVERLAPPED) -> Result<u32, i32> {
    let mut bytes = 0u32;
    let mut flags = 0u32;
    // SAFETY: the caller guarantees the operation is over; out parameters are locals.
    let ok = unsafe { ws::WSAGetOverlappedResult(socket, ovl, &mut bytes, 0, &mut flags) };
    if ok == 0 {
        Err(last_error())
    } else {
        Ok(bytes)
    }
}

/// Whether an accept failed because of its client (which reset or went away before the
/// accept completed: Windows says `ERROR_NETNAME_DELETED` or `WSAECONNRESET`, Wine
/// `WSAENOTCONN`), not because of the listener or a shortage: skip that client and accept on.
pub(super) fn client_gone(code: i32) -> bool {
    use windows_sys::Win32::Foundation::{ERROR_CONNECTION_ABORTED, ERROR_NETNAME_DELETED};
    code == ws::WSAECONNRESET
        || code == ws::WSAECONNABORTED
        || code == ws::WSAENOTCONN
        || code == ws::WSAENETRESET
        || code == ws::WSAETIMEDOUT
        || code == ERROR_NETNAME_DELETED as i32
        || code == ERROR_CONNECTION_ABORTED as i32
}

/// Makes `socket` non-blocking (`FIONBIO`).
pub(super) fn set_nonblocking(socket: usize) -> Result<(), i32> {
    let mut on = 1u32;
    // SAFETY: FIONBIO reads one u32 from a valid local.
    if unsafe { ws::ioctlsocket(socket, ws::FIONBIO, &mut on) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `setsockopt(SOL_SOCKET, name)` with `value`'s bytes (none for a null `value`).
pub(super) fn set_option(socket: usize, name: i32, value: Option<&usize>) -> Result<(), i32> {
    let (ptr, len) = match value {
        Some(v) => (
            (v as *const usize).cast(),
            std::mem::size_of::<usize>() as i32,
        ),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `ptr` is null or a valid usize of `len` bytes.
    if unsafe { ws::setsockopt(socket, ws::SOL_SOCKET, name, ptr, len) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// The address family of `socket` (`getsockname`).
pub(super) fn family(socket: usize) -> Result<u16, i32> {
    // SAFETY: SOCKADDR_STORAGE is plain data; all-zero is valid.
    let mut addr: ws::SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<ws::SOCKADDR_STORAGE>() as i32;
    // SAFETY: `addr` is valid for `len` bytes of writes.
    if unsafe {
        ws::getsockname(
            socket,
            (&mut addr as *mut ws::SOCKADDR_STORAGE).cast(),
            &mut len,
        )
    } != 0
    {
        return Err(last_error());
    }
    Ok(addr.ss_family)
}

/// A new overlapped TCP socket of `family`, not inherited by child processes.
pub(super) fn tcp_socket(family: u16) -> Result<usize, i32> {
    // SAFETY: no pointers; an invalid family is an error result.
    let s = unsafe {
        ws::WSASocketW(
            i32::from(family),
            ws::SOCK_STREAM,
            ws::IPPROTO_TCP,
            std::ptr::null(),
            0,
            ws::WSA_FLAG_OVERLAPPED | ws::WSA_FLAG_NO_HANDLE_INHERIT,
        )
    };
    if s == ws::INVALID_SOCKET {
        return Err(last_error());
    }
    Ok(s)
}

/// Binds `socket` to the wildcard address of `family` (ConnectEx needs a bound socket).
pub(super) fn bind_any(socket: usize, family: u16) -> Result<(), i32> {
    let addr: std::net::SocketAddr = if family == ws::AF_INET6 {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let addr = socket2::SockAddr::from(addr);
    // SAFETY: `addr` is a valid socket address of `addr.len()` bytes.
    if unsafe { ws::bind(socket, addr.as_ptr().cast(), addr.len()) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Closes a socket the driver made and nobody else holds.
pub(super) fn close(socket: usize) -> Result<(), i32> {
    // SAFETY: the caller hands the socket over; nothing uses it after.
    if unsafe { ws::closesocket(socket) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `recv` without waiting into `buf` (the socket is non-blocking): bytes, 0 at EOF, or the
/// Winsock error (`WSAEWOULDBLOCK`: nothing there).
///
/// # Safety
/// `ptr` is valid for `len` bytes of writes.
pub(super) unsafe fn recv(
    socket: usize,
    ptr: *mut u8,
    len: usize,
    peek: bool,
) -> Result<usize, i32> {
    let flags = if peek { ws::MSG_PEEK } else { 0 };
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    // SAFETY: the caller guarantees `ptr` is writable for `len` bytes.
    let n = unsafe { ws::recv(socket, ptr, len, flags) };
    if n < 0 {
        return Err(last_error());
    }
    Ok(n as usize)
}

/// Converts a Winsock or Win32 error into the driver's results (`-code`).
pub(super) fn neg(code: i32) -> i32 {
    -code.abs()
}

/// The error of an `io::Error` as a result.
pub(super) fn neg_io(e: &io::Error) -> i32 {
    neg(e.raw_os_error().unwrap_or(super::super::code::IO))
}
