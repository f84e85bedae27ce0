//! Clients that reset abruptly (`SO_LINGER` 0, then close) in the middle of a transfer do not
//! disturb the clients running beside them, and the server goes on serving new ones.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Connects, writes as much as the socket takes at once of a 2 MiB message, reads a little of
/// the echo (so the server is sending too), then resets.
fn reset_mid_transfer(addr: std::net::SocketAddr, seed: u64) {
    let client = util::connect(addr);
    util::small_buffers(&client);
    let message = util::payload(seed, 2 << 20);
    client.set_nonblocking(true).unwrap();
    let mut sent = 0;
    while sent < message.len() {
        match (&client).write(&message[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("writing: {e}"),
        }
    }
    client.set_nonblocking(false).unwrap();
    let mut some = vec![0; sent.min(1000)];
    (&client).read_exact(&mut some).unwrap();
    util::assert_bytes(&some, &message[..some.len()], "echo before the reset");
    util::set_reset_on_close(&client);
}

#[test]
fn resets_mid_transfer_do_not_disturb_others() {
    const GOOD: u64 = 8;
    const BAD: u64 = 4;
    const RESETS_EACH: u64 = 10;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let resetting = AtomicBool::new(true);
        thread::scope(|s| {
            let bad: Vec<_> = (0..BAD)
                .map(|b| {
                    s.spawn(move || {
                        for r in 0..RESETS_EACH {
                            reset_mid_transfer(addr, seed ^ (b << 32 | r));
                        }
                    })
                })
                .collect();
            let good: Vec<_> = (0..GOOD)
                .map(|g| {
                    let resetting = &resetting;
                    s.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(seed ^ g);
                        let client = util::connect(addr);
                        // Keep going while resets happen, and a few messages after.
                        let mut after = 0;
                        while after < 3 {
                            let len = rng.gen_range(1..=512 << 10);
                            util::round_trip(&client, &util::payload(rng.gen(), len));
                            if !resetting.load(Ordering::Relaxed) {
                                after += 1;
                            }
                        }
                    })
                })
                .collect();
            for b in bad {
                b.join().unwrap();
            }
            resetting.store(false, Ordering::Relaxed);
            for g in good {
                g.join().unwrap();
            }
        });
        // And a new client after all that.
        let client = util::connect(addr);
        util::round_trip(&client, &util::payload(seed, 100_000));
        drop(client);
        util::shutdown_and_join(port);
    }
}
