//! The io_uring backend: one ring per worker thread, never shared.
//!
//! Rings are set up with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (6.1+),
//! else `COOP_TASKRUN`; each loop turn is one `io_uring_enter` that submits the queued
//! operations and waits for completions. Receives are multishot into a provided buffer ring.

pub(crate) mod buf_ring;
pub mod probe;
mod send_file;
mod splice;

use std::io;
use std::rc::Rc;

use io_uring::types::{CancelBuilder, Fd, OpenHow, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use super::{Cqe, DriverConfig, Sub};
use crate::buf::BufPool;
use buf_ring::BufRing;
use send_file::{SendFiles, Step, Transfer, INTERNAL};
use splice::Splices;

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
    /// The same for `open_how` structures.
    #[allow(clippy::vec_box)]
    hows: Vec<Box<OpenHow>>,
    /// Transfers of `send_file` waiting for their socket.
    send_files: SendFiles,
    /// Transfers of `send_file` by splice, when chosen instead.
    splices: Option<Splices>,
    /// Completions made by the driver itself (speculative `sendfile` rounds).
    ready: Vec<Cqe>,
    /// Scratch for the driver's own poll completions.
    internal: Vec<(u64, i32)>,
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
            hows: Vec::new(),
            send_files: SendFiles::default(),
            splices: cfg.splice.then(Splices::default),
            ready: Vec::new(),
            internal: Vec::new(),
            recycled: Vec::new(),
            flags,
        })
    }

    /// Queues one submission, submitting first if the queue is full.
    pub(crate) fn push(&mut self, sub: Sub, user_data: u64) -> io::Result<()> {
        let entry = match sub {
            Sub::SendFile {
                sock,
                file,
                offset,
                len,
            } if self.splices.is_some() => {
                let t = Transfer {
                    user_data,
                    sock,
                    file,
                    offset,
                    len,
                };
                match self.splices.as_mut().expect("splice mode").start(t) {
                    splice::Step::Done(cqe) => {
                        self.ready.push(cqe);
                        return Ok(());
                    }
                    splice::Step::Submit(entry) => entry,
                }
            }
            Sub::SendFile {
                sock,
                file,
                offset,
                len,
            } => {
                match self.send_files.attempt(Transfer {
                    user_data,
                    sock,
                    file,
                    offset,
                    len,
                }) {
                    Step::Done(cqe) => {
                        self.ready.push(cqe);
                        return Ok(());
                    }
                    Step::Poll { user_data, sock } => poll_out(sock, user_data),
                }
            }
            Sub::Cancel { user_data: target } => {
                // A parked send_file waits on the driver's own poll: cancel that.
                let target = self
                    .send_files
                    .parked(target)
                    .or_else(|| self.splices.as_ref()?.in_flight(target))
                    .unwrap_or(target);
                opcode::AsyncCancel::new(target)
                    .build()
                    .user_data(user_data)
            }
            sub => self.entry(sub).user_data(user_data),
        };
        self.push_entry(entry)
    }

    fn push_entry(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer in `entry` stays valid until the operation's final
            // completion (see `Sub`), or, for timespecs and open_how, until the next submit.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.submit(false)?;
        }
    }

    fn entry(&mut self, sub: Sub) -> squeue::Entry {
        match sub {
            Sub::AcceptMulti { fd } => opcode::AcceptMulti::new(Fd(fd))
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
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
            Sub::OpenBeneath { dir, path } => {
                let how = Box::new(
                    OpenHow::new()
                        .flags(super::OPEN_FLAGS)
                        .resolve(super::OPEN_RESOLVE),
                );
                let entry = opcode::OpenAt2::new(Fd(dir), path, &*how).build();
                self.hows.push(how);
                entry
            }
            Sub::SendFile { .. } => unreachable!("handled by push"),
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
            self.hows.clear();
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
        let ready = !self.ring.completion().is_empty() || !self.ready.is_empty();
        self.submit(wait && !ready)?;
        for c in self.ring.completion() {
            if c.user_data() & INTERNAL != 0 {
                self.internal.push((c.user_data(), c.result()));
                continue;
            }
            out.push(Cqe {
                user_data: c.user_data(),
                result: c.result(),
                more: cqueue::more(c.flags()),
                buf: cqueue::buffer_select(c.flags()),
            });
        }
        for (internal, result) in std::mem::take(&mut self.internal) {
            if Splices::owns(internal) {
                match self
                    .splices
                    .as_mut()
                    .expect("splice mode")
                    .on_step(internal, result)
                {
                    splice::Step::Done(cqe) => out.push(cqe),
                    splice::Step::Submit(entry) => self.push_entry(entry)?,
                }
                continue;
            }
            match self.send_files.on_poll(internal, result) {
                Step::Done(cqe) => out.push(cqe),
                Step::Poll { user_data, sock } => self.push_entry(poll_out(sock, user_data))?,
            }
        }
        out.append(&mut self.ready);
        Ok(())
    }
}

/// A one-shot poll for writability.
fn poll_out(sock: i32, user_data: u64) -> squeue::Entry {
    opcode::PollAdd::new(Fd(sock), libc::POLLOUT as u32)
        .build()
        .user_data(user_data)
}
