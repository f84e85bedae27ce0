//! The epoll driver against real sockets: the completions must look like io_uring's.

mod files;
mod ops;
mod recv;

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use std::time::Duration;

use super::Driver;
use crate::buf::{BufPool, RecvBuf};
use crate::key::CompletionKey;
use crate::sys::{Cqe, DriverConfig, Sub, Timespec};

/// A timer that fails the test if it fires.
const WATCHDOG: u64 = (1 << 62) - 1;

/// A driver, its pool, and completions received but not yet looked at.
pub(super) struct H {
    pub(super) d: Driver,
    pool: Rc<BufPool>,
    pub(super) queue: VecDeque<Cqe>,
    /// What the kernel reads for the test's operations, owned as the worker's table would
    /// (boxed: addresses must hold while the vector grows).
    #[allow(clippy::vec_box)]
    timespecs: Vec<Box<Timespec>>,
}

impl H {
    pub(super) fn new(count: u16, size: u32) -> H {
        let pool = Rc::new(BufPool::new(count, size).unwrap());
        let d = Driver::new(DriverConfig { entries: 64 }, pool.clone()).unwrap();
        let mut h = H {
            d,
            pool,
            queue: VecDeque::new(),
            timespecs: Vec::new(),
        };
        h.timeout(Duration::from_secs(10), WATCHDOG);
        h
    }

    /// Pushes a timeout of `after`.
    pub(super) fn timeout(&mut self, after: Duration, user_data: u64) {
        let ts = Box::new(Timespec::new(after));
        self.push(Sub::Timeout { ts: &*ts }, user_data);
        self.timespecs.push(ts);
    }

    /// Gives the buffers dropped since the last call back to the driver, as the worker does.
    pub(super) fn recycle(&mut self) {
        let mut returned = Vec::new();
        self.pool.take_returned(&mut returned);
        let bids: Vec<u16> = returned.iter().map(|r| r.bid).collect();
        self.d.recycle(&bids);
    }

    pub(super) fn push(&mut self, sub: Sub, user_data: u64) {
        self.d.push(sub, user_data).unwrap();
    }

    /// The next completion, waiting for it.
    pub(super) fn next(&mut self) -> Cqe {
        loop {
            if let Some(c) = self.queue.pop_front() {
                assert_ne!(c.user_data, WATCHDOG, "nothing completed in 10 s");
                return c;
            }
            self.recycle();
            let mut out = Vec::new();
            self.d.wait(&mut out, true).unwrap();
            self.queue.extend(out);
        }
    }

    /// Asserts that nothing has completed.
    pub(super) fn none(&mut self) {
        self.recycle();
        let mut out = Vec::new();
        self.d.wait(&mut out, false).unwrap();
        self.queue.extend(out);
        assert!(self.queue.is_empty(), "unexpected: {:?}", self.queue);
    }

    /// The received bytes of `c`, as a RecvBuf the handler would get.
    pub(super) fn buf(&self, c: &Cqe) -> RecvBuf {
        let holder = CompletionKey::new(0, 0, 1);
        RecvBuf::new(
            self.pool.clone(),
            c.buf.expect("a buffer"),
            c.result as u32,
            holder,
        )
    }
}

pub(super) fn res(c: &Cqe) -> (u64, i32, bool) {
    (c.user_data, c.result, c.more)
}

pub(super) fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (a, b)
}

/// Fills `s`'s send buffer; returns how many bytes it took.
pub(super) fn fill(s: &mut UnixStream) -> usize {
    let chunk = [0u8; 4096];
    let mut n = 0;
    loop {
        match s.write(&chunk) {
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
            Err(e) => panic!("{e}"),
        }
    }
}
