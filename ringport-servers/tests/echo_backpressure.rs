//! A client that sends 100 MiB without reading: the server stops receiving once
//! `PortBuilder::DEFAULT_MAX_UNSENT` bytes wait to be sent, so what the client can write stalls at socket buffers
//! plus that bound, far below 100 MiB; meanwhile other clients are served. Then the client
//! reads: every byte comes back, and the stream flows again.
//!
//! (The whole 100 MiB, and the server's memory, are checked through the real binary in
//! ringport-cli's tests.)

mod util;

use std::thread;

use ringport::PortBuilder;

const TOTAL: u64 = 100 << 20;

#[test]
fn unread_flood_is_stopped_by_backpressure() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        let flood = util::connect(addr);
        util::small_buffers(&flood);

        let written = util::write_until_stalled(&flood, seed, TOTAL);
        // Client buffers (the kernel doubles what was asked), the server's socket buffers at
        // their most, the unsent bytes at which the server pauses and one receive more.
        let bound = 4 * (64 << 10)
            + util::server_socket_buffers_max()
            + PortBuilder::DEFAULT_MAX_UNSENT as u64 * 2;
        eprintln!("the client could write {written} bytes; bound {bound}");
        assert!(written < bound, "{written} bytes accepted, bound {bound}");
        assert!(written < TOTAL / 2);

        // The server is not stuck on it: another client is served meanwhile.
        let other = util::connect(addr);
        util::round_trip(&other, &util::payload(seed ^ 1, 1 << 20));

        // Now read everything back, while writing 8 MiB more.
        let end = written + (8 << 20);
        let (got, how) = thread::scope(|s| {
            s.spawn(|| util::write_stream(&flood, seed, written, end).unwrap());
            util::read_stream_to_end(&flood, seed, 0)
        });
        assert_eq!((got, how), (end, util::End::Eof));
        util::round_trip(&other, &util::payload(seed ^ 2, 1 << 20));
        drop((flood, other));
        util::shutdown_and_join(port);
    }
}
