//! What other threads share with a worker: its post queue, its quit flag and the eventfd
//! that wakes it (IOCP's `PostQueuedCompletionStatus`, for threads outside the port).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::sys::syscall;

/// The cross-thread side of one worker.
#[derive(Debug)]
pub(crate) struct Shared {
    posts: Mutex<Vec<u64>>,
    quit: AtomicBool,
    abort: AtomicBool,
    eventfd: OwnedFd,
}

impl Shared {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
        // SAFETY: eventfd returned a new descriptor that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Shared {
            posts: Mutex::new(Vec::new()),
            quit: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            eventfd,
        })
    }

    pub(crate) fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Queues a custom completion and wakes the worker.
    pub(crate) fn post(&self, value: u64) {
        self.posts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(value);
        self.wake();
    }

    /// Posts the quit packet.
    pub(crate) fn quit(&self) {
        self.quit.store(true, Ordering::Release);
        self.wake();
    }

    /// Posts the quit packet with the order to abort every connection at once.
    pub(crate) fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        self.quit();
    }

    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd. It can only fail with
        // EAGAIN when the counter is saturated, and then the worker is awake anyway.
        let _ = syscall!(write(self.eventfd(), (&one as *const u64).cast(), 8));
    }

    /// Resets the eventfd counter (the worker is awake now).
    pub(crate) fn clear(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (nothing to read) is fine.
        let _ = syscall!(read(self.eventfd(), (&mut n as *mut u64).cast(), 8));
    }

    pub(crate) fn take_posts(&self) -> Vec<u64> {
        std::mem::take(&mut *self.posts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn quit_requested(&self) -> bool {
        self.quit.load(Ordering::Acquire)
    }

    pub(crate) fn abort_requested(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }
}
