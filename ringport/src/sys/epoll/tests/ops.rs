//! Cancel, send, errors, accept and connect, close, poll, timeouts, drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::{fill, pair, res, H};
use crate::sys::Sub;

#[test]
fn cancel_one_and_cancel_fd() {
    let mut h = H::new(4, 64);
    let (mut a, _b) = pair();
    let fd = a.as_raw_fd();
    h.push(Sub::RecvMulti { fd }, 1);
    h.push(Sub::Cancel { user_data: 1 }, 2);
    assert_eq!(res(&h.next()), (1, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (2, 0, false));
    h.push(Sub::Cancel { user_data: 1 }, 3);
    assert_eq!(res(&h.next()), (3, -libc::ENOENT, false));

    h.timeout(Duration::from_secs(10), 4);
    h.push(Sub::Cancel { user_data: 4 }, 5);
    assert_eq!(res(&h.next()), (4, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (5, 0, false));

    fill(&mut a);
    let msg = b"blocked";
    h.push(Sub::RecvMulti { fd }, 6);
    let (ptr, len) = (msg.as_ptr(), msg.len() as u32);
    h.push(Sub::Send { fd, ptr, len }, 7);
    h.none();
    h.push(Sub::CancelFd { fd }, 8);
    assert_eq!(res(&h.next()), (6, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (7, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (8, 2, false));
    h.push(Sub::CancelFd { fd }, 9);
    assert_eq!(res(&h.next()), (9, -libc::ENOENT, false));
    h.none();
}

#[test]
fn send_waits_for_room_and_completes_short() {
    let mut h = H::new(4, 64);
    let (mut a, mut b) = pair();
    let filler = fill(&mut a);
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 255 + 1) as u8).collect();
    let (ptr, len) = (data.as_ptr(), data.len() as u32);
    h.push(
        Sub::Send {
            fd: a.as_raw_fd(),
            ptr,
            len,
        },
        1,
    );
    h.none();
    b.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut chunk = vec![0; 1 << 16];
    let sent = loop {
        match b.read(&mut chunk) {
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        let mut out = Vec::new();
        h.d.wait(&mut out, false).unwrap();
        if let Some(c) = out.first() {
            assert_eq!((c.user_data, c.more), (1, false));
            break c.result as usize;
        }
    };
    assert!(sent > 0 && sent < data.len(), "a short send: {sent}");
    b.set_nonblocking(false).unwrap();
    while got.len() < filler + sent {
        let n = b.read(&mut chunk).unwrap();
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got[..filler].iter().all(|&x| x == 0));
    assert_eq!(got[filler..], data[..sent]);
}

#[test]
fn errors_mean_the_same() {
    let mut h = H::new(4, 64);
    // Peer gone: EPIPE on send (no SIGPIPE).
    let (a, b) = pair();
    drop(b);
    let (ptr, len) = (b"x".as_ptr(), 1);
    h.push(
        Sub::Send {
            fd: a.as_raw_fd(),
            ptr,
            len,
        },
        1,
    );
    assert_eq!(res(&h.next()), (1, -libc::EPIPE, false));

    // Peer reset: ECONNRESET on receive.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Socket::from(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
    let (server, _) = listener.accept().unwrap();
    h.push(
        Sub::RecvMulti {
            fd: server.as_raw_fd(),
        },
        2,
    );
    h.none();
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    assert_eq!(res(&h.next()), (2, -libc::ECONNRESET, false));
}

#[test]
fn accept_multishot_and_connect() {
    let mut h = H::new(4, 64);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    h.push(
        Sub::AcceptMulti {
            fd: listener.as_raw_fd(),
        },
        1,
    );
    h.none();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut peers: Vec<SocketAddr> = Vec::new();
    while peers.len() < clients.len() {
        let c = h.next();
        assert_eq!((c.user_data, c.more), (1, true));
        // SAFETY: a successful accept completion carries a new descriptor we now own.
        let s = TcpStream::from(unsafe { OwnedFd::from_raw_fd(c.result) });
        // SAFETY: F_GETFL on a descriptor we own.
        let flags = unsafe { libc::fcntl(s.as_raw_fd(), libc::F_GETFL) };
        assert!(flags & libc::O_NONBLOCK != 0, "accepted non-blocking");
        peers.push(s.peer_addr().unwrap());
    }
    for c in &clients {
        assert!(peers.contains(&c.local_addr().unwrap()));
    }
    h.push(Sub::Cancel { user_data: 1 }, 2);
    assert_eq!(res(&h.next()), (1, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (2, 0, false));

    let connect = |h: &mut H, to: SocketAddr, user_data: u64| {
        let s = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None).unwrap();
        let sa = SockAddr::from(to);
        let (fd, addr, len) = (s.as_raw_fd(), sa.as_ptr().cast(), sa.len());
        h.push(Sub::Connect { fd, addr, len }, user_data);
        let c = h.next();
        assert_eq!((c.user_data, c.more), (user_data, false));
        (s, c.result)
    };
    let (s, r) = connect(&mut h, addr, 3);
    assert_eq!(r, 0);
    assert_eq!(s.peer_addr().unwrap().as_socket(), Some(addr));
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(connect(&mut h, closed, 4).1, -libc::ECONNREFUSED);
}

#[test]
fn close_ends_everything_on_the_number() {
    let mut h = H::new(4, 64);
    let (a, _b) = pair();
    let fd = a.into_raw_fd();
    h.push(Sub::RecvMulti { fd }, 1);
    // A stale operation left at close is cancelled, never carried over to the number's reuse.
    h.push(Sub::Close { fd, file: false }, 2);
    assert_eq!(res(&h.next()), (1, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (2, 0, false));
    let (c, mut d) = pair();
    h.push(Sub::RecvMulti { fd: c.as_raw_fd() }, 3);
    d.write_all(b"new").unwrap();
    let c3 = h.next();
    assert_eq!(res(&c3), (3, 3, true));
    assert_eq!(&*h.buf(&c3), b"new");
    h.push(
        Sub::Close {
            fd: c.into_raw_fd(),
            file: false,
        },
        4,
    );
    assert_eq!(res(&h.next()), (3, -libc::ECANCELED, false));
    assert_eq!(res(&h.next()), (4, 0, false));
    h.push(
        Sub::Close {
            fd: 1 << 30,
            file: false,
        },
        5,
    );
    assert_eq!(res(&h.next()), (5, -libc::EBADF, false));
    h.none();
}

#[test]
fn poll_in_is_multishot() {
    let mut h = H::new(4, 64);
    // SAFETY: eventfd has no pointer arguments.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(efd >= 0);
    // SAFETY: a new descriptor that nothing else owns.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    let mut file = std::fs::File::from(efd);
    file.write_all(&1u64.to_ne_bytes()).unwrap();
    h.push(
        Sub::PollIn {
            fd: file.as_raw_fd(),
        },
        1,
    );
    let pollin = libc::POLLIN as i32;
    assert_eq!(res(&h.next()), (1, pollin, true), "already readable");
    for _ in 0..3 {
        let mut n = [0u8; 8];
        file.read_exact(&mut n).unwrap();
        // Edge-triggered: a spurious wake-up may follow the first report; then silence.
        let mut out = Vec::new();
        h.d.wait(&mut out, false).unwrap();
        h.none();
        file.write_all(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(res(&h.next()), (1, pollin, true));
    }
}

#[test]
fn timeouts_fire_in_deadline_order() {
    let mut h = H::new(4, 64);
    let start = Instant::now();
    h.timeout(Duration::from_millis(30), 1);
    h.timeout(Duration::from_millis(10), 2);
    h.timeout(Duration::ZERO, 3);
    let order: Vec<_> = (0..3).map(|_| res(&h.next())).collect();
    let etime = -libc::ETIME;
    assert_eq!(
        order,
        [(3, etime, false), (2, etime, false), (1, etime, false)]
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn drop_with_inflight_ops_closes_undelivered_accepts() {
    let mut h = H::new(4, 64);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // Accepted at once (the handshake is done), into a completion nobody takes.
    h.push(
        Sub::AcceptMulti {
            fd: listener.as_raw_fd(),
        },
        1,
    );
    let (mut a, _b) = pair();
    fill(&mut a);
    let data = vec![1u8; 4096];
    let (ptr, len) = (data.as_ptr(), data.len() as u32);
    h.push(
        Sub::Send {
            fd: a.as_raw_fd(),
            ptr,
            len,
        },
        2,
    );
    h.push(Sub::RecvMulti { fd: a.as_raw_fd() }, 3);
    h.timeout(Duration::from_secs(1), 4);
    drop(h);
    drop(data);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        client.read(&mut [0; 8]).unwrap(),
        0,
        "the accepted socket was closed"
    );
}
