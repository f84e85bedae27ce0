//! Buffers owned by operations: the per-I/O data of the completion-port model.
//!
//! A receive lands in one of the worker's *provided buffers* ([`BufPool`]): the kernel picks a
//! free buffer only when data arrives, so an idle connection holds none. The handler gets it as
//! a [`RecvBuf`]; dropping that returns the buffer to the pool. A send owns a [`SendBuf`] until
//! its completion hands it back.
//!
//! Each `RecvBuf` remembers the connection it was received on: the worker counts the buffers
//! each connection holds (its quota) when they come back.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;

use crate::key::CompletionKey;
use crate::sys::Pages;

/// A buffer given back, and the connection that held it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Returned {
    pub(crate) bid: u16,
    pub(crate) holder: CompletionKey,
}

/// The provided receive buffers of one worker: `count` buffers of `size` bytes in one
/// anonymous mapping (pages are touched only when used).
pub(crate) struct BufPool {
    /// Freed (unmapped) only when the pool is dropped, after its worker's driver, once no
    /// operation can still write into it.
    mem: Pages,
    size: u32,
    count: u16,
    /// Buffers given back by handlers since the worker last recycled them.
    returned: RefCell<Vec<Returned>>,
    /// Buffers held by [`RecvBuf`]s.
    held: Cell<u32>,
}

impl BufPool {
    /// Maps `count` buffers of `size` bytes.
    pub(crate) fn new(count: u16, size: u32) -> io::Result<Self> {
        let map_len = usize::from(count) * size as usize;
        if map_len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty buffer pool",
            ));
        }
        Ok(BufPool {
            mem: Pages::new(map_len)?,
            size,
            count,
            returned: RefCell::new(Vec::with_capacity(usize::from(count))),
            held: Cell::new(0),
        })
    }

    /// Size of each buffer.
    pub(crate) fn buf_size(&self) -> u32 {
        self.size
    }

    /// Number of buffers.
    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// Address of buffer `bid`.
    pub(crate) fn addr(&self, bid: u16) -> *mut u8 {
        assert!(bid < self.count, "buffer id out of range");
        // SAFETY: bid < count, so the offset stays inside the mapping.
        unsafe {
            self.mem
                .ptr()
                .as_ptr()
                .add(usize::from(bid) * self.size as usize)
        }
    }

    /// Takes the buffers returned since the last call, appending them to `out`.
    pub(crate) fn take_returned(&self, out: &mut Vec<Returned>) {
        out.append(&mut self.returned.borrow_mut());
    }

    /// Buffers no [`RecvBuf`] holds: free for the kernel (or soon, once recycled).
    pub(crate) fn free(&self) -> u32 {
        u32::from(self.count) - self.held.get()
    }

    fn give_back(&self, bid: u16, holder: CompletionKey) {
        self.held.set(self.held.get() - 1);
        self.returned.borrow_mut().push(Returned { bid, holder });
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("count", &self.count)
            .field("size", &self.size)
            .finish()
    }
}

/// Bytes received into one of the worker's provided buffers.
///
/// Dereferences to the received bytes, mutably too: it is owned, and can be changed in place
/// and sent on as it is ([`SendBuf::Recv`]) without a copy. Dropping it gives the buffer back to
/// the worker, which hands it to the kernel again; keeping it (for example to send it back)
/// keeps it out of the pool, and counts against the quota of the connection it was received on
/// ([`crate::PortBuilder::max_bufs_per_conn`]). It cannot leave its worker thread.
///
/// It cannot become a `Vec` without a copy (`to_vec`): its memory is a slot of the worker's
/// pool, one mapping lent to the kernel, and must go back there. It can shrink to a part of
/// itself ([`RecvBuf::slice`]) to forward only some of the bytes.
pub struct RecvBuf {
    pool: Rc<BufPool>,
    bid: u16,
    /// The bytes that are this buffer's: `start..end` of the slot.
    start: u32,
    end: u32,
    holder: CompletionKey,
}

impl RecvBuf {
    /// Wraps buffer `bid`, into which the kernel wrote `len` bytes for connection `holder`.
    pub(crate) fn new(pool: Rc<BufPool>, bid: u16, len: u32, holder: CompletionKey) -> Self {
        assert!(len <= pool.buf_size(), "completion longer than its buffer");
        pool.held.set(pool.held.get() + 1);
        RecvBuf {
            pool,
            bid,
            start: 0,
            end: len,
            holder,
        }
    }

    /// Keeps only `range` of the bytes (relative to what the buffer holds now), to forward or
    /// keep a part without copying.
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn slice(&mut self, range: impl std::ops::RangeBounds<usize>) {
        use std::ops::Bound;
        let len = (self.end - self.start) as usize;
        let from = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => len,
        };
        assert!(
            from <= to && to <= len,
            "range {from}..{to} out of 0..{len}"
        );
        self.end = self.start + to as u32;
        self.start += from as u32;
    }
}

impl Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the kernel wrote `end` bytes into buffer `bid` before posting the completion
        // (`start..end` is within them); while this RecvBuf lives the buffer is out of the
        // provided ring and no other RecvBuf holds it, so nothing writes it, and the Rc keeps
        // the mapping alive.
        unsafe {
            let at = self.pool.addr(self.bid).add(self.start as usize);
            std::slice::from_raw_parts(at, (self.end - self.start) as usize)
        }
    }
}

impl std::ops::DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; and `&mut self` makes this the only reference to the bytes.
        unsafe {
            let at = self.pool.addr(self.bid).add(self.start as usize);
            std::slice::from_raw_parts_mut(at, (self.end - self.start) as usize)
        }
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        self.pool.give_back(self.bid, self.holder);
    }
}

impl fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuf")
            .field("bid", &self.bid)
            .field("len", &(self.end - self.start))
            .finish()
    }
}

/// A buffer given to a send operation; the completion gives it back.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendBuf {
    /// An owned vector.
    Vec(Vec<u8>),
    /// A received buffer sent back as it is (no copy).
    Recv(RecvBuf),
    /// Shared, immutable bytes (for example a cached file or a canned reply).
    Shared(Arc<[u8]>),
    /// Bytes that live for the whole program.
    Static(&'static [u8]),
}

impl SendBuf {
    /// The bytes to send.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SendBuf::Vec(v) => v,
            SendBuf::Recv(r) => r,
            SendBuf::Shared(s) => s,
            SendBuf::Static(s) => s,
        }
    }

    /// Number of bytes to send.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for SendBuf {
    fn from(v: Vec<u8>) -> Self {
        SendBuf::Vec(v)
    }
}

impl From<RecvBuf> for SendBuf {
    fn from(r: RecvBuf) -> Self {
        SendBuf::Recv(r)
    }
}

impl From<Arc<[u8]>> for SendBuf {
    fn from(s: Arc<[u8]>) -> Self {
        SendBuf::Shared(s)
    }
}

impl From<&'static [u8]> for SendBuf {
    fn from(s: &'static [u8]) -> Self {
        SendBuf::Static(s)
    }
}

impl From<&'static str> for SendBuf {
    fn from(s: &'static str) -> Self {
        SendBuf::Static(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recv_buf_returns_on_drop() {
        let pool = Rc::new(BufPool::new(4, 64).unwrap());
        // SAFETY: buffer 2 is in range and nothing else writes it in this test.
        unsafe { pool.addr(2).copy_from_nonoverlapping(b"hello".as_ptr(), 5) };
        let holder = CompletionKey::new(0, 7, 1);
        let buf = RecvBuf::new(pool.clone(), 2, 5, holder);
        assert_eq!(&*buf, b"hello");
        assert_eq!(pool.free(), 3);
        let mut buf = buf;
        buf.make_ascii_uppercase();
        buf.slice(1..4);
        assert_eq!(&*buf, b"ELL");
        buf.slice(1..);
        assert_eq!(&*buf, b"LL");
        let send = SendBuf::from(buf);
        assert_eq!(send.len(), 2);
        drop(send);
        assert_eq!(pool.free(), 4);
        let mut out = Vec::new();
        pool.take_returned(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].bid, out[0].holder), (2, holder));
    }
}
