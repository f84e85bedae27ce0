//! The epoll driver against real sockets: the completions must look like io_uring's.

mod files;
mod ops;
mod recv;

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use super::Driver;
use crate::buf::{BufPool, RecvBuf};
use crate::sys::{Cqe, DriverConfig, Sub};

/// A timer that fails the test if it fires.
const WATCHDOG: u64 = u64::MAX;

/// A driver, its pool, and completions received but not yet looked at.
pub(super) struct H {
    pub(super) d: Driver,
    pool: Rc<BufPool>,
    pub(super) queue: VecDeque<Cqe>,
}

impl H {
    pub(super) fn new(count: u16, size: u32) -> H {
        let pool = Rc::new(BufPool::new(count, size).unwrap());
        let mut d = Driver::new(
            DriverConfig {
                entries: 64,
                splice: false,
            },
            pool.clone(),
        )
        .unwrap();
        d.push(
            Sub::Timeout {
                nanos: 10_000_000_000,
            },
            WATCHDOG,
        )
        .unwrap();
        H {
            d,
            pool,
            queue: VecDeque::new(),
        }
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
            let mut out = Vec::new();
            self.d.wait(&mut out, true).unwrap();
            self.queue.extend(out);
        }
    }

    /// Asserts that nothing has completed.
    pub(super) fn none(&mut self) {
        let mut out = Vec::new();
        self.d.wait(&mut out, false).unwrap();
        self.queue.extend(out);
        assert!(self.queue.is_empty(), "unexpected: {:?}", self.queue);
    }

    /// The received bytes of `c`, as a RecvBuf the handler would get.
    pub(super) fn buf(&self, c: &Cqe) -> RecvBuf {
        RecvBuf::new(self.pool.clone(), c.buf.expect("a buffer"), c.result as u32)
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
