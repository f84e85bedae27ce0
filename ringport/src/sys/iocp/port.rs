//! The completion port itself: created per worker, associated with sockets, posted to by
//! other threads (the waker) and dequeued in batches by its worker.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT};
use windows_sys::Win32::Storage::FileSystem::SetFileCompletionNotificationModes;
use windows_sys::Win32::System::WindowsProgramming::{
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, FILE_SKIP_SET_EVENT_ON_HANDLE,
};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatusEx, PostQueuedCompletionStatus,
    OVERLAPPED_ENTRY,
};

/// The completion key of the waker's packets (sockets are associated under [`IO_KEY`]).
pub(super) const WAKE_KEY: usize = 1;
/// The completion key every socket of a worker is associated under: the operation, not the
/// key, says whose completion it is.
pub(super) const IO_KEY: usize = 0;

/// One worker's I/O completion port.
#[derive(Debug)]
pub(crate) struct CompletionPort {
    handle: OwnedHandle,
}

impl CompletionPort {
    /// Creates a port for one thread (its concurrency value is 1: one worker dequeues it).
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: creating a new port (no file handle) has no preconditions.
        let port =
            unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1) };
        if port.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new handle that nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(port) };
        Ok(CompletionPort { handle })
    }

    fn raw_handle(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }

    /// The port as operations name it.
    pub(crate) fn raw(&self) -> usize {
        self.raw_handle() as usize
    }

    /// Posts the waker's packet (PostQueuedCompletionStatus).
    pub(crate) fn post_wake(&self) {
        // SAFETY: the port is open while `self` lives; a packet without an OVERLAPPED is
        // recognised by its key and never dereferenced.
        let ok =
            unsafe { PostQueuedCompletionStatus(self.raw_handle(), 0, WAKE_KEY, std::ptr::null()) };
        if ok == 0 {
            // Out of memory for a packet: the worker wakes at its next completion or timer.
            tracing::warn!("waking a worker: {}", io::Error::last_os_error());
        }
    }

    /// Associates `handle` (a socket) with this port. Returns whether operations that
    /// succeed at once skip the port (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`): then no
    /// packet comes for them.
    pub(super) fn associate(&self, handle: usize) -> io::Result<bool> {
        let h = handle as HANDLE;
        // SAFETY: `h` is an open socket of the worker's table; the port is open.
        let port = unsafe { CreateIoCompletionPort(h, self.raw_handle(), IO_KEY, 0) };
        if port.is_null() {
            return Err(io::Error::last_os_error());
        }
        let modes = (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE) as u8;
        // SAFETY: as above.
        let skip = unsafe { SetFileCompletionNotificationModes(h, modes) } != 0;
        Ok(skip)
    }

    /// Dequeues up to `entries.len()` packets, waiting at most `timeout_ms` (`u32::MAX`:
    /// forever); returns how many.
    pub(super) fn dequeue(
        &self,
        entries: &mut [OVERLAPPED_ENTRY],
        timeout_ms: u32,
    ) -> io::Result<usize> {
        let mut removed = 0u32;
        // SAFETY: `entries` is valid for writes of its length; the port is open.
        let ok = unsafe {
            GetQueuedCompletionStatusEx(
                self.raw_handle(),
                entries.as_mut_ptr(),
                entries.len() as u32,
                &mut removed,
                timeout_ms,
                0,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(code) if code == WAIT_TIMEOUT as i32 => Ok(0),
                _ => Err(e),
            };
        }
        Ok(removed as usize)
    }
}
