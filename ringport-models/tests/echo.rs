//! Every model's echo service passes the echo tests of ringport's own server: every byte
//! back in order on its own connection, for random sizes, half-closes, clients that stop
//! reading, and a thousand connections.
// Linux only, like ringport-models itself (it measures with Linux facilities).
#![cfg(target_os = "linux")]

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringport_models::Model;

const MAX: usize = 1 << 20;

#[test]
fn concurrent_clients_random_sizes() {
    util::each_echo(|_, addr| {
        let seed = util::seed();
        thread::scope(|s| {
            for client in 0..16u64 {
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed ^ client);
                    let stream = util::connect(addr);
                    for message in 0..3 {
                        let len = match (client, message) {
                            (0, 0) => 1,
                            (1, 0) => MAX,
                            _ => rng.gen_range(1..=MAX),
                        };
                        util::round_trip(&stream, &util::payload(rng.gen(), len));
                    }
                });
            }
        });
    });
}

#[test]
fn half_close_gets_everything_back_then_eof() {
    util::each_echo(|_, addr| util::half_close_sizes(addr, util::seed()));
}

/// A client that sends without reading is held back (the socket stops taking bytes), and
/// gets every byte back once it reads.
#[test]
fn client_that_stops_reading_is_held_back_then_served() {
    util::each_echo(|model, addr| {
        let seed = util::seed();
        let client = util::connect(addr);
        let written = util::write_until_stalled(&client, seed, 64 << 20);
        assert!(
            written < 64 << 20,
            "{model}: the server buffered everything"
        );
        let (got, end) = thread::scope(|s| {
            s.spawn(|| util::write_stream(&client, seed, written, written + 1000).unwrap());
            util::read_stream_to_end(&client, seed, 0)
        });
        assert_eq!((got, end), (written + 1000, util::End::Eof), "{model}");
    });
}

/// A thousand connections open at once. Every model serves each of them in turn (the pool
/// serves the queued ones as earlier clients leave); every model but the pool also serves
/// all of them while all the others stay open.
#[test]
fn thousand_connections() {
    util::each_echo(|model, addr| {
        let seed = util::seed();
        let conns: Vec<TcpStream> = (0..1000).map(|_| util::connect(addr)).collect();
        if model != Model::Pool {
            util::round_all_at_once(&conns, seed);
            let reversed: Vec<TcpStream> =
                conns.iter().rev().map(|c| c.try_clone().unwrap()).collect();
            util::round_all_at_once(&reversed, seed ^ 1);
        }
        for (i, conn) in conns.into_iter().enumerate() {
            util::round_trip(&conn, &util::payload(seed ^ (i as u64 + 7), 100 + i));
        }
    });
}

/// The pool serves as many clients at once as it has threads; the next one waits in the
/// queue until one of them leaves (the article's model 4, as built).
#[test]
fn pool_serves_one_client_per_thread() {
    let mut cfg = util::config();
    cfg.pool_threads = 2;
    let server =
        ringport_models::start(Model::Pool, &ringport_models::Service::Echo, &cfg).unwrap();
    let addr = server.local_addr();
    let seed = util::seed();
    let a = util::connect(addr);
    let b = util::connect(addr);
    util::round_trip(&a, &util::payload(seed, 10));
    util::round_trip(&b, &util::payload(seed ^ 1, 10));
    let mut c = util::connect(addr);
    c.write_all(b"queued").unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 6];
    assert!(c.read_exact(&mut buf).is_err(), "the third client waits");
    drop(a);
    c.set_read_timeout(Some(util::IO_TIMEOUT)).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"queued");
    util::round_trip(&b, &util::payload(seed ^ 2, 10));
    server.stop().unwrap();
}
