//! A thousand connections served at once: all are opened first and stay open, then each
//! sends a message and gets it back while all the others are open too.

mod util;

use std::net::TcpStream;

fn many_connections(n: usize) {
    util::raise_fd_limit();
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let conns: Vec<TcpStream> = (0..n).map(|_| util::connect(addr)).collect();
        util::round_all_at_once(&conns, seed);
        // In the other order too: every connection is still served.
        let reversed: Vec<TcpStream> = conns.into_iter().rev().collect();
        util::round_all_at_once(&reversed, seed ^ 1);
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
