//! The `proxy` example, run as its own program in front of an echo server: every byte relayed
//! both ways and verified, for one client and for 200 at once; a half-close passed through
//! (the client half-closes, gets every echoed byte, then EOF); a client that sends without
//! reading is held back (its writes stall far short of what it offers) and then gets it all;
//! a client whose upstream refuses is closed.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::Command;
use std::time::Duration;

use ringport::{Backend, Completion, Handler, Io, Port};
use util::ChildServer;

struct Echo;

impl Handler for Echo {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.recv();
    }

    fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
        match completion {
            Completion::Received(buf) => io.send(buf),
            Completion::Sent(_) => {}
            _ => io.close(),
        }
    }
}

fn proxy(backend: Backend, to: SocketAddr) -> ChildServer {
    let mut cmd = Command::new(util::example("proxy"));
    cmd.args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args(["--to", &to.to_string(), "--backend", &backend.to_string()])
        .env_remove("RUST_LOG");
    ChildServer::start(&mut cmd, "proxy")
}

fn echo_port(backend: Backend) -> Port {
    util::loopback_port(backend, 1)
        .start(|_| Echo)
        .expect("the echo port starts")
}

#[test]
fn relays_both_ways_for_one_and_for_many() {
    util::each_backend(|backend| {
        let upstream = echo_port(backend);
        let proxy = proxy(backend, upstream.local_addr().unwrap());
        let seed = util::seed();
        let one = util::connect(proxy.addr);
        for (i, len) in [1, 1000, 1 << 20].into_iter().enumerate() {
            util::round_trip(&one, &util::payload(seed ^ i as u64, len));
        }
        std::thread::scope(|s| {
            for c in 0..200u64 {
                s.spawn(move || {
                    let stream = util::connect(proxy.addr);
                    for m in 0..3 {
                        let len = 1 + ((seed ^ c ^ m) % 50_000) as usize;
                        util::round_trip(&stream, &util::payload(seed ^ c << 8 ^ m, len));
                    }
                });
            }
        });
        drop(proxy);
        util::shutdown_and_join(upstream);
    });
}

#[test]
fn a_half_close_passes_through() {
    util::each_backend(|backend| {
        let upstream = echo_port(backend);
        let proxy = proxy(backend, upstream.local_addr().unwrap());
        let data = util::payload(util::seed(), 3 << 20);
        let mut c = util::connect(proxy.addr);
        let writer = std::thread::spawn({
            let mut w = c.try_clone().unwrap();
            let data = data.clone();
            move || {
                w.write_all(&data).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            }
        });
        let mut got = Vec::new();
        c.read_to_end(&mut got).expect("every byte, then EOF");
        writer.join().unwrap();
        util::assert_bytes(&got, &data, "echoed through the proxy");
        drop(proxy);
        util::shutdown_and_join(upstream);
    });
}

#[test]
fn a_client_that_does_not_read_is_held_back() {
    util::each_backend(|backend| {
        let upstream = echo_port(backend);
        let proxy = proxy(backend, upstream.local_addr().unwrap());
        let seed = util::seed();
        let flood = util::connect(proxy.addr);
        util::small_buffers(&flood);
        let total = 256 << 20;
        let written = util::write_until_stalled(&flood, seed, total);
        eprintln!("{backend}: the client could write {written} of {total} bytes");
        assert!(
            written < total / 4,
            "{backend}: nothing held the client back"
        );
        // Then it reads: everything comes back, and the stream flows again.
        let end = written + (4 << 20);
        let (got, how) = std::thread::scope(|s| {
            s.spawn(|| util::write_stream(&flood, seed, written, end).unwrap());
            util::read_stream_to_end(&flood, seed, 0)
        });
        assert_eq!((got, how), (end, util::End::Eof));
        drop(proxy);
        util::shutdown_and_join(upstream);
    });
}

#[test]
fn a_refused_upstream_closes_the_client() {
    util::each_backend(|backend| {
        // Nothing listens there.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = gone.local_addr().unwrap();
        drop(gone);
        let proxy = proxy(backend, to);
        // The reset may come so soon that it fails the connect itself.
        let mut c = match std::net::TcpStream::connect(proxy.addr) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{backend}: connecting: {e}"),
        };
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = c.write_all(b"anyone?");
        let mut buf = [0; 16];
        let end = c.read(&mut buf);
        assert!(
            matches!(end, Ok(0))
                || end.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{backend}: the client is closed"
        );
    });
}
