//! The io_uring backend: one ring per worker thread, never shared.
//!
//! Rings are set up with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (6.1+),
//! else `COOP_TASKRUN`; each loop turn is one `io_uring_enter` that submits the queued
//! operations and waits for completions. Receives are multishot into a provided buffer ring.

pub(crate) mod buf_ring;
pub mod probe;

use std::io;
use std::rc::Rc;

use io_uring::types::{CancelBuilder, Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use super::{Cqe, DriverConfig, Sub};
use crate::buf::BufPool;
use buf_ring::BufRing;

/// One worker's ring.
pub(crate) struct Driver {
    // Field order is drop order: the ring (and with it every registration) goes first.
    ring: IoUring,
    buf_ring: BufRing,
    pool: Rc<BufPool>,
    /// Timeouts whose `Timespec` the kernel has not read yet (it copies it when it takes the
    /// submission); cleared after each submit. Boxed so that their addresses stay put when
    /// the vector grows.
    #[allow(clippy::vec_box)]
    timespecs: Vec<Box<Timespec>>,
    /// Scratch for recycled buffer ids.
    recycled: Vec<u16>,
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
            timespecs: Vec::new(),
            recycled: Vec::new(),
            flags,
        })
    }

    /// Queues one submission, submitting first if the queue is full.
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        let entry = self.entry(sub).user_data(user_data);
        loop {
            // SAFETY: every pointer in `entry` stays valid until the operation's final
            // completion (see `Sub`), or, for timespecs, until the next submit.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.submit(false)?;
        }
    }

    fn entry(&mut self, sub: Sub) -> squeue::Entry {
        match sub {
            Sub::AcceptMulti { fd } => opcode::AcceptMulti::new(Fd(fd))
                .flags(libc::SOCK_CLOEXEC)
                .build(),
            Sub::RecvMulti { fd } => opcode::RecvMulti::new(Fd(fd), buf_ring::GROUP).build(),
            Sub::Send { fd, ptr, len } => opcode::Send::new(Fd(fd), ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build(),
            Sub::Connect { fd, addr, len } => opcode::Connect::new(Fd(fd), addr, len).build(),
            Sub::Close { fd } => opcode::Close::new(Fd(fd)).build(),
            Sub::Timeout { nanos } => {
                let ts = Box::new(
                    Timespec::new()
                        .sec(nanos / 1_000_000_000)
                        .nsec((nanos % 1_000_000_000) as u32),
                );
                let entry = opcode::Timeout::new(&*ts).build();
                self.timespecs.push(ts);
                entry
            }
            Sub::Cancel { user_data } => opcode::AsyncCancel::new(user_data).build(),
            Sub::CancelFd { fd } => {
                opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all()).build()
            }
            Sub::PollIn { fd } => opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
                .multi(true)
                .build(),
        }
    }

    fn submit(&mut self, wait: bool) -> io::Result<()> {
        let want = usize::from(wait);
        match self.ring.submit_and_wait(want) {
            Ok(_) => {}
            // Interrupted, or the completion queue is full: reap what is there first.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) => {}
            Err(e) => return Err(e),
        }
        if self.ring.submission().is_empty() {
            self.timespecs.clear();
        }
        Ok(())
    }

    /// Recycles returned buffers, submits, waits for at least one completion if `wait`, and
    /// appends every available completion to `out`.
    pub(crate) fn wait(&mut self, out: &mut Vec<Cqe>, wait: bool) -> io::Result<()> {
        self.pool.take_returned(&mut self.recycled);
        if !self.recycled.is_empty() {
            for bid in self.recycled.drain(..) {
                self.buf_ring.push(&self.pool, bid);
            }
            self.buf_ring.publish();
        }
        let ready = !self.ring.completion().is_empty();
        self.submit(wait && !ready)?;
        out.extend(self.ring.completion().map(|c| Cqe {
            user_data: c.user_data(),
            result: c.result(),
            more: cqueue::more(c.flags()),
            buf: cqueue::buffer_select(c.flags()),
        }));
        Ok(())
    }
}
