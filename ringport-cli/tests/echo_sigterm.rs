//! `ringport echo` and SIGTERM: with clients mid-transfer, one that sends without reading and
//! idle ones, the process exits with status 0 within a bound; every client's echo up to the
//! end is correct, and idle clients see a clean EOF.

mod util;

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

#[test]
fn sigterm_with_active_clients_exits_zero() {
    const STREAMING: u64 = 3;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let mut server = util::Server::echo(backend);
        let addr = server.addr;
        let echoed: Vec<AtomicU64> = (0..STREAMING).map(|_| AtomicU64::new(0)).collect();

        thread::scope(|s| {
            let mut readers = Vec::new();
            for (i, echoed) in echoed.iter().enumerate() {
                let seed = seed ^ i as u64;
                let client = util::connect(addr);
                let writer = client.try_clone().unwrap();
                s.spawn(move || {
                    let _ = util::write_stream(&writer, seed, 0, u64::MAX);
                });
                readers.push(s.spawn(move || {
                    let mut chunk = vec![0; 64 * 1024];
                    let mut pos = 0;
                    loop {
                        match std::io::Read::read(&mut &client, &mut chunk) {
                            Ok(0) => return,
                            Ok(n) => {
                                util::check_stream(seed, pos, &chunk[..n], "echo");
                                pos += n as u64;
                                echoed.store(pos, Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                            Err(e) => panic!("streaming client {i}: {e}"),
                        }
                    }
                }));
            }
            let deaf = util::connect(addr);
            util::write_until_stalled(&deaf, seed, 64 << 20);
            let idle: Vec<TcpStream> = (0..3)
                .map(|i| {
                    let c = util::connect(addr);
                    util::round_trip(&c, &util::payload(seed ^ (100 + i), 1000));
                    c
                })
                .collect();
            util::wait_until(util::IO_TIMEOUT, "every stream is under way", || {
                echoed.iter().all(|e| e.load(Ordering::Relaxed) > 1 << 20)
            });

            server.terminate();
            let status = server.wait_exit();
            assert!(
                status.success(),
                "exit status {status}; log:\n{}",
                server.log()
            );

            for r in readers {
                r.join().unwrap();
            }
            for c in &idle {
                assert_eq!(
                    util::read_stream_to_end(c, 0, 0),
                    (0, util::End::Eof),
                    "idle clients are closed cleanly"
                );
            }
            drop(deaf);
        });
    }
}

/// A supervisor may take the listening line as "ready" and stop the server at once.
#[test]
fn sigterm_right_after_the_listening_line_exits_zero() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        for _ in 0..5 {
            let mut server = util::Server::echo(backend);
            server.terminate();
            let status = server.wait_exit();
            assert!(
                status.success(),
                "exit status {status}; log:\n{}",
                server.log()
            );
        }
    }
}
