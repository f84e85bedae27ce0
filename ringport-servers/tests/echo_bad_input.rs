//! Clients that misbehave: connect and vanish (again and again, some with a reset, some
//! after half a message), or connect and say nothing. The server keeps serving everyone else,
//! and keeps the silent ones.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::thread;

#[test]
fn connect_and_vanish_again_and_again() {
    const VANISH: u64 = 400;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        // A well-behaved client runs throughout.
        let steady = util::connect(addr);
        for i in 0..VANISH {
            let c = util::connect(addr);
            match i % 4 {
                0 => {}
                1 => util::set_reset_on_close(&c),
                2 => (&c).write_all(&util::payload(seed ^ i, 5000)).unwrap(),
                _ => {
                    (&c).write_all(&util::payload(seed ^ i, 5000)).unwrap();
                    util::set_reset_on_close(&c);
                }
            }
            drop(c);
            if i % 50 == 0 {
                util::round_trip(&steady, &util::payload(seed ^ (i << 20), 20_000));
            }
        }
        util::round_trip(&steady, &util::payload(seed, 1 << 20));
        let fresh = util::connect(addr);
        util::round_trip(&fresh, &util::payload(seed ^ 1, 1 << 20));
        drop((steady, fresh));
        util::shutdown_and_join(port);
    }
}

#[test]
fn silent_clients_are_kept_while_others_are_served() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let silent: Vec<TcpStream> = (0..5).map(|_| util::connect(addr)).collect();
        thread::scope(|s| {
            for i in 0..16u64 {
                s.spawn(move || {
                    let c = util::connect(addr);
                    util::round_trip(&c, &util::payload(seed ^ i, 200_000));
                });
            }
        });
        // The silent ones were kept all along: they are served now.
        for (i, c) in silent.iter().enumerate() {
            util::round_trip(c, &util::payload(seed ^ (1000 + i as u64), 10_000));
        }
        drop(silent);
        util::shutdown_and_join(port);
    }
}
