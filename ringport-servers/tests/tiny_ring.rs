//! Both servers on rings of 8 submission entries, so that the full-queue path (submit early,
//! reap when the kernel takes nothing) runs all the time: many concurrent clients, pipelined
//! names (legitimate and escaping ones mixed), timers re-armed with every request. Every byte
//! is verified, and no byte from outside the served folder ever comes.
// Linux only: drives the io_uring/epoll submission queue (8 entries) through its full-queue path,
// which IOCP does not have, and escapes through a Unix symlink.
#![cfg(target_os = "linux")]

mod util;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use util::files::{Client, Tree, KIB, MIB};
use util::{each_backend, within, Server};

const RING: u32 = 8;

#[test]
fn echo_through_a_tiny_ring() {
    each_backend(|backend| {
        let seed = util::seed();
        let mut cfg = ringport_servers::echo::EchoConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.port.workers = 2;
        cfg.port.backend = backend;
        cfg.port.ring_entries = RING;
        let port = ringport_servers::echo::start(&cfg).expect("the echo server starts");
        let addr = port.local_addr().unwrap();
        within(Duration::from_secs(60), "100 echo clients", move || {
            std::thread::scope(|s| {
                for client in 0..100u64 {
                    s.spawn(move || {
                        let stream = util::connect(addr);
                        for (i, len) in [1, 100, 64 * 1024, 1, 300 * 1024].iter().enumerate() {
                            let data = util::payload(seed ^ client ^ (i as u64) << 32, *len);
                            util::round_trip(&stream, &data);
                        }
                    });
                }
            });
        });
        util::shutdown_and_join(port);
    });
}

#[test]
fn files_through_a_tiny_ring() {
    let mut tree = Tree::new();
    let mut files: Vec<_> = (0..4)
        .map(|i| {
            tree.add(
                &format!("dir/file-{i}-with-a-longer-name.bin"),
                64 * KIB + i * 999,
            )
        })
        .collect();
    files.push(tree.add("big.bin", MIB));
    files.push(tree.add("empty", 0));
    let files = Arc::new(files);
    // What an escape would reach: the secret beside the served folder (the replies are
    // checked whole, so a byte of it would fail the test).
    std::os::unix::fs::symlink(tree.outside().join("secret.txt"), tree.path("link-out")).unwrap();
    each_backend(|backend| {
        let mut cfg = util::config(backend, tree.root());
        cfg.port.ring_entries = RING;
        // Short timers, re-armed with every request, so the queue always holds some.
        cfg.idle_timeout = Some(Duration::from_secs(5));
        cfg.request_timeout = Some(Duration::from_secs(5));
        let server = Server::start_with(&cfg);
        let (addr, files) = (server.addr, files.clone());
        within(
            Duration::from_secs(120),
            "100 pipelining clients",
            move || {
                let connected: Vec<_> = (0..100).map(|_| Client::connect(addr)).collect();
                let go = Arc::new(Barrier::new(connected.len()));
                let clients: Vec<_> = connected
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut client)| {
                        let (files, go) = (files.clone(), go.clone());
                        std::thread::spawn(move || {
                            let mine = [&files[i % 4], &files[(i + 1) % 6], &files[5]];
                            let mut request = Vec::new();
                            for file in mine {
                                request.extend_from_slice(file.name.as_bytes());
                                request.extend_from_slice(b"\n../secret.txt\r\nlink-out\n");
                            }
                            go.wait();
                            client.send(&request);
                            for file in mine {
                                client.expect_file(file);
                                client.expect_error("outside the served folder", b"../secret.txt");
                                client.expect_error("outside the served folder", b"link-out");
                            }
                            client.get(&files[i % 6]);
                        })
                    })
                    .collect();
                let failed = clients.into_iter().filter_map(|c| c.join().err()).count();
                assert_eq!(failed, 0, "{failed} of 100 clients failed");
            },
        );
        server.stop().expect("the server stops cleanly");
    });
}
