//! A thousand connections served at once: all are opened first and stay open, then each
//! sends a message and gets it back while all the others are open too.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One round: every connection sends its message, then every echo is read back and checked.
fn round(conns: &[TcpStream], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Small enough to sit in socket buffers, so that writing all before reading any is safe.
    let messages: Vec<Vec<u8>> = (0..conns.len())
        .map(|_| util::payload(rng.gen(), rng.gen_range(1..=4000)))
        .collect();
    for (mut conn, message) in conns.iter().zip(&messages) {
        conn.write_all(message).unwrap();
    }
    for (i, (mut conn, message)) in conns.iter().zip(&messages).enumerate() {
        let mut echo = vec![0; message.len()];
        conn.read_exact(&mut echo)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        util::assert_bytes(&echo, message, &format!("echo on connection {i}"));
    }
}

fn many_connections(n: usize) {
    util::raise_fd_limit();
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let conns: Vec<TcpStream> = (0..n).map(|_| util::connect(addr)).collect();
        round(&conns, seed);
        // In the other order too: every connection is still served.
        let reversed: Vec<TcpStream> = conns.into_iter().rev().collect();
        round(&reversed, seed ^ 1);
        drop(reversed);
        util::shutdown_and_join(port);
    }
}

#[test]
fn thousand_connections_at_once() {
    many_connections(1000);
}

#[test]
#[ignore = "stress: run on purpose"]
fn stress_eight_thousand_connections_at_once() {
    many_connections(8000);
}
