//! `ringport serve` holds as many descriptors after a batch of clients of every kind (files,
//! refusals, special files, abandoned transfers, busy and idle clients) as before it: counted
//! in `/proc/PID/fd` of the binary.
// Unix only: counts the child's descriptors in /proc/PID/fd, serves a Unix symlink and stops the
// child with SIGTERM.
#![cfg(unix)]

mod util;

use std::time::Duration;

use util::files::{Client, Tree, KIB, MIB};
use util::{each_backend, eventually, settled, EVENTUALLY};

#[test]
fn descriptors_come_back_after_a_batch_of_clients() {
    let mut tree = Tree::new();
    let small = tree.add("small.txt", 2 * KIB);
    let mid = tree.add("mid.bin", 8 * MIB);
    std::fs::create_dir(tree.path("dir")).unwrap();
    std::os::unix::fs::symlink("loop", tree.path("loop")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", tree.path("out")).unwrap();
    each_backend(|backend| {
        let args = ["--idle-timeout", "0.3", "--max-connections", "25"];
        let mut serve = util::serve(tree.root(), backend, &args);
        // A first client, served and closed by the server (its EOF comes from the server's
        // close), so that the count starts with everything set up and no client.
        let mut first = Client::connect(serve.addr);
        first.ask(b"small.txt");
        first.finish_sending();
        first.expect_file(&small);
        first.expect_eof();
        let before = settled(EVENTUALLY, Duration::from_millis(100), || serve.fd_count());
        {
            // Transfers abandoned midway, with a close and with a reset.
            for reset in [false, true] {
                let mut gone = Client::connect(serve.addr);
                gone.ask(b"mid.bin");
                gone.expect_content("mid.bin", 0, 100 * 1024);
                if reset {
                    gone.reset();
                }
            }
            // A half-closed client served to the end, then closed.
            let mut half = Client::connect(serve.addr);
            half.send(b"mid.bin\n");
            half.finish_sending();
            half.expect_file(&mid);
            half.expect_eof();
            // An idle client is closed by the server.
            assert_eq!(Client::connect(serve.addr).read_until_closed(0), b"");
            // 20 clients at once, each with a file and refusals.
            let mut crowd: Vec<Client> = (0..20).map(|_| Client::connect(serve.addr)).collect();
            for client in &mut crowd {
                client.send(b"small.txt\ndir\nloop\nout\n/etc/passwd\nnope\n");
            }
            for client in &mut crowd {
                client.expect_file(&small);
                for _ in 0..5 {
                    let line = client.read_line();
                    assert!(
                        line.starts_with(b"error: "),
                        "{:?}",
                        line.escape_ascii().to_string()
                    );
                }
            }
            assert!(
                serve.fd_count() >= before + 20,
                "20 connections, yet {} descriptors (from {before})",
                serve.fd_count()
            );
            // Last (no new client may come after, while slots are being freed): over the
            // limit of 25, some of these are told "busy".
            let mut over: Vec<Client> = (0..10).map(|_| Client::connect(serve.addr)).collect();
            drop(crowd);
            for client in &mut over {
                let _ = client.read_until_closed(100);
            }
            drop(over);
        }
        eventually(EVENTUALLY, "descriptors back to where they were", || {
            (serve.fd_count() == before).then_some(())
        });
        serve.stop_cleanly(libc::SIGTERM, Duration::from_secs(30));
    });
}
