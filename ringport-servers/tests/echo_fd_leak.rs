//! Descriptors of the echo server: every connection's descriptor is closed once its client
//! has gone, and a server joined or dropped with transfers in flight (a client mid-stream, one
//! that sends without reading, idle ones) leaves no descriptor open.
//!
//! Counting this process's descriptors only works when nothing else opens any meanwhile, so
//! these tests live in their own binary and take turns; client sockets are closed before
//! counting.

mod util;

use std::thread;
use std::time::Duration;

use ringport::{Backend, Port};

/// Starts a server, puts clients in every state, ends the server with `end` while they are,
/// then closes the clients.
fn with_inflight_ops(backend: Backend, end: fn(Port)) {
    let seed = util::seed();
    let port = util::start_echo(backend);
    let addr = port.local_addr().unwrap();
    thread::scope(|s| {
        let streaming = util::connect(addr);
        let writer = streaming.try_clone().unwrap();
        s.spawn(move || {
            let _ = util::write_stream(&writer, seed, 0, u64::MAX);
        });
        let reader = s.spawn(move || util::read_stream_to_end(&streaming, seed, 0));
        let deaf = util::connect(addr);
        util::write_until_stalled(&deaf, seed ^ 1, 64 << 20);
        let idle = util::connect(addr);
        util::round_trip(&idle, b"idle");
        let half_closed = util::connect(addr);
        util::round_trip(&half_closed, b"half");
        half_closed.shutdown(std::net::Shutdown::Write).unwrap();

        util::within(util::SHUTDOWN_BOUND, "ending the server", move || end(port));
        let (n, _) = reader.join().unwrap();
        assert!(n > 0, "the stream was under way");
        drop((deaf, idle, half_closed));
    });
}

fn check(end: fn(Port)) {
    let _turn = util::fd_counting();
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let baseline = util::fd_count();
        with_inflight_ops(backend, end);
        util::assert_fd_count(baseline, backend);
    }
}

#[test]
fn join_with_inflight_ops() {
    check(|port| {
        port.shutdown();
        port.join().expect("workers exit cleanly");
    });
}

#[test]
fn drop_with_inflight_ops() {
    check(drop);
}

#[test]
fn each_connection_is_closed_when_its_client_goes() {
    let _turn = util::fd_counting();
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let baseline = util::fd_count();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let with_port = util::fd_count();
        for i in 0..200u64 {
            let c = util::connect(addr);
            match i % 4 {
                0 => util::round_trip(&c, &util::payload(seed ^ i, 10_000)),
                1 => util::set_reset_on_close(&c),
                2 => {
                    let (n, end) = thread::scope(|s| {
                        s.spawn(|| util::write_stream(&c, seed ^ i, 0, 300_000).unwrap());
                        util::read_stream_to_end(&c, seed ^ i, 0)
                    });
                    assert_eq!((n, end), (300_000, util::End::Eof));
                }
                _ => {
                    util::write_until_stalled(&c, seed ^ i, 100_000);
                    util::set_reset_on_close(&c);
                }
            }
        }
        // Clients are gone; the server closes their connections (the count of this process
        // includes the server's side).
        util::wait_until(
            Duration::from_secs(10),
            "the server closes every connection",
            || util::fd_count() == with_port,
        );
        util::shutdown_and_join(port);
        util::assert_fd_count(baseline, backend);
    }
}
