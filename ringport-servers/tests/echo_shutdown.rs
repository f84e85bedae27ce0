//! Shutting the echo server down with clients in the middle of transfers: it exits cleanly and
//! promptly, every client sees its connection end after a correct prefix of its echo, and
//! idle clients see a clean EOF.

mod util;

use std::net::TcpStream;
use std::thread;

#[test]
fn shutdown_with_active_clients_is_clean_and_prompt() {
    const STREAMING: u64 = 4;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();

        thread::scope(|s| {
            // Clients mid-stream, one stopped by backpressure, idle ones.
            let clients = util::BusyClients::start(s, addr, seed, STREAMING);
            // A hang guard, not a timing assertion: the deaf client's connection is aborted
            // at the server's half-second shutdown timeout.
            util::shutdown_and_join(port);

            clients.check_ended();
            // Nothing listens any more.
            assert!(TcpStream::connect(addr).is_err());
        });
    }
}
