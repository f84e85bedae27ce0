//! Descriptors: a port that is joined or dropped with operations in flight (receives, sends to
//! peers that do not read, timers, connects still waiting for an answer) closes every
//! descriptor it opened.
//!
//! Counting this process's descriptors only works when nothing else opens any meanwhile, so
//! these tests live in their own binary and take turns.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringport::{Backend, Completion, Handler, Io, Port, WorkerCtx};

/// Keeps every kind of operation in flight on every connection: a receive, a 16 MiB send, a
/// timer of an hour; and opens two outgoing connections when started.
struct Busy {
    /// A listener whose accept queue is full: the connect to it waits.
    pending: SocketAddr,
    /// A listener whose peer accepts and never reads.
    live: SocketAddr,
}

fn keep_busy(io: &mut Io<'_, ()>) {
    io.recv();
    io.set_timeout(Duration::from_secs(3600));
    io.send(vec![7u8; 16 << 20]);
}

impl Handler for Busy {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        keep_busy(io);
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, ()>) {
        if worker.worker() == 0 {
            worker.connect(self.pending, ()).unwrap();
            worker.connect(self.live, ()).unwrap();
        }
    }

    fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
        match completion {
            Completion::Connected => keep_busy(io),
            Completion::Received(buf) => io.send(buf),
            Completion::Sent(_) | Completion::Timeout => {}
            _ => io.abort(),
        }
    }
}

/// A listener with a full accept queue (backlog 0 and one connection waiting in it), and that
/// waiting connection.
fn full_listener() -> (socket2::Socket, TcpStream) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let queued = util::connect(addr);
    (s, queued)
}

/// Starts a busy port with clients in every state, then ends it with `end`; returns once
/// every client socket is closed.
fn busy_port_then(backend: Backend, end: impl FnOnce(Port) + Send + 'static) {
    let (full, queued) = full_listener();
    let live = util::listener();
    let port = util::loopback_port(backend, 2)
        .shutdown_timeout(Duration::from_millis(200))
        .start({
            let pending = full.local_addr().unwrap().as_socket().unwrap();
            let live = live.local_addr().unwrap();
            move |_| Busy { pending, live }
        })
        .expect("the port starts");
    let addr = port.local_addr().unwrap();
    let outgoing = util::accept(&live);
    let seed = util::seed();

    std::thread::scope(|s| {
        // Mid-transfer: writes without pause while reading the flood.
        let streaming = util::connect(addr);
        let writer = s.spawn({
            let streaming = streaming.try_clone().unwrap();
            move || {
                let chunk = util::payload(seed, 64 * 1024);
                while (&streaming).write_all(&chunk).is_ok() {}
            }
        });
        let mut first = [0u8; 1024];
        (&streaming).read_exact(&mut first).unwrap();
        assert!(first.iter().all(|&b| b == 7), "the flood arrives");
        // Sends without reading anything (what the kernel buffers take: with 16 MiB unsent,
        // the port does not receive on this connection).
        let deaf = util::connect(addr);
        (&deaf).write_all(&util::payload(seed, 64 << 10)).unwrap();
        // Connected and silent.
        let idle = util::connect(addr);

        util::within(util::SHUTDOWN_BOUND, "ending the port", move || end(port));

        // The port closed its side of each connection: the writer stops.
        drop((streaming, deaf, idle, outgoing));
        writer.join().unwrap();
    });
    drop((full, queued, live));
}

fn check_no_leak(end: fn(Port)) {
    let _turn = util::fd_counting();
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let baseline = util::fd_count();
        busy_port_then(backend, end);
        util::assert_fd_count(baseline, backend);
    }
}

#[test]
fn drop_with_inflight_ops() {
    check_no_leak(drop);
}

#[test]
fn join_with_inflight_ops() {
    check_no_leak(|port| {
        port.shutdown();
        port.join().expect("workers exit cleanly");
    });
}

#[test]
fn start_and_stop_many_times() {
    let _turn = util::fd_counting();
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let baseline = util::fd_count();
        for round in 0..5u8 {
            busy_port_then(backend, drop);
            let port = util::loopback_port(backend, 2)
                .start(|_| Busy {
                    pending: "127.0.0.1:9".parse().unwrap(),
                    live: "127.0.0.1:9".parse().unwrap(),
                })
                .expect("the port starts");
            util::shutdown_and_join(port);
            util::assert_fd_count(baseline, format!("{backend}, round {round}"));
        }
    }
}
