//! `ringport echo` and SIGTERM: with clients mid-transfer, one that sends without reading and
//! idle ones, the process exits with status 0 within a bound; every client's echo up to the
//! end is correct, and idle clients see a clean EOF.
// Unix only: sends SIGTERM to the child (Windows has no signals; Ctrl+C events need a shared
// console).
#![cfg(unix)]

mod util;

use std::thread;

#[test]
fn sigterm_with_active_clients_exits_zero() {
    const STREAMING: u64 = 3;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let mut server = util::echo(backend);

        thread::scope(|s| {
            let clients = util::BusyClients::start(s, server.addr, seed, STREAMING);
            server.stop_cleanly(libc::SIGTERM, util::EXIT_BOUND);
            clients.check_ended();
        });
    }
}

/// A supervisor may take the listening line as "ready" and stop the server at once.
#[test]
fn sigterm_right_after_the_listening_line_exits_zero() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        for _ in 0..5 {
            util::echo(backend).stop_cleanly(libc::SIGTERM, util::EXIT_BOUND);
        }
    }
}
