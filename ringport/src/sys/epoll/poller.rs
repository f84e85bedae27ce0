//! One worker's epoll instance: edge-triggered registrations and the wait for readiness.
//!
//! A descriptor is registered once, for both directions (`EPOLLIN | EPOLLOUT | EPOLLRDHUP |
//! EPOLLET`), the first time one of its operations would block; the event carries the
//! descriptor number. The kernel drops a registration when the file is closed, so closing needs
//! no `EPOLL_CTL_DEL`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Event bits that wake a descriptor's read side: data, EOF, hang-up or error.
const READ_BITS: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Event bits that wake a descriptor's write side: room, hang-up or error.
const WRITE_BITS: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Event bits that say the read side will not get new edges: the peer's FIN, hang-up, error.
const CLOSED_BITS: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// An epoll instance and the buffer its events land in.
#[derive(Debug)]
pub(super) struct Poller {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
    /// How many of `events` the last wait filled.
    len: usize,
}

/// Readiness of one descriptor, as one wait reported it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    pub(super) fd: i32,
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// The peer shut down its side, or the socket hung up or failed (a lasting state).
    pub(super) read_closed: bool,
}

impl Poller {
    /// Creates an epoll instance that reports up to `capacity` descriptors per wait.
    pub(super) fn new(capacity: usize) -> io::Result<Self> {
        // SAFETY: no pointer arguments.
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: epoll_create1 returned a new descriptor that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Ok(Poller {
            epfd,
            events: vec![empty; capacity.max(1)],
            len: 0,
        })
    }

    /// Registers `fd` for edge-triggered readiness in both directions. Already registered
    /// (the same open file under the same number) is fine.
    pub(super) fn add(&self, fd: i32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        let epfd = self.epfd.as_raw_fd();
        // SAFETY: `ev` is a valid epoll_event the kernel copies during the call.
        match syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev)) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout_ms` (-1: forever, 0: just look) and returns how many events came.
    /// An interrupted wait returns none.
    pub(super) fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        let (epfd, ptr) = (self.epfd.as_raw_fd(), self.events.as_mut_ptr());
        let cap = i32::try_from(self.events.len()).unwrap_or(i32::MAX);
        // SAFETY: `ptr` points to `cap` writable epoll_events owned by `self`.
        self.len = match syscall!(epoll_wait(epfd, ptr, cap, timeout_ms)) {
            Ok(n) => n as usize,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => 0,
            Err(e) => return Err(e),
        };
        Ok(self.len)
    }

    /// Event `i` of the last wait.
    pub(super) fn event(&self, i: usize) -> Event {
        let ev = self.events[..self.len][i];
        let bits = ev.events;
        Event {
            fd: ev.u64 as i32,
            readable: bits & READ_BITS != 0,
            writable: bits & WRITE_BITS != 0,
            read_closed: bits & CLOSED_BITS != 0,
        }
    }
}
