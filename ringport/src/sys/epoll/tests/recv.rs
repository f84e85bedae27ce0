//! Multishot receive: bytes in provided buffers, EOF, budget, ENOBUFS.

use std::io::Write;
use std::os::fd::AsRawFd;

use super::{fill, pair, res, H};
use crate::sys::epoll::BUDGET;
use crate::sys::Sub;

#[test]
fn recv_multishot_delivers_bytes_then_eof() {
    let mut h = H::new(8, 64);
    let (a, mut b) = pair();
    h.push(Sub::RecvMulti { fd: a.as_raw_fd() }, 1);
    h.none();
    for msg in [&b"hello"[..], b"world!"] {
        b.write_all(msg).unwrap();
        let c = h.next();
        assert_eq!(res(&c), (1, msg.len() as i32, true));
        assert_eq!(&*h.buf(&c), msg);
    }
    drop(b);
    let c = h.next();
    assert_eq!((res(&c), c.buf), ((1, 0, false), None));
    h.none();
}

/// The FIN's edge went by while no receive was pending; a later receive reads the last
/// bytes short (stopping at the FIN) and must read on to the EOF instead of waiting for an
/// edge that will not come.
#[test]
fn eof_after_a_missed_edge() {
    let mut h = H::new(8, 64);
    let (mut a, mut b) = pair();
    let fd = a.as_raw_fd();
    // A blocked send keeps the descriptor's state while the receive is not armed.
    fill(&mut a);
    let (ptr, len) = (b"x".as_ptr(), 1);
    h.push(Sub::Send { fd, ptr, len }, 1);
    h.push(Sub::RecvMulti { fd }, 2);
    h.none();
    h.push(Sub::Cancel { user_data: 2 }, 3);
    assert_eq!(res(&h.next()), (2, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (3, 0, false));
    b.write_all(b"last").unwrap();
    b.shutdown(std::net::Shutdown::Write).unwrap();
    h.none(); // the edge comes and goes: nothing to receive it
    h.push(Sub::RecvMulti { fd }, 4);
    let c = h.next();
    assert_eq!(res(&c), (4, 4, true));
    assert_eq!(&*h.buf(&c), b"last");
    assert_eq!(res(&h.next()), (4, 0, false));
}

#[test]
fn recv_is_budgeted_and_in_order() {
    const CHUNKS: usize = 100;
    let mut h = H::new(256, 16);
    let (a, mut b) = pair();
    let data: Vec<u8> = (0..CHUNKS * 16).map(|i| (i * 7 % 251) as u8).collect();
    b.write_all(&data).unwrap();
    h.push(Sub::RecvMulti { fd: a.as_raw_fd() }, 1);
    let mut out = Vec::new();
    h.d.wait(&mut out, false).unwrap();
    assert!(out.len() < CHUNKS, "one turn is bounded: {}", out.len());
    assert!(out.len() <= 2 * BUDGET as usize);
    h.queue.extend(out);
    let mut got = Vec::new();
    while got.len() < data.len() {
        let c = h.next();
        assert_eq!((c.user_data, c.more), (1, true));
        got.extend_from_slice(&h.buf(&c));
    }
    assert_eq!(got, data);
    h.none();
}

#[test]
fn enobufs_only_when_data_arrives() {
    let mut h = H::new(2, 4);
    let (a, mut b) = pair();
    let (c, mut d) = pair();
    h.push(Sub::RecvMulti { fd: a.as_raw_fd() }, 1);
    b.write_all(b"abcdefghij").unwrap();
    let first = h.next();
    let second = h.next();
    let held = [h.buf(&first), h.buf(&second)];
    assert_eq!(&*held[0], b"abcd");
    assert_eq!(&*held[1], b"efgh");
    let c1 = h.next();
    assert_eq!((res(&c1), c1.buf), ((1, -libc::ENOBUFS, false), None));

    // No buffer and no data: the receive waits, as io_uring's would.
    h.push(Sub::RecvMulti { fd: c.as_raw_fd() }, 2);
    h.none();
    d.write_all(b"x").unwrap();
    assert_eq!(res(&h.next()), (2, -libc::ENOBUFS, false));

    // A buffer comes back (the worker recycles it at its next turn): re-armed, the rest arrives.
    drop(held);
    h.recycle();
    h.push(Sub::RecvMulti { fd: a.as_raw_fd() }, 3);
    let c3 = h.next();
    assert_eq!(res(&c3), (3, 2, true));
    assert_eq!(&*h.buf(&c3), b"ij");
}
