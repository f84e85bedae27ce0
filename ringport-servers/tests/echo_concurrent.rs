//! Many clients at once, each sending messages of random size (1 B to 1 MiB) with random
//! content: every byte comes back, in order, on its own connection.

mod util;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MAX: usize = 1 << 20;

fn concurrent_clients(clients: u64, messages: usize) {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        std::thread::scope(|s| {
            for client in 0..clients {
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed ^ client);
                    let stream = util::connect(addr);
                    for message in 0..messages {
                        // The extremes always, random sizes in between.
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
        util::shutdown_and_join(port);
    }
}

#[test]
fn concurrent_clients_random_sizes() {
    concurrent_clients(32, 3);
}

#[test]
#[ignore = "stress: run on purpose"]
fn stress_concurrent_clients_random_sizes() {
    concurrent_clients(64, 50);
}
