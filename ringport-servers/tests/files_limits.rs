//! The server's limits: idle connections are closed after the idle timeout (a slow transfer
//! is not idle), and clients over `max_connections` are told "busy" and closed.

mod util;

use std::time::Duration;

use util::files::{Tree, KIB, MIB};
use util::{config, each_backend, Server};

#[test]
fn idle_timeout() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", 16 * MIB);
    each_backend(|backend| {
        let mut cfg = config(backend, tree.root());
        cfg.idle_timeout = Some(Duration::from_millis(500));
        cfg.request_timeout = Some(Duration::from_millis(500));
        let server = Server::start_with(&cfg);
        util::files::idle_timeout_scenario(server.addr, &big);
    });
}

#[test]
fn max_connections() {
    let mut tree = Tree::new();
    let file = tree.add("file.bin", 20 * KIB);
    each_backend(|backend| {
        let mut cfg = config(backend, tree.root());
        cfg.max_connections = 2;
        let server = Server::start_with(&cfg);
        util::files::max_connections_scenario(server.addr, &file);
    });
}
