//! The IOCP backend: Windows I/O completion ports, the model ringport is named after.
//!
//! One completion port per worker thread (a socket can be associated with one port only, so
//! a connection stays on its worker, as on Linux). Sockets are associated on their first
//! operation under [`port::IO_KEY`] and set to `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`: an
//! operation that succeeds at once completes right there, without a packet.
//!
//! How each [`Sub`] is carried out:
//! - accept: one `AcceptEx` in flight per listener, issued again after each connection (a
//!   multishot accept); the accepted socket gets `SO_UPDATE_ACCEPT_CONTEXT` and is made
//!   non-blocking. Clients that vanish before being accepted are skipped.
//! - receive: a zero-byte `WSARecv` waits for data without pinning a buffer (an idle
//!   connection holds none), then non-blocking `recv`s fill the worker's pool buffers, as
//!   io_uring's provided buffers would (`ENOBUFS` only when data is there and no buffer).
//! - send: `WSASend` (one buffer, or the gather list); send file: `TransmitFile` from the
//!   operation's offset. Either sends at most [`SEND_CHUNK`] bytes per call: the worker
//!   continues short results, as it does short sends and `sendfile` rounds on Linux.
//! - connect: `ConnectEx` on a socket bound to the wildcard address, then
//!   `SO_UPDATE_CONNECT_CONTEXT`.
//! - cancel: `CancelIoEx` on the operation's OVERLAPPED; close: `closesocket`/`CloseHandle`.
//! - timers: kept here; the nearest deadline bounds `GetQueuedCompletionStatusEx`.
//! - the worker's waker: packets posted to the port under [`port::WAKE_KEY`].
//! - opens beneath a folder and file reads/writes at an offset run on the worker thread
//!   (see [`open`]): regular files have no readiness, and nothing here hands them to the
//!   port.
//!
//! Results mean what they mean on Linux: bytes or a new handle (≥ 0), 0 for EOF, `-code`
//! with a Win32/Winsock code taken from `WSAGetOverlappedResult` (reset is `WSAECONNRESET`,
//! cancelled is `ERROR_OPERATION_ABORTED`).
//!
//! Ownership: every OVERLAPPED is boxed here and freed only when its packet is dequeued (or
//! at once when the call completed without one). Buffers the kernel reads belong to the
//! worker's operation until its final completion; pool buffers are only filled by `recv`
//! calls made inside [`Driver::wait`], never left with the kernel.

pub(crate) mod open;
mod port;
mod winsock;

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::windows::fs::FileExt;
use std::os::windows::io::{BorrowedHandle, FromRawHandle, IntoRawHandle, RawHandle};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use windows_sys::Win32::Foundation::{CloseHandle, ERROR_IO_PENDING};
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::IO::{CancelIoEx, OVERLAPPED, OVERLAPPED_ENTRY};

use super::timers::Timers;
use super::{code, handle_result, Cqe, DriverConfig, Sub};
use crate::buf::BufPool;
pub(crate) use port::CompletionPort;
use winsock::{neg, neg_io, Ext};

/// Receive buffers one connection may fill per loop turn before the others get a go.
const BUDGET: u32 = 16;
/// Packets dequeued per `GetQueuedCompletionStatusEx`.
const ENTRIES: usize = 256;
/// The most one `WSASend` or `TransmitFile` call sends. The worker learns of progress only
/// when a call completes, and the send timeout counts from the last progress: a whole file or
/// a large buffer in one call would cut a client that reads steadily but needs longer than
/// the timeout for all of it. Calls of 1 MiB keep every client faster than 1 MiB per send
/// timeout (17 KB/s at the default 60 s), at one packet per MiB.
pub(crate) const SEND_CHUNK: usize = 1 << 20;
/// Room for one address in `AcceptEx`'s output buffer (its documented minimum is the
/// address size plus 16).
const ADDR_ROOM: usize = std::mem::size_of::<ws::SOCKADDR_STORAGE>() + 16;

/// An OVERLAPPED and what the driver needs when its packet comes. `repr(C)` with the
/// OVERLAPPED first, so the pointer the kernel hands back is a pointer to this.
#[repr(C)]
struct Overlapped {
    raw: OVERLAPPED,
    user_data: u64,
    /// The socket the call was made on (the listener for an accept).
    socket: usize,
    call: Call,
}

/// Which call an OVERLAPPED belongs to (boxed with it: one allocation per call, whatever
/// the variant's size).
#[allow(clippy::large_enum_variant)]
enum Call {
    /// `AcceptEx` into the new socket `socket`, addresses written to `addrs`.
    Accept {
        socket: usize,
        addrs: [u8; 2 * ADDR_ROOM],
    },
    /// The zero-byte `WSARecv` that waits for data.
    Probe,
    Send,
    Connect,
    SendFile,
}

impl Overlapped {
    /// A boxed OVERLAPPED for a call on `socket`, leaked to the kernel until its packet.
    fn new(user_data: u64, socket: usize, call: Call, offset: u64) -> NonNull<Overlapped> {
        // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
        let mut raw: OVERLAPPED = unsafe { std::mem::zeroed() };
        raw.Anonymous.Anonymous.Offset = offset as u32;
        raw.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
        let boxed = Box::new(Overlapped {
            raw,
            user_data,
            socket,
            call,
        });
        NonNull::from(Box::leak(boxed))
    }

    fn raw_ptr(ovl: NonNull<Overlapped>) -> *mut OVERLAPPED {
        ovl.as_ptr().cast()
    }

    /// Takes the OVERLAPPED back from the kernel.
    ///
    /// # Safety
    /// `ovl` came from [`Overlapped::new`], and its call is over (its packet was dequeued,
    /// or it completed without one): the kernel no longer touches it.
    unsafe fn take(ovl: NonNull<Overlapped>) -> Box<Overlapped> {
        // SAFETY: see the function's contract.
        unsafe { Box::from_raw(ovl.as_ptr()) }
    }
}

/// What a pending operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Accept { family: u16 },
    Recv,
    Send,
    Connect,
    SendFile,
}

/// A pending operation.
#[derive(Debug)]
struct Op {
    /// The socket it runs on (the listener for an accept).
    socket: usize,
    kind: Kind,
    /// The call the kernel holds, if any.
    ovl: Option<NonNull<Overlapped>>,
    /// A cancel was asked for: the operation ends with `-CANCELED` once its call is over.
    cancelled: bool,
}

/// One worker's completion port driver.
pub(crate) struct Driver {
    port: Arc<CompletionPort>,
    pool: Rc<BufPool>,
    free: Vec<u16>,
    ops: HashMap<u64, Op>,
    /// Sockets associated with the port, and whether their at-once successes skip it.
    associated: HashMap<usize, bool>,
    timers: Timers,
    /// The waker's multishot poll, and a wake-up that came while none was armed.
    poll: Option<u64>,
    woken: bool,
    /// Receives with data to read, and accepts to issue again, on the next turn.
    readable: Vec<u64>,
    reaccept: Vec<u64>,
    /// Completions not handed out yet.
    ready: Vec<Cqe>,
    /// Sockets and files in `ready`: closed if the driver is dropped first.
    fresh: Vec<(usize, bool)>,
    entries: Vec<OVERLAPPED_ENTRY>,
    expired: Vec<u64>,
    scratch: Vec<u64>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("iocp::Driver")
            .field("ops", &self.ops.len())
            .field("timers", &self.timers.len())
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl Driver {
    /// The driver of the calling worker, on its completion port; `pool` lends the receive
    /// buffers.
    pub(crate) fn new(
        cfg: DriverConfig,
        pool: Rc<BufPool>,
        port: Arc<CompletionPort>,
    ) -> io::Result<Self> {
        let cap = cfg.entries as usize;
        // SAFETY: OVERLAPPED_ENTRY is plain data; all-zero is valid (overwritten on dequeue).
        let entries = vec![unsafe { std::mem::zeroed::<OVERLAPPED_ENTRY>() }; ENTRIES];
        tracing::debug!(buffers = pool.count(), "completion port set up");
        Ok(Driver {
            port,
            free: (0..pool.count()).rev().collect(),
            pool,
            ops: HashMap::with_capacity(cap),
            associated: HashMap::with_capacity(cap),
            timers: Timers::default(),
            poll: None,
            woken: false,
            readable: Vec::new(),
            reaccept: Vec::new(),
            ready: Vec::with_capacity(cap),
            fresh: Vec::new(),
            entries,
            expired: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Starts one operation. Never fails: errors become completions.
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        match sub {
            Sub::AcceptMulti { fd } => match winsock::family(fd) {
                Ok(family) => self.begin(user_data, fd, Kind::Accept { family }, |d| {
                    d.accept(user_data)
                }),
                Err(e) => self.complete(user_data, neg(e)),
            },
            Sub::RecvMulti { fd } => self.begin(user_data, fd, Kind::Recv, |d| d.probe(user_data)),
            Sub::Send { fd, ptr, len } => {
                let len = len.min(SEND_CHUNK as u32);
                let buf = [ws::WSABUF {
                    len,
                    buf: ptr.cast_mut(),
                }];
                self.begin(user_data, fd, Kind::Send, |d| d.send(user_data, &buf));
            }
            Sub::SendV { fd, gather } => {
                // SAFETY: the gather is owned by the operation until its final completion.
                let bufs = unsafe { (*gather).bufs() };
                self.begin(user_data, fd, Kind::Send, |d| d.send(user_data, bufs));
            }
            Sub::Connect { fd, addr, len } => self.begin(user_data, fd, Kind::Connect, |d| {
                d.connect(user_data, addr, len)
            }),
            Sub::SendFile {
                sock,
                file,
                offset,
                len,
            } => self.begin(user_data, sock, Kind::SendFile, |d| {
                d.transmit(user_data, file, offset, len)
            }),
            Sub::Close { fd, file } => self.close(user_data, fd, file),
            Sub::Timeout { ts } => {
                // SAFETY: `ts` points to the timespec owned by the operation until its final
                // completion, which has not come yet.
                let after = unsafe { (*ts).duration() };
                self.timers.insert(user_data, after, Instant::now());
            }
            Sub::Cancel { user_data: target } => {
                let res = if self.cancel(target) {
                    0
                } else {
                    -code::NOT_FOUND
                };
                self.complete(user_data, res);
            }
            Sub::CancelFd { fd } => {
                let n = self.cancel_socket(fd);
                let res = if n == 0 { -code::NOT_FOUND } else { n };
                self.complete(user_data, res);
            }
            Sub::PollIn { fd } => {
                debug_assert_eq!(fd, self.port.raw(), "only the waker is polled");
                self.poll = Some(user_data);
                if std::mem::take(&mut self.woken) {
                    self.ready.push(Cqe {
                        user_data,
                        result: 1,
                        more: true,
                        buf: None,
                    });
                }
            }
            Sub::ReadAt {
                fd,
                ptr,
                len,
                offset,
            } => {
                // SAFETY: `ptr` is the spare capacity of the operation's buffer, `len` bytes,
                // owned by the operation until this completion (now).
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) };
                let res = with_file(fd, |f| f.seek_read(buf, offset));
                self.complete(user_data, res);
            }
            Sub::WriteAt {
                fd,
                ptr,
                len,
                offset,
            } => {
                // SAFETY: `ptr` points to `len` bytes of the operation's buffer, owned by the
                // operation until this completion (now).
                let buf = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
                let res = with_file(fd, |f| f.seek_write(buf, offset));
                self.complete(user_data, res);
            }
            Sub::OpenBeneath { dir, path, .. } => {
                // SAFETY: `path` is NUL-terminated and owned by the operation until this
                // completion (now).
                let path = unsafe { CStr::from_ptr(path) };
                let res = self.open(dir, path.to_bytes());
                self.complete(user_data, res);
            }
        }
        Ok(())
    }

    /// Takes back provided buffers: free for the next receive.
    pub(crate) fn recycle(&mut self, bids: &[u16]) {
        self.free.extend_from_slice(bids);
    }

    /// Hands out what completed; if `wait` and nothing has, waits for packets or a timer
    /// until something does. Appends to `out`.
    pub(crate) fn wait(&mut self, out: &mut Vec<Cqe>, wait: bool) -> io::Result<()> {
        loop {
            self.run_deferred();
            // Work left for the next turn (data to read, an accept to issue again) must not
            // wait for a packet that may never come: only look at the port then.
            let deferred = !self.readable.is_empty() || !self.reaccept.is_empty();
            let timeout = if !wait || deferred || !self.ready.is_empty() {
                0
            } else {
                u32::try_from(self.timers.timeout_ms(Instant::now())).unwrap_or(u32::MAX)
            };
            let n = self.port.dequeue(&mut self.entries, timeout)?;
            for i in 0..n {
                let entry = self.entries[i];
                self.on_packet(entry);
            }
            self.timers.expire(Instant::now(), &mut self.expired);
            for i in 0..self.expired.len() {
                let user_data = self.expired[i];
                self.complete(user_data, -code::TIME);
            }
            self.expired.clear();
            if !wait || !self.ready.is_empty() {
                break;
            }
        }
        self.fresh.clear();
        out.append(&mut self.ready);
        Ok(())
    }

    /// Reads for the receives that had data left, and issues the accepts that took one.
    fn run_deferred(&mut self) {
        let mut list = std::mem::take(&mut self.scratch);
        std::mem::swap(&mut list, &mut self.readable);
        for &user_data in &list {
            if self.ops.contains_key(&user_data) {
                self.read(user_data);
            }
        }
        list.clear();
        std::mem::swap(&mut list, &mut self.reaccept);
        for &user_data in &list {
            if self.ops.contains_key(&user_data) {
                self.accept(user_data);
            }
        }
        list.clear();
        self.scratch = list;
    }

    /// Registers a socket operation and starts it (after associating its socket).
    fn begin(&mut self, user_data: u64, socket: usize, kind: Kind, start: impl FnOnce(&mut Self)) {
        if let Err(e) = self.associate(socket) {
            return self.complete(user_data, neg(e));
        }
        let old = self.ops.insert(
            user_data,
            Op {
                socket,
                kind,
                ovl: None,
                cancelled: false,
            },
        );
        debug_assert!(old.is_none(), "user data {user_data} is already pending");
        start(self);
    }

    /// Associates `socket` with the port on its first operation; whether at-once successes
    /// skip the port.
    fn associate(&mut self, socket: usize) -> Result<bool, i32> {
        if let Some(&skip) = self.associated.get(&socket) {
            return Ok(skip);
        }
        let skip = self
            .port
            .associate(socket)
            .map_err(|e| e.raw_os_error().unwrap_or(code::IO))?;
        self.associated.insert(socket, skip);
        Ok(skip)
    }

    fn skips(&self, socket: usize) -> bool {
        self.associated.get(&socket).copied().unwrap_or(false)
    }

    /// What a call that returned at once means: `Ok(true)` done now (no packet will come),
    /// `Ok(false)` in flight, `Err` failed (no packet will come).
    fn started(&mut self, user_data: u64, ovl: NonNull<Overlapped>, ok: bool) -> Result<bool, i32> {
        let socket = self.ops[&user_data].socket;
        let err = if ok { 0 } else { winsock::last_error() };
        if ok && self.skips(socket) {
            return Ok(true);
        }
        if ok || err == ERROR_IO_PENDING as i32 {
            self.ops.get_mut(&user_data).expect("pending").ovl = Some(ovl);
            return Ok(false);
        }
        Err(err)
    }

    /// Issues the next `AcceptEx` of a multishot accept.
    fn accept(&mut self, user_data: u64) {
        let op = &self.ops[&user_data];
        let (listener, Kind::Accept { family }) = (op.socket, op.kind) else {
            unreachable!("an accept")
        };
        if op.cancelled {
            return self.finish(user_data, -code::CANCELED);
        }
        let ext = match Ext::get(listener) {
            Ok(ext) => ext,
            Err(e) => return self.finish(user_data, neg(e)),
        };
        let socket = match winsock::tcp_socket(family) {
            Ok(s) => s,
            Err(e) => return self.finish(user_data, neg(e)),
        };
        let call = Call::Accept {
            socket,
            addrs: [0; 2 * ADDR_ROOM],
        };
        let ovl = Overlapped::new(user_data, listener, call, 0);
        let mut bytes = 0u32;
        // SAFETY: `ovl` stays allocated until its packet is dequeued (or is taken back below
        // when no packet will come); the address buffer lives inside it.
        let ok = unsafe {
            let Call::Accept { addrs, .. } = &mut (*ovl.as_ptr()).call else {
                unreachable!()
            };
            (ext.accept_ex)(
                listener,
                socket,
                addrs.as_mut_ptr().cast(),
                0,
                ADDR_ROOM as u32,
                ADDR_ROOM as u32,
                &mut bytes,
                Overlapped::raw_ptr(ovl),
            ) != 0
        };
        match self.started(user_data, ovl, ok) {
            Ok(false) => {}
            done => {
                // SAFETY: no packet will come for this call: it is over.
                drop(unsafe { Overlapped::take(ovl) });
                self.accepted(user_data, listener, socket, done.map(|_| ()));
            }
        }
    }

    /// An `AcceptEx` finished: hands out the connection and accepts again.
    fn accepted(
        &mut self,
        user_data: u64,
        listener: usize,
        socket: usize,
        result: Result<(), i32>,
    ) {
        let cancelled = self.ops.get(&user_data).is_none_or(|op| op.cancelled);
        let result = result.and_then(|()| {
            winsock::set_option(socket, ws::SO_UPDATE_ACCEPT_CONTEXT, Some(&listener))?;
            winsock::set_nonblocking(socket)
        });
        match result {
            Ok(()) => match handle_result(socket) {
                Some(result) => {
                    self.fresh.push((socket, false));
                    self.ready.push(Cqe {
                        user_data,
                        result,
                        more: true,
                        buf: None,
                    });
                }
                None => {
                    let _ = winsock::close(socket);
                }
            },
            Err(e) => {
                let _ = winsock::close(socket);
                // A client that reset or vanished before its accept completed: skip it.
                if !winsock::client_gone(e) || cancelled {
                    let res = if cancelled { -code::CANCELED } else { neg(e) };
                    return self.finish(user_data, res);
                }
            }
        }
        if cancelled {
            self.finish(user_data, -code::CANCELED);
        } else {
            // Next turn: an accept that completes at once every time cannot hold the loop.
            self.reaccept.push(user_data);
        }
    }

    /// Issues the zero-byte `WSARecv` that waits for data without holding a buffer.
    fn probe(&mut self, user_data: u64) {
        let socket = self.ops[&user_data].socket;
        let ovl = Overlapped::new(user_data, socket, Call::Probe, 0);
        let buf = ws::WSABUF {
            len: 0,
            buf: std::ptr::null_mut(),
        };
        let (mut bytes, mut flags) = (0u32, 0u32);
        // SAFETY: a zero-length buffer is never written; `ovl` stays allocated until its
        // packet is dequeued (or is taken back below when no packet will come).
        let rc = unsafe {
            ws::WSARecv(
                socket,
                &buf,
                1,
                &mut bytes,
                &mut flags,
                Overlapped::raw_ptr(ovl),
                None,
            )
        };
        match self.started(user_data, ovl, rc == 0) {
            Ok(false) => {}
            Ok(true) => {
                // SAFETY: completed without a packet: the call is over.
                drop(unsafe { Overlapped::take(ovl) });
                self.readable.push(user_data);
            }
            Err(e) => {
                // SAFETY: failed at once: no packet will come.
                drop(unsafe { Overlapped::take(ovl) });
                self.finish(user_data, neg(e));
            }
        }
    }

    /// Data is there: fills pool buffers with non-blocking `recv`s, one completion each,
    /// until the socket is drained (then waits with a probe again), at EOF or an error, or
    /// the budget is used (then goes on next turn).
    fn read(&mut self, user_data: u64) {
        let socket = self.ops[&user_data].socket;
        if self.ops[&user_data].cancelled {
            return self.finish(user_data, -code::CANCELED);
        }
        let size = self.pool.buf_size() as usize;
        for _ in 0..BUDGET {
            let Some(bid) = self.free.pop() else {
                return self.read_without_buffer(user_data, socket);
            };
            let ptr = self.pool.addr(bid);
            // SAFETY: buffer `bid` is `size` bytes inside the pool's memory and free (no
            // RecvBuf holds it); `recv` writes it before returning.
            match unsafe { winsock::recv(socket, ptr, size, false) } {
                Ok(0) => {
                    self.free.push(bid);
                    return self.finish(user_data, 0);
                }
                Ok(n) => {
                    self.ready.push(Cqe {
                        user_data,
                        result: n as i32,
                        more: true,
                        buf: Some(bid),
                    });
                    if n < size {
                        return self.probe(user_data);
                    }
                }
                Err(e) => {
                    self.free.push(bid);
                    if e == ws::WSAEWOULDBLOCK {
                        return self.probe(user_data);
                    }
                    return self.finish(user_data, neg(e));
                }
            }
        }
        self.readable.push(user_data);
    }

    /// io_uring fails a buffer-select receive with `ENOBUFS` only when data arrives and no
    /// buffer is free; peeking one byte tells whether data is there.
    fn read_without_buffer(&mut self, user_data: u64, socket: usize) {
        let mut byte = 0u8;
        // SAFETY: peeks at most one byte into a live local.
        match unsafe { winsock::recv(socket, &mut byte, 1, true) } {
            Ok(0) => self.finish(user_data, 0),
            Ok(_) => self.finish(user_data, -code::NOBUFS),
            Err(e) if e == ws::WSAEWOULDBLOCK => self.probe(user_data),
            Err(e) => self.finish(user_data, neg(e)),
        }
    }

    /// `WSASend` of `bufs` (the data is owned by the operation until its final completion;
    /// Winsock copies the WSABUF array itself before returning).
    fn send(&mut self, user_data: u64, bufs: &[ws::WSABUF]) {
        let socket = self.ops[&user_data].socket;
        let ovl = Overlapped::new(user_data, socket, Call::Send, 0);
        let mut sent = 0u32;
        // SAFETY: the buffers stay valid until the final completion (the operation owns
        // them); `ovl` stays allocated until its packet is dequeued or taken back below.
        let rc = unsafe {
            ws::WSASend(
                socket,
                bufs.as_ptr(),
                bufs.len() as u32,
                &mut sent,
                0,
                Overlapped::raw_ptr(ovl),
                None,
            )
        };
        match self.started(user_data, ovl, rc == 0) {
            Ok(false) => {}
            done => {
                // SAFETY: no packet will come for this call: it is over.
                drop(unsafe { Overlapped::take(ovl) });
                self.finish(user_data, done.map_or_else(neg, |_| sent as i32));
            }
        }
    }

    /// `ConnectEx` to `addr` (the socket is bound to the wildcard address first).
    fn connect(&mut self, user_data: u64, addr: *const ws::SOCKADDR, len: u32) {
        let socket = self.ops[&user_data].socket;
        // SAFETY: `addr` points to the operation's socket address until its final completion.
        let family = unsafe { (*addr).sa_family };
        let ext = match Ext::get(socket) {
            Ok(ext) => ext,
            Err(e) => return self.finish(user_data, neg(e)),
        };
        if let Err(e) = winsock::bind_any(socket, family) {
            return self.finish(user_data, neg(e));
        }
        let ovl = Overlapped::new(user_data, socket, Call::Connect, 0);
        // SAFETY: `addr` is valid for `len` bytes until the final completion; `ovl` stays
        // allocated until its packet is dequeued or taken back below.
        let ok = unsafe {
            (ext.connect_ex)(
                socket,
                addr,
                len as i32,
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                Overlapped::raw_ptr(ovl),
            ) != 0
        };
        match self.started(user_data, ovl, ok) {
            Ok(false) => {}
            done => {
                // SAFETY: no packet will come for this call: it is over.
                drop(unsafe { Overlapped::take(ovl) });
                self.connected(user_data, socket, done.map(|_| ()));
            }
        }
    }

    fn connected(&mut self, user_data: u64, socket: usize, result: Result<(), i32>) {
        let result =
            result.and_then(|()| winsock::set_option(socket, ws::SO_UPDATE_CONNECT_CONTEXT, None));
        self.finish(user_data, result.map_or_else(neg, |()| 0));
    }

    /// `TransmitFile` of up to `len` bytes of `file` from `offset` (at most [`SEND_CHUNK`]).
    fn transmit(&mut self, user_data: u64, file: usize, offset: u64, len: u64) {
        let socket = self.ops[&user_data].socket;
        let ext = match Ext::get(socket) {
            Ok(ext) => ext,
            Err(e) => return self.finish(user_data, neg(e)),
        };
        // 0 would mean "the whole file": the worker never asks for 0 bytes.
        let count = len.clamp(1, SEND_CHUNK as u64) as u32;
        let ovl = Overlapped::new(user_data, socket, Call::SendFile, offset);
        // SAFETY: the file is held by the operation until its final completion; `ovl` stays
        // allocated until its packet is dequeued or taken back below.
        let ok = unsafe {
            (ext.transmit_file)(
                socket,
                file as RawHandle,
                count,
                0,
                Overlapped::raw_ptr(ovl),
                std::ptr::null(),
                0,
            ) != 0
        };
        match self.started(user_data, ovl, ok) {
            Ok(false) => {}
            done => {
                // SAFETY: the call completed (or failed) without a packet: it is over.
                let result = done.and_then(|_| unsafe {
                    winsock::overlapped_result(socket, Overlapped::raw_ptr(ovl))
                });
                // SAFETY: as above.
                drop(unsafe { Overlapped::take(ovl) });
                self.finish(user_data, result.map_or_else(neg, |n| n as i32));
            }
        }
    }

    /// A packet was dequeued: the waker's, or the end of one of our calls.
    fn on_packet(&mut self, entry: OVERLAPPED_ENTRY) {
        let Some(ovl) = NonNull::new(entry.lpOverlapped.cast::<Overlapped>()) else {
            if entry.lpCompletionKey == port::WAKE_KEY {
                self.wake();
            }
            return;
        };
        // SAFETY: every OVERLAPPED posted to this port is one of ours: only sockets of this
        // worker's table are associated (files never are), only this driver issues calls on
        // them (`Io::socket` forbids reads and writes; a socket handed over by `associate`
        // must have no call of its previous owner in flight), and its packet says the call
        // is over.
        let ovl = unsafe { Overlapped::take(ovl) };
        let user_data = ovl.user_data;
        // SAFETY: the call on `ovl.socket` is over (see above).
        let result = unsafe { winsock::overlapped_result(ovl.socket, &ovl.raw) };
        if let Some(op) = self.ops.get_mut(&user_data) {
            op.ovl = None;
        }
        match ovl.call {
            Call::Accept { socket, .. } => {
                self.accepted(user_data, ovl.socket, socket, result.map(|_| ()))
            }
            Call::Probe => match result {
                Ok(_) => self.read(user_data),
                Err(e) => self.finish(user_data, neg(e)),
            },
            Call::Send | Call::SendFile => {
                self.finish(user_data, result.map_or_else(neg, |n| n as i32))
            }
            Call::Connect => self.connected(user_data, ovl.socket, result.map(|_| ())),
        }
    }

    /// The waker's packet: completes the armed poll (multishot).
    fn wake(&mut self) {
        match self.poll {
            Some(user_data) => self.ready.push(Cqe {
                user_data,
                result: 1,
                more: true,
                buf: None,
            }),
            None => self.woken = true,
        }
    }

    /// Cancels `target` (final `-CANCELED`, now or when its call ends); false if it is
    /// not pending.
    fn cancel(&mut self, target: u64) -> bool {
        if self.timers.remove(target) {
            self.complete(target, -code::CANCELED);
            return true;
        }
        if self.poll == Some(target) {
            self.poll = None;
            self.complete(target, -code::CANCELED);
            return true;
        }
        let Some(op) = self.ops.get_mut(&target) else {
            return false;
        };
        op.cancelled = true;
        match op.ovl {
            Some(ovl) => {
                // SAFETY: `ovl` is the OVERLAPPED of a call in flight on `op.socket`. If the
                // call ended meanwhile (its packet is queued), this fails harmlessly.
                unsafe { CancelIoEx(op.socket as RawHandle, Overlapped::raw_ptr(ovl)) };
            }
            None => {
                // Not with the kernel (data to read next turn, an accept to issue): ends now.
                self.finish(target, -code::CANCELED);
            }
        }
        true
    }

    /// Cancels every operation on `socket`; how many.
    fn cancel_socket(&mut self, socket: usize) -> i32 {
        let targets: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, op)| op.socket == socket && !op.cancelled)
            .map(|(&user_data, _)| user_data)
            .collect();
        for &target in &targets {
            self.cancel(target);
        }
        targets.len() as i32
    }

    /// Closes a socket or file (the worker closes once every operation on it is over).
    fn close(&mut self, user_data: u64, raw: usize, file: bool) {
        let stale = self.cancel_socket(raw);
        if stale > 0 {
            tracing::debug!(ops = stale, "close cancelled pending operations");
        }
        self.associated.remove(&raw);
        let res = if file {
            // SAFETY: the worker hands the handle over with the close; nothing uses it after.
            if unsafe { CloseHandle(raw as RawHandle) } != 0 {
                0
            } else {
                neg_io(&io::Error::last_os_error())
            }
        } else {
            winsock::close(raw).map_or_else(neg, |()| 0)
        };
        self.complete(user_data, res);
    }

    /// Opens `path` beneath folder `dir` on this thread; the new handle or `-code`.
    fn open(&mut self, dir: usize, path: &[u8]) -> i32 {
        // SAFETY: `dir` is the handle of the `Dir` the operation holds until its completion.
        let dir = unsafe { BorrowedHandle::borrow_raw(dir as RawHandle) };
        match open::open_beneath(dir, path) {
            Ok(file) => {
                let raw = file.into_raw_handle() as usize;
                match handle_result(raw) {
                    Some(result) => {
                        self.fresh.push((raw, true));
                        result
                    }
                    None => {
                        // SAFETY: just opened and owned here.
                        drop(unsafe { File::from_raw_handle(raw as RawHandle) });
                        -code::TOO_MANY
                    }
                }
            }
            // A name no Windows file can have (Linux would look for it and not find it).
            Err(e) if open::refusal(&e).is_some_and(open::Refusal::cannot_exist) => {
                -(windows_sys::Win32::Foundation::ERROR_INVALID_NAME as i32)
            }
            Err(e) if open::is_escape(&e) => -code::OUTSIDE,
            Err(e) if e.raw_os_error().is_some() => neg_io(&e),
            Err(e) => match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                    -(windows_sys::Win32::Foundation::ERROR_PATH_NOT_FOUND as i32)
                }
                io::ErrorKind::InvalidInput => -code::NOT_REGULAR,
                _ => -code::IO,
            },
        }
    }

    /// Ends a pending operation with its final completion.
    fn finish(&mut self, user_data: u64, result: i32) {
        self.ops.remove(&user_data);
        self.complete(user_data, result);
    }

    fn complete(&mut self, user_data: u64, result: i32) {
        self.ready.push(Cqe {
            user_data,
            result,
            more: false,
            buf: None,
        });
    }
}

/// Runs `f` on a file of the worker's table; bytes or `-code`.
fn with_file(raw: usize, f: impl FnOnce(&File) -> io::Result<usize>) -> i32 {
    // SAFETY: the file is open (the worker closes it only after its operations end) and
    // ManuallyDrop keeps this borrow from closing it.
    let file = ManuallyDrop::new(unsafe { File::from_raw_handle(raw as RawHandle) });
    match f(&file) {
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(e) => neg_io(&e),
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Calls still with the kernel (only when the worker gave up waiting for them) keep
        // their OVERLAPPEDs: leaked, never freed under the kernel. Handles made for
        // completions nobody took would leak: close them.
        for &(raw, file) in &self.fresh {
            if file {
                // SAFETY: opened here and never handed out.
                unsafe { CloseHandle(raw as RawHandle) };
            } else {
                let _ = winsock::close(raw);
            }
        }
    }
}
