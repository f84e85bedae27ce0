//! Many clients at once: 200 connections, all open before any asks, each downloading a 1 MiB
//! file that is verified by hash.

mod util;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use util::files::{Client, Tree, MIB};
use util::{each_backend, within, Server};

const CLIENTS: usize = 200;

#[test]
fn two_hundred_clients_at_once() {
    let mut tree = Tree::new();
    let files: Arc<Vec<_>> = Arc::new(
        (0..4)
            .map(|i| tree.add(&format!("file{i}.bin"), MIB + i * 1000))
            .collect(),
    );
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let (addr, files) = (server.addr, files.clone());
        within(Duration::from_secs(60), "200 downloads", move || {
            // Every client is connected before any asks, and all ask at once.
            let connected: Vec<_> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
            let go = Arc::new(Barrier::new(CLIENTS));
            let clients: Vec<_> = connected
                .into_iter()
                .enumerate()
                .map(|(i, mut client)| {
                    let (files, go) = (files.clone(), go.clone());
                    std::thread::spawn(move || {
                        go.wait();
                        client.get(&files[i % files.len()]);
                        // And a second request on the same connection.
                        client.get(&files[(i + 1) % files.len()]);
                    })
                })
                .collect();
            let failed = clients
                .into_iter()
                .map(|c| c.join())
                .filter(Result::is_err)
                .count();
            assert_eq!(failed, 0, "{failed} of {CLIENTS} clients failed");
        });
        server.stop().expect("the server stops cleanly");
    });
}
