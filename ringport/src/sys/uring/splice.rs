//! TransmitFile by `splice`: file → pipe → socket as io_uring operations, the alternative to
//! readiness-driven `sendfile` (see `send_file.rs`). Chosen with `RINGPORT_SEND_FILE=splice`
//! for measurements; `docs/BENCHMARKS.md` has the figures that made `sendfile` the default.
//!
//! io_uring always runs `SPLICE` on its io-wq threads, and a short splice breaks a link, so a
//! chunk is two unlinked steps: fill the pipe from the file at the offset, then drain it into
//! the socket (waiting for `POLLOUT` when the socket is full).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use slab::Slab;

use super::send_file::{Transfer, INTERNAL, PER_ROUND};
use super::Cqe;

/// Bit of an internal `user_data` that marks a splice step (the others are `sendfile` polls).
const SPLICE: u64 = 1 << 62;
/// Bit of an internal `user_data` that marks the pipe → socket step.
const DRAIN: u64 = 1 << 61;
/// Bit of an internal `user_data` that marks a wait for `POLLOUT`.
const POLLING: u64 = 1 << 60;
/// Bits that are not the transfer's index.
const TAGS: u64 = INTERNAL | SPLICE | DRAIN | POLLING;
/// Pipe size asked for (the default limit of `/proc/sys/fs/pipe-max-size`).
const PIPE_SIZE: i32 = 1 << 20;

/// A pipe and how much it can hold.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: u64,
}

impl Pipe {
    fn new() -> std::io::Result<Self> {
        let mut fds = [0; 2];
        syscall!(pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK))?;
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let size = syscall!(fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE))
            .or_else(|_| syscall!(fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)))?;
        Ok(Pipe {
            read,
            write,
            size: size as u64,
        })
    }
}

/// One transfer round in progress.
#[derive(Debug)]
struct Splicing {
    t: Transfer,
    pipe: Pipe,
    /// Bytes in the pipe.
    in_pipe: u64,
    /// Bytes that reached the socket this round.
    sent: u64,
    /// The internal `user_data` of the step in flight.
    step: u64,
}

/// What to do next with a splice transfer.
#[derive(Debug)]
pub(crate) enum Step {
    /// The round is over.
    Done(Cqe),
    /// Submit this.
    Submit(squeue::Entry),
}

/// The splice transfers of one ring, with a pool of empty pipes.
#[derive(Debug, Default)]
pub(crate) struct Splices {
    active: Slab<Splicing>,
    pipes: Vec<Pipe>,
}

impl Splices {
    /// Starts a round.
    pub(crate) fn start(&mut self, t: Transfer) -> Step {
        let pipe = match self.pipes.pop().map_or_else(Pipe::new, Ok) {
            Ok(p) => p,
            Err(e) => return done(t.user_data, -e.raw_os_error().unwrap_or(libc::EMFILE)),
        };
        let idx = self.active.insert(Splicing {
            t,
            pipe,
            in_pipe: 0,
            sent: 0,
            step: 0,
        });
        self.fill(idx)
    }

    fn submit(&mut self, idx: usize, tag: u64, entry: squeue::Entry) -> Step {
        let step = INTERNAL | SPLICE | tag | idx as u64;
        self.active[idx].step = step;
        Step::Submit(entry.user_data(step))
    }

    fn fill(&mut self, idx: usize) -> Step {
        let s = &self.active[idx];
        let len = (s.t.len - s.sent).min(s.pipe.size).min(PER_ROUND - s.sent) as u32;
        let off = (s.t.offset + s.sent) as i64;
        let entry = opcode::Splice::new(Fd(s.t.file), off, Fd(s.pipe.write.as_raw_fd()), -1, len)
            .flags(libc::SPLICE_F_MOVE)
            .build();
        self.submit(idx, 0, entry)
    }

    fn drain(&mut self, idx: usize) -> Step {
        let s = &self.active[idx];
        let entry = opcode::Splice::new(
            Fd(s.pipe.read.as_raw_fd()),
            -1,
            Fd(s.t.sock),
            -1,
            s.in_pipe as u32,
        )
        .flags(libc::SPLICE_F_MOVE)
        .build();
        self.submit(idx, DRAIN, entry)
    }

    /// Whether `internal` belongs to a splice transfer.
    pub(crate) fn owns(internal: u64) -> bool {
        internal & SPLICE != 0
    }

    /// A step of transfer `internal` completed with `result`.
    pub(crate) fn on_step(&mut self, internal: u64, result: i32) -> Step {
        let idx = (internal & !TAGS) as usize;
        if internal & POLLING != 0 {
            return if result < 0 {
                self.finish(idx, result)
            } else {
                self.drain(idx)
            };
        }
        let s = &mut self.active[idx];
        match result {
            r if r == -libc::EAGAIN && internal & DRAIN != 0 => {
                let entry = opcode::PollAdd::new(Fd(s.t.sock), libc::POLLOUT as u32).build();
                self.submit(idx, POLLING, entry)
            }
            r if r < 0 => self.finish(idx, r),
            0 if internal & DRAIN == 0 => self.finish(idx, 0), // the file ended
            n if internal & DRAIN == 0 => {
                s.in_pipe = n as u64;
                self.drain(idx)
            }
            n => {
                s.in_pipe -= n as u64;
                s.sent += n as u64;
                if s.in_pipe > 0 {
                    self.drain(idx)
                } else if s.sent < s.t.len.min(PER_ROUND) {
                    self.fill(idx)
                } else {
                    self.finish(idx, 0)
                }
            }
        }
    }

    /// Ends the round: reports the bytes sent, or the error if none was.
    fn finish(&mut self, idx: usize, error: i32) -> Step {
        let s = self.active.remove(idx);
        let result = if s.sent > 0 { s.sent as i32 } else { error };
        if s.in_pipe == 0 {
            self.pipes.push(s.pipe); // an empty pipe can serve again; a dirty one is closed
        }
        done(s.t.user_data, result)
    }

    /// The internal `user_data` of the step in flight for operation `user_data`, if any.
    pub(crate) fn in_flight(&self, user_data: u64) -> Option<u64> {
        self.active
            .iter()
            .find(|(_, s)| s.t.user_data == user_data)
            .map(|(_, s)| s.step)
    }
}

fn done(user_data: u64, result: i32) -> Step {
    Step::Done(Cqe {
        user_data,
        result,
        more: false,
        buf: None,
    })
}
