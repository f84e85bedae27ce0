//! Shutdown during 50 transfers: the port joins within a bound, and every client either gets
//! its whole file or a true prefix of it and then the close. Nothing hangs.

mod util;

use std::time::{Duration, Instant};

use util::files::{Transfers, Tree, MIB};
use util::{each_backend, Server};

const TRANSFERS: usize = 50;
const SIZE: u64 = 24 * MIB;

#[test]
fn shutdown_during_fifty_transfers() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", SIZE);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let handle = server.handle();
        let addr = server.addr;
        let transfers = Transfers::start(addr, &big, TRANSFERS);
        let start = Instant::now();
        handle.shutdown();
        server
            .join(Duration::from_secs(30))
            .expect("the server exits cleanly");
        eprintln!("{backend}: joined {:?} after the shutdown", start.elapsed());
        let whole = transfers.finish();
        eprintln!("{backend}: {whole} of {TRANSFERS} transfers finished, the others were cut");
        // New connections are refused: the port is gone.
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still accepting"
        );
    });
}
