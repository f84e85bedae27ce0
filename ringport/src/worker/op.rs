//! The worker's table of operations in flight: the per-I/O data (IOCP's OVERLAPPED).
//!
//! Each operation's `user_data` is its index in the table plus a generation, so a completion
//! finds its owner without looking at descriptor numbers (which the kernel reuses), and a
//! completion that does not match the current occupant of its index (a duplicate, or one that
//! outlived its operation by a bug) is refused instead of reaching an unrelated operation. An
//! entry, and everything the kernel may read or write in it, lives until the operation's final
//! completion, whatever was cancelled or closed meanwhile.

use std::collections::{HashSet, VecDeque};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use super::deadlines::Deadlines;
use crate::buf::{BufPool, SendBuf};
use crate::dir::Dir;
use crate::key::CompletionKey;
use crate::sys::{code, file_raw, Cqe, Driver, Gather, OpenHow, Raw, Sub, Timespec};

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
    /// The worker's clock for send timeouts.
    Tick,
    /// A timer of the handler's, for the worker rather than one connection.
    Timer,
    /// The kernel timer of the connections' deadlines.
    Deadlines,
    /// Nobody: a cancellation of one of the worker's own operations, whose completion only
    /// frees its entry (the cancelled operation reports to its own owner).
    Detached,
}

/// What an operation is, with everything the kernel reads or writes for it, owned until its
/// final completion (boxed where the kernel holds a pointer, so that the table may grow).
#[derive(Debug)]
pub(crate) enum OpData {
    Accept,
    Recv,
    Send {
        buf: SendBuf,
        done: usize,
    },
    /// Several buffers in one call; `skip` bytes of the first were sent before.
    SendV {
        bufs: Vec<SendBuf>,
        skip: usize,
        _gather: Box<Gather>,
    },
    SendFile {
        file: Rc<File>,
        offset: u64,
        len: u64,
        done: u64,
    },
    Open {
        _dir: Arc<Dir>,
        _path: CString,
        _how: Box<OpenHow>,
    },
    Connect {
        _addr: Box<socket2::SockAddr>,
    },
    Timeout {
        _ts: Box<Timespec>,
    },
    /// Reading into the spare capacity of `buf` (its length is where the bytes go).
    Read {
        buf: Vec<u8>,
    },
    Write {
        buf: SendBuf,
        offset: u64,
        done: usize,
    },
    Close,
    Cancel,
    Poll,
}

/// An operation's `user_data`: its table index (bits 0–31) and generation (bits 32–62). Bit 63
/// belongs to the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpId(u64);

impl OpId {
    fn new(index: usize, generation: u32) -> Self {
        let index = u32::try_from(index).expect("fewer than 2^32 operations in flight");
        OpId(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The value given to the backend.
    pub(crate) fn user_data(self) -> u64 {
        self.0
    }

    /// The operation a completion's `user_data` names.
    pub(crate) fn from_user_data(user_data: u64) -> Self {
        OpId(user_data)
    }
}

/// One operation in flight.
#[derive(Debug)]
pub(crate) struct Op {
    pub(crate) owner: Owner,
    pub(crate) data: OpData,
    generation: u32,
}

/// The operations in flight.
#[derive(Debug)]
pub(crate) struct Ops {
    slab: Slab<Op>,
    /// Generation of the next operation: 31 bits, never 0.
    next: u32,
}

impl Ops {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Ops {
            slab: Slab::with_capacity(n),
            next: 1,
        }
    }

    fn insert(&mut self, owner: Owner, data: OpData) -> OpId {
        let generation = self.next;
        self.next = (self.next + 1) & 0x7fff_ffff;
        if self.next == 0 {
            self.next = 1;
        }
        let index = self.slab.insert(Op {
            owner,
            data,
            generation,
        });
        OpId::new(index, generation)
    }

    /// Records an operation that no backend was given: it never completes (a test's stand-in
    /// for an operation the kernel does not finish).
    #[cfg(test)]
    pub(crate) fn insert_phantom(&mut self, owner: Owner) -> OpId {
        self.insert(owner, OpData::Poll)
    }

    /// The operation `id` names, if it is still in flight.
    pub(crate) fn get(&self, id: OpId) -> Option<&Op> {
        self.slab
            .get(id.index())
            .filter(|op| op.generation == id.generation())
    }

    /// Frees the entry of `id` (its final completion came).
    ///
    /// # Panics
    /// If `id` is not in flight (callers check with [`Ops::get`] first).
    pub(crate) fn remove(&mut self, id: OpId) -> Op {
        assert!(self.get(id).is_some(), "operation {id:?} is not in flight");
        self.slab.remove(id.index())
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }
}

/// Per-connection limits the port applies by itself, so that no handler can forget them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Provided buffers a connection may hold before it stops receiving.
    pub(crate) max_bufs: u32,
    /// Unsent bytes at which a connection stops receiving.
    pub(crate) max_unsent: usize,
    /// Free buffers under which the pool is scarce: then a connection that holds
    /// [`Limits::scarce_share`] or more stops receiving until the pool recovers.
    pub(crate) scarce_below: u32,
    /// See [`Limits::scarce_below`].
    pub(crate) scarce_share: u32,
}

impl Limits {
    /// Limits for a pool of `pool` buffers.
    pub(crate) fn new(max_bufs: u32, max_unsent: usize, pool: u16) -> Self {
        let pool = u32::from(pool);
        Limits {
            max_bufs: max_bufs.clamp(1, pool),
            max_unsent: max_unsent.max(1),
            scarce_below: (pool / 4).max(1),
            scarce_share: (pool / 256).clamp(2, 16),
        }
    }
}

/// The part of a worker that starts operations: driver, operation table and buffers.
#[derive(Debug)]
pub(crate) struct Core {
    // Field order is drop order: the driver (the ring) goes before the buffers it may write.
    pub(crate) driver: Driver,
    pub(crate) ops: Ops,
    pub(crate) pool: Rc<BufPool>,
    /// Completions made up locally (a submission that could not be queued fails through here).
    pub(crate) local: VecDeque<Cqe>,
    pub(crate) worker: usize,
    pub(crate) limits: Limits,
    /// Connections that stopped receiving until the buffer pool has room again.
    pub(crate) waiting: VecDeque<CompletionKey>,
    /// The send-timeout clock: periods elapsed while some send was in flight.
    pub(crate) tick: u64,
    /// A send started since the clock last looked: it must run.
    pub(crate) tick_wanted: bool,
    /// The generation of the last connection made: keys are never reused.
    pub(crate) generation: u64,
    /// The handler's worker timers that are armed (by `user_data`).
    pub(crate) timers: HashSet<u64>,
    /// The connections' timers.
    pub(crate) deadlines: Deadlines,
}

impl Core {
    /// Starts an operation owned by `owner`.
    pub(crate) fn start(&mut self, owner: Owner, data: OpData, sub: Sub) -> OpId {
        let id = self.ops.insert(owner, data);
        if let Err(e) = self.driver.push(sub, id.user_data()) {
            tracing::error!(worker = self.worker, "cannot queue an operation: {e}");
            let errno = e.raw_os_error().unwrap_or(code::IO);
            self.local.push_back(Cqe {
                user_data: id.user_data(),
                result: -errno,
                more: false,
                buf: None,
            });
        }
        id
    }

    /// Starts a timer owned by `owner`, firing (`-ETIME`) after `after`.
    pub(crate) fn timer(&mut self, owner: Owner, after: Duration) -> OpId {
        let (data, sub) = timer_parts(after);
        self.start(owner, data, sub)
    }

    /// Asks the kernel to cancel the worker's own operation `id`; the cancelled operation's
    /// completion comes back to its owner as usual.
    pub(crate) fn cancel_detached(&mut self, id: OpId) {
        let sub = Sub::Cancel {
            user_data: id.user_data(),
        };
        self.start(Owner::Detached, OpData::Cancel, sub);
    }
}

/// A timer firing (`-ETIME`) after `after`; the operation owns the timespec the kernel reads.
pub(crate) fn timer_parts(after: Duration) -> (OpData, Sub) {
    let ts = Box::new(Timespec::new(after));
    let sub = Sub::Timeout { ts: &*ts };
    (OpData::Timeout { _ts: ts }, sub)
}

/// Opening `path` beneath `dir`; the operation owns the path, the `open_how` and a reference
/// to the directory.
pub(crate) fn open_parts(dir: &Arc<Dir>, path: CString) -> (OpData, Sub) {
    let how = Box::new(OpenHow::beneath());
    let sub = Sub::OpenBeneath {
        dir: dir.handle().raw(),
        path: path.as_ptr(),
        how: &*how,
    };
    let data = OpData::Open {
        _dir: dir.clone(),
        _path: path,
        _how: how,
    };
    (data, sub)
}

/// Reading from file `fd` at `offset` into the spare capacity of `buf`; the operation owns the
/// buffer (a `Vec`'s heap storage does not move when the `Vec` does).
pub(crate) fn read_parts(fd: Raw, offset: u64, mut buf: Vec<u8>) -> (OpData, Sub) {
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(u32::MAX as usize) as u32;
    let sub = Sub::ReadAt {
        fd,
        ptr: spare.as_mut_ptr().cast(),
        len,
        offset,
    };
    (OpData::Read { buf }, sub)
}

/// Writing bytes `done..` of `buf` to file `fd` at `offset + done`; the operation owns the
/// buffer.
pub(crate) fn write_parts(fd: Raw, offset: u64, buf: SendBuf, done: usize) -> (OpData, Sub) {
    let rest = &buf.as_slice()[done..];
    let sub = Sub::WriteAt {
        fd,
        ptr: rest.as_ptr(),
        len: rest.len().min(u32::MAX as usize) as u32,
        offset: offset + done as u64,
    };
    (OpData::Write { buf, offset, done }, sub)
}

/// The operation that sends `bufs` in one call over socket `fd`, from byte `skip` of the first.
pub(crate) fn sendv_parts(fd: Raw, bufs: Vec<SendBuf>, skip: usize) -> (OpData, Sub) {
    let slices = bufs.iter().enumerate().map(|(i, b)| {
        if i == 0 {
            &b.as_slice()[skip..]
        } else {
            b.as_slice()
        }
    });
    // The buffers' heap storage does not move when `bufs` moves into the table.
    let gather = Gather::new(slices);
    let sub = Sub::SendV {
        fd,
        gather: &*gather,
    };
    let data = OpData::SendV {
        bufs,
        skip,
        _gather: gather,
    };
    (data, sub)
}

/// The operation that sends `out` from byte `done` on over socket `fd`.
pub(crate) fn send_parts(fd: Raw, out: Outgoing, done: u64) -> (OpData, Sub) {
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
            (data, sub)
        }
        Outgoing::File { file, offset, len } => {
            let sub = Sub::SendFile {
                sock: fd,
                file: file_raw(&file),
                offset: offset + done,
                len: len - done,
            };
            // The operation keeps the whole range; `done` says how far it got.
            let data = OpData::SendFile {
                file,
                offset,
                len,
                done,
            };
            (data, sub)
        }
        Outgoing::HalfClose => unreachable!("a half-close is no operation"),
    }
}

/// Something queued for sending, in order: a buffer, a file range, or the end of sending.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Buf(SendBuf),
    File {
        file: Rc<File>,
        offset: u64,
        len: u64,
    },
    /// `shutdown(SHUT_WR)` once everything before is sent.
    HalfClose,
}

impl Outgoing {
    /// Bytes of memory it holds (file ranges hold none).
    pub(crate) fn held(&self) -> usize {
        match self {
            Outgoing::Buf(b) => b.len(),
            Outgoing::File { .. } | Outgoing::HalfClose => 0,
        }
    }
}

/// Maps a negative result to an error.
pub(crate) fn errno(result: i32) -> io::Error {
    io::Error::from_raw_os_error(-result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_id_never_reaches_the_next_occupant() {
        let mut ops = Ops::with_capacity(4);
        let first = ops.insert(Owner::Waker, OpData::Poll);
        ops.remove(first);
        let second = ops.insert(Owner::Tick, OpData::Close);
        assert_eq!(first.index(), second.index(), "the slot is reused");
        assert!(ops.get(first).is_none(), "the old id names nothing");
        assert_eq!(ops.get(second).map(|op| op.owner), Some(Owner::Tick));
        assert_eq!(second.user_data() >> 63, 0, "bit 63 is the backends'");
    }

    #[test]
    fn generations_skip_zero_and_stay_in_31_bits() {
        let mut ops = Ops::with_capacity(1);
        ops.next = 0x7fff_ffff;
        let a = ops.insert(Owner::Waker, OpData::Poll);
        let b = ops.insert(Owner::Waker, OpData::Poll);
        assert_eq!(a.generation(), 0x7fff_ffff);
        assert_eq!(b.generation(), 1);
        assert_eq!(a.user_data() >> 63, 0);
    }
}
