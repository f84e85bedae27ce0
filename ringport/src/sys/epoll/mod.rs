//! The epoll backend: completions emulated from readiness, the way Boost.Asio's Linux reactor
//! does it, where io_uring is not allowed (seccomp, `io_uring_disabled`, old kernels).
//!
//! One epoll instance per worker thread, never shared. Each descriptor has two FIFO queues of
//! pending operations, a read side (accept, receive, poll) and a write side (send,
//! `sendfile(2)`, connect). An operation is attempted at once when it is pushed to an empty
//! queue (speculatively: most sends complete right there); if it would block, the descriptor
//! is registered (edge-triggered, once) and the queue is retried when epoll reports that side
//! ready. Close, cancel, timeouts (a deadline set bounding `epoll_wait`) and confined opens
//! (`openat2` on the worker thread) complete at once. Every result becomes a [`Cqe`] of the
//! same shape and meaning as io_uring's, handed out by [`Driver::wait`].
//!
//! Edge-triggered rules: a side that used its [`BUDGET`] is retried next turn without an
//! event; a short read counts as "drained" only while no FIN edge can have been missed
//! (`FdState::trusts_short_reads`).
//!
//! Operations are keyed by `user_data`, never by descriptor number: closing or cancelling
//! removes a descriptor's queues, so no stale operation can reach a new file that reuses the
//! number. Nothing is written behind the worker's back: every attempt runs inside
//! [`Driver::push`] or [`Driver::wait`], while the operation's buffers are alive.

mod op;
mod open;
mod poller;
mod pool;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::rc::Rc;
use std::time::Instant;

use super::timers::Timers;
use super::{Cqe, DriverConfig, Sub};
use crate::buf::BufPool;
use op::{neg, Bufs, Op, Side, Step};
use poller::Poller;
use pool::{Job, Pool};

/// Completions one side of one descriptor may produce per loop turn before the others get a
/// go (multishot receive and accept are otherwise unbounded).
const BUDGET: u32 = 16;
/// Loop turns that may hand out completions without looking at epoll (saves a system call
/// per turn when pushes complete at once, without starving ready descriptors).
const TURNS_WITHOUT_POLL: u32 = 1;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// The pending operations of one descriptor.
#[derive(Debug, Default)]
struct FdState {
    /// Whether this driver has registered the descriptor with epoll.
    registered: bool,
    /// A read-side op would block while registered: every later arrival raises an edge.
    read_waited: bool,
    /// An event said the peer's FIN (or a hang-up or error) is there: it raises no new edge.
    read_closed: bool,
    read: VecDeque<u64>,
    write: VecDeque<u64>,
}

impl FdState {
    /// Whether a short read means "drained, wait for the next edge". A short read also
    /// happens when `recv` stops at the FIN, whose edge may have gone by (while no receive
    /// was pending, or before this state existed); then only reading on finds the EOF.
    /// Like tokio, which keeps "read closed" readiness sticky.
    fn trusts_short_reads(&self) -> bool {
        self.read_waited && !self.read_closed
    }

    fn queue(&mut self, side: Side) -> &mut VecDeque<u64> {
        match side {
            Side::Read => &mut self.read,
            Side::Write => &mut self.write,
        }
    }
}

/// One worker's reactor.
pub(crate) struct Driver {
    poller: Poller,
    bufs: Bufs,
    /// Pending descriptor operations by user data.
    ops: HashMap<u64, Op>,
    /// Descriptors with pending operations. An entry goes when its queues empty, so an entry
    /// never outlives the file it was made for (files close only once their ops are over).
    fds: HashMap<i32, FdState>,
    timers: Timers,
    /// Completions not handed out yet.
    ready: Vec<Cqe>,
    /// New descriptors (accepted, opened) in `ready`: closed if the driver is dropped first.
    new_fds: Vec<i32>,
    /// Sides that used up their budget: retried next turn (edge-triggered: no new event comes).
    retry: Vec<(i32, Side)>,
    retrying: Vec<(i32, Side)>,
    expired: Vec<u64>,
    turns_without_poll: u32,
    /// `openat2` is refused here: open by walking the path.
    no_openat2: bool,
    /// Reads and writes of files, on threads (started with the first).
    files: Option<Pool>,
    /// Scratch for finished or cancelled file jobs.
    file_results: Vec<(u64, i32)>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("epoll::Driver")
            .field("ops", &self.ops.len())
            .field("fds", &self.fds.len())
            .field("timers", &self.timers.len())
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl Driver {
    /// Creates the epoll instance of the calling worker; `pool` lends the receive buffers.
    pub(crate) fn new(cfg: DriverConfig, pool: Rc<BufPool>) -> io::Result<Self> {
        let poller = Poller::new(EVENTS)?;
        tracing::debug!(buffers = pool.count(), "epoll reactor set up");
        let cap = cfg.entries as usize;
        Ok(Driver {
            poller,
            bufs: Bufs::new(pool),
            ops: HashMap::with_capacity(cap),
            fds: HashMap::with_capacity(cap),
            timers: Timers::default(),
            ready: Vec::with_capacity(cap),
            new_fds: Vec::new(),
            retry: Vec::new(),
            retrying: Vec::new(),
            expired: Vec::new(),
            turns_without_poll: 0,
            no_openat2: false,
            files: None,
            file_results: Vec::new(),
        })
    }

    /// Starts one operation: descriptor operations are attempted at once if first in their
    /// queue; close, cancel, timeouts and opens are handled right here. Never fails: errors become
    /// completions.
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        match sub {
            Sub::Close { fd, .. } => self.close(fd, user_data),
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
                    -libc::ENOENT
                };
                self.complete(user_data, res);
            }
            Sub::CancelFd { fd } => {
                let n = self.cancel_fd(fd);
                let res = if n == 0 { -libc::ENOENT } else { n };
                self.complete(user_data, res);
            }
            Sub::OpenBeneath { dir, path, how } => {
                // SAFETY: `path` (NUL-terminated) and `how` are owned by the operation until its
                // completion, which is now.
                let (path, how) = unsafe { (std::ffi::CStr::from_ptr(path), *how) };
                let res = open::beneath(dir, path, &how, &mut self.no_openat2);
                if res >= 0 {
                    self.new_fds.push(res);
                }
                self.complete(user_data, res);
            }
            Sub::ReadAt {
                fd,
                ptr,
                len,
                offset,
            } => self.file_job(Job {
                user_data,
                fd,
                ptr,
                len,
                offset,
                write: false,
            }),
            Sub::WriteAt {
                fd,
                ptr,
                len,
                offset,
            } => self.file_job(Job {
                user_data,
                fd,
                ptr: ptr.cast_mut(),
                len,
                offset,
                write: true,
            }),
            sub => self.start(user_data, Op::new(sub)),
        }
        Ok(())
    }

    /// Hands a file read or write to the pool (started, and watched, on first use).
    fn file_job(&mut self, job: Job) {
        let user_data = job.user_data;
        if self.files.is_none() {
            match Pool::new().and_then(|pool| self.poller.add(pool.eventfd()).map(|()| pool)) {
                Ok(pool) => self.files = Some(pool),
                Err(e) => return self.complete(user_data, neg(&e)),
            }
        }
        if let Err(e) = self.files.as_mut().expect("started").submit(job) {
            self.complete(user_data, neg(&e));
        }
    }

    /// Completes the file jobs that finished.
    fn files_done(&mut self) {
        if let Some(pool) = &self.files {
            pool.take_done(&mut self.file_results);
        }
        for i in 0..self.file_results.len() {
            let (user_data, result) = self.file_results[i];
            self.complete(user_data, result);
        }
        self.file_results.clear();
    }

    /// Cancels the file jobs not started yet that `pick` chooses; returns how many.
    fn cancel_files(&mut self, pick: impl Fn(&Job) -> bool) -> usize {
        let Some(pool) = &self.files else {
            return 0;
        };
        let mut cancelled = Vec::new();
        pool.cancel(pick, &mut cancelled);
        for &user_data in &cancelled {
            self.complete(user_data, -libc::ECANCELED);
        }
        cancelled.len()
    }

    /// Takes back provided buffers: free for the next receive.
    pub(crate) fn recycle(&mut self, bids: &[u16]) {
        self.bufs.put_all(bids);
    }

    /// Hands out what completed; if `wait` and nothing has, waits for readiness or a timer
    /// until something does. Appends to `out`.
    pub(crate) fn wait(&mut self, out: &mut Vec<Cqe>, wait: bool) -> io::Result<()> {
        loop {
            std::mem::swap(&mut self.retry, &mut self.retrying);
            for i in 0..self.retrying.len() {
                let (fd, side) = self.retrying[i];
                self.run(fd, side, false);
            }
            self.retrying.clear();

            let busy = !self.ready.is_empty() || !self.retry.is_empty();
            if busy && self.turns_without_poll < TURNS_WITHOUT_POLL {
                self.turns_without_poll += 1;
            } else {
                self.turns_without_poll = 0;
                let timeout = match wait && !busy {
                    true => self.timers.timeout_ms(Instant::now()),
                    false => 0,
                };
                self.poll(timeout)?;
            }
            self.expire_timers();
            if !wait || !self.ready.is_empty() {
                break;
            }
        }
        self.new_fds.clear();
        out.append(&mut self.ready);
        Ok(())
    }

    /// Waits for readiness and runs the queues of the sides that became ready.
    fn poll(&mut self, timeout_ms: i32) -> io::Result<()> {
        let n = self.poller.wait(timeout_ms)?;
        let files = self.files.as_ref().map(Pool::eventfd);
        for i in 0..n {
            let ev = self.poller.event(i);
            if Some(ev.fd) == files {
                self.files_done();
                continue;
            }
            if ev.read_closed {
                if let Some(state) = self.fds.get_mut(&ev.fd) {
                    state.read_closed = true;
                }
            }
            if ev.readable {
                self.run(ev.fd, Side::Read, true);
            }
            if ev.writable {
                self.run(ev.fd, Side::Write, true);
            }
        }
        Ok(())
    }

    fn expire_timers(&mut self) {
        self.timers.expire(Instant::now(), &mut self.expired);
        for i in 0..self.expired.len() {
            let user_data = self.expired[i];
            self.complete(user_data, -libc::ETIME);
        }
        self.expired.clear();
    }

    /// Queues a descriptor operation; attempts it at once if nothing is ahead of it.
    fn start(&mut self, user_data: u64, op: Op) {
        let (fd, side) = op.target();
        let queue = self.fds.entry(fd).or_default().queue(side);
        queue.push_back(user_data);
        let first = queue.len() == 1;
        let old = self.ops.insert(user_data, op);
        debug_assert!(old.is_none(), "user data {user_data} is already pending");
        if first {
            self.run(fd, side, false);
        }
    }

    /// Runs one side of `fd`: attempts the operation at the head of its queue until one
    /// would block, the queue is empty or the budget is used up.
    fn run(&mut self, fd: i32, side: Side, woken: bool) {
        for _ in 0..BUDGET {
            let Some(state) = self.fds.get_mut(&fd) else {
                return;
            };
            let Some(&user_data) = state.queue(side).front() else {
                if state.read.is_empty() && state.write.is_empty() {
                    self.fds.remove(&fd);
                }
                return;
            };
            let op = self
                .ops
                .get_mut(&user_data)
                .expect("queued ops are pending");
            let yields_fds = op.yields_fds();
            let (result, buf, more, wait) = match op.attempt(&mut self.bufs, woken) {
                Step::Done(result) => (result, None, false, false),
                Step::More { result, buf } => (result, buf, true, false),
                Step::MoreThenWait { result, buf } => (result, buf, true, true),
                Step::Short { result, buf } => (result, buf, true, state.trusts_short_reads()),
                Step::Wait => {
                    if !self.register(fd, side) {
                        continue;
                    }
                    if side == Side::Read {
                        self.fds.get_mut(&fd).expect("registered").read_waited = true;
                    }
                    return;
                }
            };
            if !more {
                state.queue(side).pop_front();
                self.ops.remove(&user_data);
            }
            if yields_fds && result >= 0 {
                self.new_fds.push(result);
            }
            self.ready.push(Cqe {
                user_data,
                result,
                more,
                buf,
            });
            if wait && self.register(fd, side) {
                return;
            }
        }
        self.retry.push((fd, side));
    }

    /// Makes sure epoll watches `fd`. If it cannot (for example a regular file, or a closed
    /// descriptor), the operation at the head of `side` fails with the reason and false is
    /// returned: the queue goes on with the next one.
    fn register(&mut self, fd: i32, side: Side) -> bool {
        let state = self
            .fds
            .get_mut(&fd)
            .expect("a running descriptor has state");
        if state.registered {
            return true;
        }
        match self.poller.add(fd) {
            Ok(()) => {
                state.registered = true;
                true
            }
            Err(e) => {
                let user_data = state.queue(side).pop_front().expect("a head op");
                self.ops.remove(&user_data);
                self.complete(user_data, neg(&e));
                false
            }
        }
    }

    /// Cancels operation `target` (final `-ECANCELED`); false if it is not pending (or is a
    /// file job already running: it finishes).
    fn cancel(&mut self, target: u64) -> bool {
        if self.timers.remove(target) {
            self.complete(target, -libc::ECANCELED);
            return true;
        }
        if self.cancel_files(|job| job.user_data == target) > 0 {
            return true;
        }
        let Some(op) = self.ops.remove(&target) else {
            return false;
        };
        let (fd, side) = op.target();
        let queue = self
            .fds
            .get_mut(&fd)
            .expect("pending ops have state")
            .queue(side);
        let at = queue.iter().position(|&u| u == target).expect("queued");
        queue.remove(at);
        self.complete(target, -libc::ECANCELED);
        if at == 0 {
            // The next operation (if any) is first now: attempt it.
            self.run(fd, side, false);
        }
        true
    }

    /// Cancels every operation on `fd`, in queue order, and its file jobs not started yet;
    /// returns how many.
    fn cancel_fd(&mut self, fd: i32) -> i32 {
        let files = self.cancel_files(|job| job.fd == fd) as i32;
        let Some(state) = self.fds.remove(&fd) else {
            return files;
        };
        let mut n = files;
        for user_data in state.read.into_iter().chain(state.write) {
            self.ops.remove(&user_data);
            self.complete(user_data, -libc::ECANCELED);
            n += 1;
        }
        n
    }

    /// Closes `fd`. The worker closes only once every operation on it is over; any left are
    /// cancelled first, so that none can reach a later file with the same number.
    fn close(&mut self, fd: i32, user_data: u64) {
        let stale = self.cancel_fd(fd);
        if stale > 0 {
            tracing::debug!(fd, ops = stale, "close cancelled pending operations");
        }
        // SAFETY: the worker hands the descriptor over with the close; nothing uses it after.
        let res = match syscall!(close(fd)) {
            Ok(_) => 0,
            Err(e) => neg(&e),
        };
        self.complete(user_data, res);
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

impl Drop for Driver {
    fn drop(&mut self) {
        // Pending operations own nothing here (buffers belong to the worker's table, and no
        // attempt runs outside push/wait). New descriptors not handed out would leak.
        for &fd in &self.new_fds {
            // SAFETY: accept or open returned this descriptor and no one took it from `ready`.
            let _ = syscall!(close(fd));
        }
        // The epoll descriptor closes with `poller`.
    }
}
