//! `ringport echo` and a client that sends 100 MiB without reading: the server applies
//! backpressure, so the client's writes stop far below 100 MiB and the server's resident
//! memory stays bounded; other clients are served meanwhile; then the client reads, the whole
//! 100 MiB comes back verified, and the server still serves a new client.
// Unix only: reads the child's resident memory from /proc and stops it with SIGTERM.
#![cfg(unix)]

mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use ringport::PortBuilder;

const TOTAL: u64 = 100 << 20;
/// How much the server's resident memory may grow with one flooding client.
const RSS_BOUND: u64 = 64 << 20;

#[test]
fn unread_100_mib_is_bounded_then_echoed_whole() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let mut server = util::echo(backend);
        let addr = server.addr;
        util::round_trip(&util::connect(addr), b"warm up");
        let baseline = server.rss();

        // Watch the server's memory for as long as the client floods it.
        let flooding = AtomicBool::new(true);
        let pid = server.pid();
        let (written, peak) = thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut peak = 0;
                while flooding.load(Ordering::Relaxed) {
                    peak = peak.max(util::rss_of(pid));
                    thread::sleep(Duration::from_millis(10));
                }
                peak.max(util::rss_of(pid))
            });
            let flood = util::connect(addr);
            util::small_buffers(&flood);
            let written = util::write_until_stalled(&flood, seed, TOTAL);
            flooding.store(false, Ordering::Relaxed);
            let peak = watcher.join().unwrap();

            // Another client is served while the flood waits.
            let other = util::connect(addr);
            util::round_trip(&other, &util::payload(seed ^ 1, 1 << 20));

            // Now read it all back while writing the rest of the 100 MiB.
            let (got, end) = thread::scope(|s| {
                s.spawn(|| util::write_stream(&flood, seed, written, TOTAL).unwrap());
                util::read_stream_to_end(&flood, seed, 0)
            });
            assert_eq!((got, end), (TOTAL, util::End::Eof));
            (written, peak)
        });

        let bound = 4 * (64 << 10)
            + util::server_socket_buffers_max()
            + PortBuilder::DEFAULT_MAX_UNSENT as u64 * 2;
        let grew = peak.saturating_sub(baseline);
        eprintln!(
            "client wrote {written} bytes before stalling (bound {bound}); server RSS grew {grew}"
        );
        assert!(written < bound, "{written} bytes accepted, bound {bound}");
        assert!(written < TOTAL / 2);
        assert!(grew < RSS_BOUND, "server RSS grew {grew} bytes");

        // Healthy for a new client.
        util::round_trip(&util::connect(addr), &util::payload(seed ^ 2, 1 << 20));
        server.stop_cleanly(libc::SIGTERM, util::EXIT_BOUND);
    }
}
