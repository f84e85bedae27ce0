//! Shutting the echo server down with clients in the middle of transfers: it exits cleanly and
//! promptly, every client sees its connection end after a correct prefix of its echo, and
//! idle clients see a clean EOF.

mod util;

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

#[test]
fn shutdown_with_active_clients_is_clean_and_prompt() {
    const STREAMING: u64 = 4;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let echoed: Vec<AtomicU64> = (0..STREAMING).map(|_| AtomicU64::new(0)).collect();

        thread::scope(|s| {
            // Streaming clients: an endless stream written and its echo checked on the fly.
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
                            Ok(0) => return util::End::Eof,
                            Ok(n) => {
                                util::check_stream(seed, pos, &chunk[..n], "echo");
                                pos += n as u64;
                                echoed.store(pos, Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                                return util::End::Reset
                            }
                            Err(e) => panic!("streaming client {i}: {e}"),
                        }
                    }
                }));
            }
            // A client that sends without reading, stopped by backpressure.
            let deaf = util::connect(addr);
            util::write_until_stalled(&deaf, seed, 64 << 20);
            // Idle clients, each served once.
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

            port.shutdown();
            // A hang guard, not a timing assertion: the deaf client's connection is aborted
            // at the server's half-second shutdown timeout.
            util::within(Duration::from_secs(10), "joining the server", move || {
                port.join()
            })
            .expect("workers exit cleanly");

            for r in readers {
                r.join().unwrap();
            }
            for c in &idle {
                let (n, end) = util::read_stream_to_end(c, 0, 0);
                assert_eq!(
                    (n, end),
                    (0, util::End::Eof),
                    "idle clients are closed cleanly"
                );
            }
            // Nothing listens any more.
            assert!(TcpStream::connect(addr).is_err());
            drop(deaf);
        });
    }
}
