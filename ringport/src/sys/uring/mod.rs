//! The io_uring backend: one ring per worker thread, never shared.
//!
//! Rings are set up with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (6.1+),
//! else `COOP_TASKRUN`; each loop turn is one `io_uring_enter` that submits the queued
//! operations and waits for completions. Receives are multishot into a provided buffer ring.
//!
//! **Full queues.** When the submission queue is full, [`Driver::push`] submits what is
//! queued. If the kernel takes nothing (its completion queue is full: `EBUSY`; it is short of
//! memory: `EAGAIN`), the driver moves completions aside into its own list, handed out at the
//! next [`Driver::wait`], so that the kernel can post more; with none to move, it waits for one,
//! at most [`BRIEF_WAIT`]. No step spins. Nothing the kernel reads is owned here (see
//! [`Sub`]), so submitting early frees nothing the queue still points to.

pub(crate) mod buf_ring;
pub mod probe;
mod send_file;

use std::io;
use std::rc::Rc;
use std::time::Duration;

use io_uring::types::{CancelBuilder, Fd, SubmitArgs};
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::{Cqe, DriverConfig, Gather, Sub};
use crate::buf::BufPool;
use buf_ring::BufRing;
use send_file::{SendFiles, Step, Transfer, INTERNAL};

/// The longest a full queue waits for a completion before submitting again; also the pause
/// after the kernel says it is short of memory (`EAGAIN`).
const BRIEF_WAIT: Duration = Duration::from_millis(10);

// The kernel reads our `Timespec` and `OpenHow` through the io-uring crate's pointer types,
// whose layout is the same kernel structures'.
const _: () = assert!(std::mem::size_of::<super::Timespec>() == 16);
const _: () = assert!(std::mem::size_of::<types::Timespec>() == 16);
const _: () = assert!(std::mem::size_of::<super::OpenHow>() == 24);
const _: () = assert!(std::mem::size_of::<types::OpenHow>() == 24);

/// One worker's ring.
pub(crate) struct Driver {
    // Field order is drop order: the ring (and with it every registration) goes first.
    ring: IoUring,
    buf_ring: BufRing,
    pool: Rc<BufPool>,
    /// Transfers of `send_file` waiting for their socket.
    send_files: SendFiles,
    /// Completions taken off the ring (or made by the driver: speculative `sendfile` rounds)
    /// that the worker has not been handed yet.
    reaped: Vec<Cqe>,
    /// Completions of the driver's own polls, not handled yet.
    internal: Vec<(u64, i32)>,
    /// Setup flags this ring got, for logs.
    flags: &'static str,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("uring::Driver")
            .field("flags", &self.flags)
            .finish()
    }
}

impl Driver {
    /// Sets up a ring on the calling thread and registers `pool` as its provided buffers.
    pub(crate) fn new(cfg: DriverConfig, pool: Rc<BufPool>) -> io::Result<Self> {
        let cq = (cfg.entries * 4).max(u32::from(pool.count()) * 2);
        let (ring, flags) = match IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_submit_all()
            .setup_cqsize(cq)
            .build(cfg.entries)
        {
            Ok(r) => (r, "SINGLE_ISSUER|DEFER_TASKRUN"),
            Err(_) => match IoUring::builder()
                .setup_coop_taskrun()
                .setup_cqsize(cq)
                .build(cfg.entries)
            {
                Ok(r) => (r, "COOP_TASKRUN"),
                Err(_) => (
                    IoUring::builder().setup_cqsize(cq).build(cfg.entries)?,
                    "none",
                ),
            },
        };
        let buf_ring = BufRing::register(&ring, &pool)?;
        tracing::debug!(flags, entries = cfg.entries, "io_uring ring set up");
        Ok(Driver {
            ring,
            buf_ring,
            pool,
            send_files: SendFiles::default(),
            reaped: Vec::new(),
            internal: Vec::new(),
            flags,
        })
    }

    /// Queues one submission, making room first if the queue is full.
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        let entry = match sub {
            Sub::SendFile {
                sock,
                file,
                offset,
                len,
            } => {
                let t = Transfer {
                    user_data,
                    sock,
                    file,
                    offset,
                    len,
                };
                match self.send_files.attempt(t) {
                    Step::Done(cqe) => {
                        self.reaped.push(cqe);
                        return Ok(());
                    }
                    Step::Poll { user_data, sock } => poll_out(sock, user_data),
                }
            }
            sub => entry(sub).user_data(user_data),
        };
        self.push_entry(&entry)
    }

    fn push_entry(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer in `entry` points into memory owned by its operation's
            // entry in the worker's table until the final completion (the `Sub` contract), so
            // it outlives whatever the kernel does with it, however late it is submitted.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.make_room()?;
        }
    }

    /// The submission queue is full: submits it; if the kernel takes nothing, reaps
    /// completions so that it can post more, or waits briefly for one.
    fn make_room(&mut self) -> io::Result<()> {
        let queued = self.ring.submission().len();
        self.enter(0)?;
        if self.ring.submission().len() < queued {
            return Ok(());
        }
        if self.reap() == 0 {
            self.wait_briefly()?;
            self.reap();
        }
        Ok(())
    }

    /// One `io_uring_enter`: submits what is queued and waits for `want` completions.
    /// Transient refusals are not errors: `EINTR`; `EBUSY` (the completion queue is full:
    /// the caller reaps); `EAGAIN` (the kernel is short of memory: pause briefly).
    fn enter(&mut self, want: usize) -> io::Result<()> {
        match self.ring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR | libc::EBUSY) => Ok(()),
                Some(libc::EAGAIN) => {
                    std::thread::sleep(BRIEF_WAIT);
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    /// Waits for one completion for at most [`BRIEF_WAIT`].
    fn wait_briefly(&mut self) -> io::Result<()> {
        let ts = types::Timespec::from(BRIEF_WAIT);
        let args = SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                std::thread::sleep(BRIEF_WAIT);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every completion off the ring (the driver's own polls aside); returns how many.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        for c in self.ring.completion() {
            n += 1;
            if c.user_data() & INTERNAL != 0 {
                self.internal.push((c.user_data(), c.result()));
                continue;
            }
            self.reaped.push(Cqe {
                user_data: c.user_data(),
                result: c.result(),
                more: cqueue::more(c.flags()),
                buf: cqueue::buffer_select(c.flags()),
            });
        }
        n
    }

    /// Hands buffers back to the kernel: they are published at once (one tail store).
    pub(crate) fn recycle(&mut self, bids: &[u16]) {
        if bids.is_empty() {
            return;
        }
        for &bid in bids {
            self.buf_ring.push(&self.pool, bid);
        }
        self.buf_ring.publish();
    }

    /// Submits, waits for at least one completion if `wait` and none is at hand, and appends
    /// every available completion to `out`.
    pub(crate) fn wait(&mut self, out: &mut Vec<Cqe>, wait: bool) -> io::Result<()> {
        let at_hand = !self.reaped.is_empty()
            || !self.internal.is_empty()
            || !self.ring.completion().is_empty();
        self.enter(usize::from(wait && !at_hand))?;
        self.reap();
        // A parked transfer's poll completed: send its next round (which may park it again).
        while !self.internal.is_empty() {
            for (internal, result) in std::mem::take(&mut self.internal) {
                match self.send_files.on_poll(internal, result) {
                    Step::Done(cqe) => self.reaped.push(cqe),
                    Step::Poll { user_data, sock } => {
                        self.push_entry(&poll_out(sock, user_data))?;
                    }
                }
            }
        }
        out.append(&mut self.reaped);
        Ok(())
    }
}

/// The submission queue entry of `sub` (all but `SendFile`, which the driver runs itself).
fn entry(sub: Sub) -> squeue::Entry {
    match sub {
        Sub::AcceptMulti { fd } => opcode::AcceptMulti::new(Fd(fd))
            .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
            .build(),
        Sub::RecvMulti { fd } => opcode::RecvMulti::new(Fd(fd), buf_ring::GROUP).build(),
        Sub::Send { fd, ptr, len } => opcode::Send::new(Fd(fd), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build(),
        Sub::SendV { fd, gather } => opcode::SendMsg::new(Fd(fd), Gather::msghdr(gather))
            .flags(libc::MSG_NOSIGNAL as u32)
            .build(),
        Sub::Connect { fd, addr, len } => opcode::Connect::new(Fd(fd), addr, len).build(),
        Sub::Close { fd, .. } => opcode::Close::new(Fd(fd)).build(),
        // The kernel reads these through the crate's pointer types: same layout (asserted above).
        Sub::Timeout { ts } => opcode::Timeout::new(ts.cast::<types::Timespec>()).build(),
        Sub::OpenBeneath { dir, path, how } => {
            opcode::OpenAt2::new(Fd(dir), path, how.cast::<types::OpenHow>()).build()
        }
        Sub::ReadAt {
            fd,
            ptr,
            len,
            offset,
        } => opcode::Read::new(Fd(fd), ptr, len).offset(offset).build(),
        Sub::WriteAt {
            fd,
            ptr,
            len,
            offset,
        } => opcode::Write::new(Fd(fd), ptr, len).offset(offset).build(),
        Sub::Cancel { user_data } => opcode::AsyncCancel::new(user_data).build(),
        Sub::CancelFd { fd } => opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all()).build(),
        Sub::PollIn { fd } => opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build(),
        Sub::SendFile { .. } => unreachable!("run by the driver itself"),
    }
}

/// A one-shot poll for writability.
fn poll_out(sock: i32, user_data: u64) -> squeue::Entry {
    opcode::PollAdd::new(Fd(sock), libc::POLLOUT as u32)
        .build()
        .user_data(user_data)
}
