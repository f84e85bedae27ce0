//! The worker's table of operations in flight: the per-I/O data (IOCP's OVERLAPPED).
//!
//! Each operation's index in the table is its `user_data`, so a completion finds its owner
//! without looking at descriptor numbers (which the kernel reuses). An entry, and the buffer in
//! it, lives until the operation's final completion, whatever was cancelled or closed meanwhile.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;

use slab::Slab;

use crate::buf::{BufPool, SendBuf};
use crate::sys::{Cqe, Driver, Sub};

/// Who receives an operation's completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A connection, by slot.
    Conn(usize),
    /// A listener, by index.
    Listener(usize),
    /// The worker's wake-up eventfd.
    Waker,
    /// The worker's shutdown timer.
    ShutdownTimer,
}

/// What an operation is, with everything it owns until its final completion.
#[derive(Debug)]
pub(crate) enum OpData {
    Accept,
    Recv,
    Send {
        buf: SendBuf,
        done: usize,
    },
    SendFile {
        file: Rc<File>,
        offset: u64,
        len: u64,
        done: u64,
    },
    Open {
        _dir: Arc<OwnedFd>,
        _path: CString,
    },
    Connect {
        _addr: Box<socket2::SockAddr>,
    },
    Timeout,
    Close,
    Cancel,
    Poll,
}

/// One operation in flight.
#[derive(Debug)]
pub(crate) struct Op {
    pub(crate) owner: Owner,
    pub(crate) data: OpData,
}

/// The part of a worker that starts operations: driver, operation table and buffers.
#[derive(Debug)]
pub(crate) struct Core {
    // Field order is drop order: the driver (the ring) goes before the buffers it may write.
    pub(crate) driver: Driver,
    pub(crate) ops: Slab<Op>,
    pub(crate) pool: Rc<BufPool>,
    /// Completions made up locally (a submission that could not be queued fails through here).
    pub(crate) local: VecDeque<Cqe>,
    pub(crate) worker: usize,
}

impl Core {
    /// Starts an operation owned by `owner`; returns its index (its `user_data`).
    pub(crate) fn start(&mut self, owner: Owner, data: OpData, sub: Sub) -> usize {
        let idx = self.ops.insert(Op { owner, data });
        if let Err(e) = self.driver.push(sub, idx as u64) {
            tracing::error!(worker = self.worker, "cannot queue an operation: {e}");
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            self.local.push_back(Cqe {
                user_data: idx as u64,
                result: -errno,
                more: false,
                buf: None,
            });
        }
        idx
    }

    /// Starts sending `out` from byte `done` on.
    pub(crate) fn start_send(&mut self, slot: usize, fd: i32, out: Outgoing, done: u64) -> usize {
        match out {
            Outgoing::Buf(buf) => {
                let rest = &buf.as_slice()[done as usize..];
                // A single send takes at most u32::MAX bytes; the rest is continued on completion.
                let len = rest.len().min(u32::MAX as usize) as u32;
                let sub = Sub::Send {
                    fd,
                    ptr: rest.as_ptr(),
                    len,
                };
                // The Vec/Arc/RecvBuf heap storage does not move when `buf` moves into the table.
                let data = OpData::Send {
                    buf,
                    done: done as usize,
                };
                self.start(Owner::Conn(slot), data, sub)
            }
            Outgoing::File { file, offset, len } => {
                let (from, rest) = (offset + done, len - done);
                let sub = Sub::SendFile {
                    sock: fd,
                    file: file.as_raw_fd(),
                    offset: from,
                    len: rest,
                };
                // The operation keeps the whole range; `done` says how far it got.
                let data = OpData::SendFile {
                    file,
                    offset,
                    len,
                    done,
                };
                self.start(Owner::Conn(slot), data, sub)
            }
        }
    }

    /// Asks the kernel to cancel operation `idx`; its own completion comes back as usual.
    pub(crate) fn cancel(&mut self, owner: Owner, idx: usize) {
        self.start(
            owner,
            OpData::Cancel,
            Sub::Cancel {
                user_data: idx as u64,
            },
        );
    }
}

/// Something queued for sending, in order: a buffer or a file range.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Buf(SendBuf),
    File {
        file: Rc<File>,
        offset: u64,
        len: u64,
    },
}

/// Maps a negative result to an error.
pub(crate) fn errno(result: i32) -> io::Error {
    io::Error::from_raw_os_error(-result)
}
