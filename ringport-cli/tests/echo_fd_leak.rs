//! `ringport echo` closes the descriptor of every connection once its client has gone: the
//! child's descriptor count returns to where it was before the clients came, whichever way
//! they left (EOF, half-close, reset, reset while the server was still sending).
// Unix only: counts the child's descriptors in /proc/PID/fd (Windows cannot count another
// process's handles this way).
#![cfg(unix)]

mod util;

use std::thread;
use std::time::Duration;

#[test]
fn descriptors_return_to_baseline_after_clients_leave() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let server = util::echo(backend);
        let addr = server.addr;
        // Serve one client first, so that everything set up lazily is set up.
        util::round_trip(&util::connect(addr), b"warm up");
        let baseline = util::settled(Duration::from_secs(10), Duration::from_millis(300), || {
            server.fd_count()
        });

        let mut clients = Vec::new();
        for i in 0..40u64 {
            let c = util::connect(addr);
            util::round_trip(&c, &util::payload(seed ^ i, 50_000));
            clients.push(c);
        }
        util::wait_until(
            Duration::from_secs(10),
            "the server holds every connection",
            || server.fd_count() >= baseline + clients.len(),
        );
        thread::scope(|s| {
            for (i, c) in clients.into_iter().enumerate() {
                s.spawn(move || match i % 4 {
                    0 => drop(c),
                    1 => {
                        let (n, end) = thread::scope(|s| {
                            s.spawn(|| util::write_stream(&c, seed, 0, 100_000).unwrap());
                            util::read_stream_to_end(&c, seed, 0)
                        });
                        assert_eq!((n, end), (100_000, util::End::Eof));
                    }
                    2 => util::set_reset_on_close(&c),
                    _ => {
                        // Leaves with the server still holding bytes to send it.
                        util::write_until_stalled(&c, seed, 16 << 20);
                        util::set_reset_on_close(&c);
                    }
                });
            }
        });
        util::wait_until(
            Duration::from_secs(10),
            "the server's descriptors return to their baseline",
            || server.fd_count() == baseline,
        );
    }
}
