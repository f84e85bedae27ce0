//! The provided buffer ring (`IORING_REGISTER_PBUF_RING`): how a worker lends its
//! [`BufPool`] to the kernel so that multishot receives pick a buffer only when data arrives.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use crate::buf::BufPool;

/// Buffer group id of the worker's receive buffers.
pub(crate) const GROUP: u16 = 0;

/// A registered buffer ring with one entry per pool buffer.
#[derive(Debug)]
pub(crate) struct BufRing {
    ring: NonNull<BufRingEntry>,
    map_len: usize,
    entries: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
}

impl BufRing {
    /// Maps and registers a ring large enough for every buffer of `pool`, and fills it.
    pub(crate) fn register(uring: &IoUring, pool: &BufPool) -> io::Result<Self> {
        let entries = pool.count().next_power_of_two();
        let map_len = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: an anonymous private mapping with no address hint has no preconditions; it
        // is page aligned, as the kernel requires of a buffer ring.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), map_len, prot, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = BufRing {
            ring: NonNull::new(ptr.cast()).expect("mmap returned null"),
            map_len,
            entries,
            tail: 0,
        };
        // SAFETY: the mapping holds `entries` zeroed entries and outlives the registration:
        // `Drop` unregisters happen through the ring's own teardown before the unmap (the
        // driver drops its IoUring before this ring).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ptr as u64, entries, GROUP, 0)
        }?;
        for bid in 0..pool.count() {
            ring.push(pool, bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Puts buffer `bid` back at the tail (visible to the kernel after [`BufRing::publish`]).
    #[inline]
    pub(crate) fn push(&mut self, pool: &BufPool, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: index < entries, inside the mapping; the kernel reads only entries before the
        // published tail, and this one is past it.
        let entry = unsafe { &mut *self.ring.as_ptr().add(index) };
        entry.set_addr(pool.addr(bid) as u64);
        entry.set_len(pool.buf_size());
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed entry visible to the kernel.
    #[inline]
    pub(crate) fn publish(&self) {
        // SAFETY: the ring base is the first entry of a registered buffer ring, so its `resv`
        // field is the shared tail; the kernel reads it atomically, and so we store it.
        let tail = unsafe { &*(BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `register`; the driver closes its ring (which drops the
        // registration) before dropping this.
        let _ = super::super::syscall!(munmap(self.ring.as_ptr().cast(), self.map_len));
    }
}
