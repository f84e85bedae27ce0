//! Echo scenarios shared by the tests of every echo server (ringport's own and the models of
//! `ringport compare`): many connections served at once, and half-closes of every size.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::echo::{read_stream_to_end, write_stream, End};
use crate::net::connect;
use crate::stream::{assert_bytes, payload};

/// Sizes around servers' backpressure bounds and socket buffer sizes, for [`half_close_sizes`].
pub const HALF_CLOSE_SIZES: &[u64] = &[0, 1, 1000, 64 << 10, 300 << 10, 3 << 20];

/// One round over `conns`, all open: every connection sends its message (random, up to
/// 4000 bytes: small enough to sit in socket buffers, so writing all before reading any is
/// safe), then every echo is read back and checked.
///
/// # Panics
/// If an echo differs or does not come.
pub fn round_all_at_once(conns: &[TcpStream], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let messages: Vec<Vec<u8>> = (0..conns.len())
        .map(|_| payload(rng.gen(), rng.gen_range(1..=4000)))
        .collect();
    for (mut conn, message) in conns.iter().zip(&messages) {
        conn.write_all(message).unwrap();
    }
    for (i, (mut conn, message)) in conns.iter().zip(&messages).enumerate() {
        let mut echo = vec![0; message.len()];
        conn.read_exact(&mut echo)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_bytes(&echo, message, &format!("echo on connection {i}"));
    }
}

/// One client per size of [`HALF_CLOSE_SIZES`], all at once against the echo server at
/// `addr`: each writes its stream and half-closes, and must read every byte back, then EOF.
///
/// # Panics
/// If a client gets fewer or other bytes, or a reset.
pub fn half_close_sizes(addr: SocketAddr, seed: u64) {
    std::thread::scope(|s| {
        for (i, &len) in HALF_CLOSE_SIZES.iter().enumerate() {
            s.spawn(move || {
                let seed = seed ^ i as u64;
                let client = connect(addr);
                let (got, end) = std::thread::scope(|s| {
                    s.spawn(|| write_stream(&client, seed, 0, len).unwrap());
                    read_stream_to_end(&client, seed, 0)
                });
                assert_eq!((got, end), (len, End::Eof), "{len} bytes sent");
            });
        }
    });
}
