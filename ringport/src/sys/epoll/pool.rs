//! Reads and writes of regular files on a small thread pool: files are never "ready" for
//! epoll, and `pread`/`pwrite` may block on the disk, so they run off the worker thread.
//!
//! Each worker's driver starts its pool of [`THREADS`] threads on its first file operation.
//! A job carries a pointer into the buffer its operation owns in the worker's table; the
//! operation's final completion is made only once the job has run, so the buffer outlives
//! every use the pool makes of it. Finished jobs are queued and announced on an eventfd that
//! the driver's epoll watches. A job not started yet can be cancelled; a running one finishes.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::op::neg;

/// Threads per worker's pool.
pub(super) const THREADS: usize = 2;

/// One `pread` or `pwrite`.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) user_data: u64,
    pub(super) fd: RawFd,
    pub(super) ptr: *mut u8,
    pub(super) len: u32,
    pub(super) offset: u64,
    pub(super) write: bool,
}

// SAFETY: a job's pointer is the only thing that is not `Send`. It points into a buffer its
// operation owns in the worker's table until the operation's final completion, which the
// driver makes only after the pool thread has finished with the job (`done`), and no other
// thread touches that buffer meanwhile (the worker lent it for the operation).
unsafe impl Send for Job {}

impl Job {
    /// Runs the job: bytes moved, or `-errno`.
    fn run(&self) -> i32 {
        let off = match libc::off_t::try_from(self.offset) {
            Ok(off) => off,
            Err(_) => return -libc::EINVAL,
        };
        loop {
            let len = self.len as usize;
            let res = if self.write {
                // SAFETY: `ptr..ptr+len` is the unwritten part of the buffer the operation
                // owns until the job is done (see `Send` above).
                syscall!(pwrite(self.fd, self.ptr.cast_const().cast(), len, off))
            } else {
                // SAFETY: as above, `len` writable bytes of the buffer's spare capacity.
                syscall!(pread(self.fd, self.ptr.cast(), len, off))
            };
            match res {
                Ok(n) => return n as i32,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return neg(&e),
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Job>,
    done: Vec<(u64, i32)>,
    stop: bool,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    wake: Condvar,
    /// Announces finished jobs to the driver.
    eventfd: OwnedFd,
}

/// A worker's file thread pool.
#[derive(Debug)]
pub(super) struct Pool {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool whose threads start with the first job.
    pub(super) fn new() -> io::Result<Self> {
        let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
        // SAFETY: eventfd returned a new descriptor that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Pool {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                wake: Condvar::new(),
                eventfd,
            }),
            threads: Vec::new(),
        })
    }

    /// The descriptor that becomes readable when jobs finish.
    pub(super) fn eventfd(&self) -> RawFd {
        self.inner.eventfd.as_raw_fd()
    }

    /// Queues a job.
    pub(super) fn submit(&mut self, job: Job) -> io::Result<()> {
        if self.threads.is_empty() {
            for i in 0..THREADS {
                let inner = self.inner.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("ringport-file{i}"))
                    .spawn(move || inner.serve())?;
                self.threads.push(thread);
            }
        }
        self.inner.lock().queue.push_back(job);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Takes the jobs not started yet that match `pick`, appending their user data.
    pub(super) fn cancel(&self, pick: impl Fn(&Job) -> bool, out: &mut Vec<u64>) {
        let mut state = self.inner.lock();
        state.queue.retain(|job| {
            let cancel = pick(job);
            if cancel {
                out.push(job.user_data);
            }
            !cancel
        });
    }

    /// Takes the results of finished jobs.
    pub(super) fn take_done(&self, out: &mut Vec<(u64, i32)>) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (nothing new) is fine.
        let _ = syscall!(read(self.eventfd(), (&mut n as *mut u64).cast(), 8));
        out.append(&mut self.inner.lock().done);
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pool thread: runs jobs until the pool is dropped.
    fn serve(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                let result = job.run();
                state = self.lock();
                state.done.push((job.user_data, result));
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a valid u64 to the pool's eventfd.
                let _ = syscall!(write(
                    self.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    8
                ));
            } else if state.stop {
                return;
            } else {
                state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The driver is dropped only once no operation is in flight: the queue is empty.
        self.inner.lock().stop = true;
        self.inner.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
