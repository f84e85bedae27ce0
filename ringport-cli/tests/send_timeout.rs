//! The send timeout: a client that stops reading cannot hold its connection, its socket or
//! its file. `--send-timeout 1` resets such a connection about a second after its last
//! progress, also during a graceful close, while the server serves everyone else.
// Unix only: counts the child's descriptors in /proc/PID/fd.
#![cfg(unix)]

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use util::files::{download_when_free, Client, Tree, MIB};
use util::{each_backend, settled, wait_until, End};

/// Writes without reading, 64 MiB or until the server stops taking bytes; returns how many it
/// took, and whether a write already saw the server reset the connection.
fn flood(mut s: &TcpStream) -> (usize, bool) {
    s.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut total = 0;
    while total < 64 << 20 {
        match s.write(&chunk) {
            Ok(n) => total += n,
            Err(e) => {
                let reset = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                );
                return (total, reset);
            }
        }
    }
    (total, false)
}

/// Reads until EOF or a reset.
fn read_to_the_end(mut s: &TcpStream) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (got, End::Eof),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, End::Reset),
            Err(e) => panic!("reading after {} bytes: {e}", got.len()),
        }
    }
}

/// An echo client that sends, never reads and half-closes: the server's graceful close
/// waits for sends that never progress, until the send timeout resets the connection.
#[test]
fn echo_client_that_never_reads_and_half_closes() {
    each_backend(|backend| {
        let b = backend.to_string();
        let args = ["echo", "--listen", "127.0.0.1:0", "--threads", "1"];
        let mut cmd = util::ringport(&args);
        cmd.args(["--backend", &b, "--send-timeout", "1"]);
        let server = util::ChildServer::start(&mut cmd, "ringport echo");
        util::round_trip(&util::connect(server.addr), b"warm up");
        let before = settled(Duration::from_secs(10), Duration::from_millis(200), || {
            server.fd_count()
        });
        let hog = util::connect(server.addr);
        util::small_buffers(&hog);
        let (took, reset_seen) = flood(&hog);
        // Half-closed: the server's graceful close waits for its echo to drain, which it never
        // does. (If the echo stalled for the whole timeout already, the reset came first.)
        let _ = hog.shutdown(Shutdown::Write);
        let start = Instant::now();
        // Meanwhile another client is served.
        util::round_trip(&util::connect(server.addr), &util::payload(1, 1 << 20));
        wait_until(
            Duration::from_secs(10),
            "the hog's connection is gone",
            || server.fd_count() <= before,
        );
        let gone = start.elapsed();
        eprintln!("{backend}: took {took} bytes; connection gone {gone:?} after the half-close");
        let (echoed, end) = read_to_the_end(&hog);
        assert!(
            echoed.iter().all(|&b| b == 7),
            "what came back is what was sent"
        );
        assert!(
            echoed.len() < took,
            "{backend}: all {took} bytes came back: not cut"
        );
        // The reset is reported once: to the flood's last write if it came that early.
        assert!(
            reset_seen || end == End::Reset,
            "{backend}: {end:?} after {} of {took} bytes, not a reset",
            echoed.len()
        );
    });
}

/// Twenty clients take every slot, ask for a large file and never read: with an idle timeout
/// of 3 s they would hold 40 descriptors forever. The send timeout resets them; the slots come
/// back and a newcomer is served.
#[test]
fn unread_transfers_free_their_slots() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", 64 * MIB);
    let small = tree.add("small.txt", 5000);
    each_backend(|backend| {
        let args = [
            "--max-connections",
            "20",
            "--idle-timeout",
            "3",
            "--send-timeout",
            "1",
        ];
        let server = util::serve(tree.root(), backend, &args);
        let mut first = Client::connect(server.addr);
        first.get(&small);
        drop(first);
        let before = settled(Duration::from_secs(10), Duration::from_millis(200), || {
            server.fd_count()
        });
        let mut stuck: Vec<Client> = (0..20)
            .map(|_| {
                let mut c = Client::connect(server.addr);
                c.small_receive_buffer();
                c.ask(big.name.as_bytes());
                c
            })
            .collect();
        for c in &mut stuck {
            c.expect_content(&big.name, 0, 4096);
        }
        let start = Instant::now();
        // Every slot is taken: a newcomer is told the server is busy, for now.
        let mut newcomer = Client::connect(server.addr);
        newcomer.ask(small.name.as_bytes());
        assert!(
            newcomer.busy_or_file(&small),
            "{backend}: a 21st client was served while 20 held every slot"
        );
        // Then the send timeout frees the slots: descriptors back, newcomers served.
        wait_until(
            Duration::from_secs(15),
            "the stuck transfers are gone",
            || server.fd_count() <= before,
        );
        eprintln!(
            "{backend}: stuck transfers gone after {:?}",
            start.elapsed()
        );
        download_when_free(server.addr, &small);
        for c in &mut stuck {
            let (_, end) = c.verify_until_closed(&big.name, 4096, big.size);
            assert_eq!(
                end,
                End::Reset,
                "{backend}: a cut transfer ends with a reset"
            );
        }
    });
}
