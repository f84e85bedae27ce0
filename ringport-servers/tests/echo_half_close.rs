//! A client that half-closes after sending gets every byte back, then EOF (the server
//! finishes its sends before closing).

mod util;

use std::thread;

/// Sizes around the server's backpressure bounds and socket buffer sizes.
const SIZES: &[u64] = &[0, 1, 1000, 64 << 10, 300 << 10, 3 << 20];

#[test]
fn half_close_gets_everything_back_then_eof() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let addr = port.local_addr().unwrap();
        thread::scope(|s| {
            for (i, &len) in SIZES.iter().enumerate() {
                s.spawn(move || {
                    let seed = seed ^ i as u64;
                    let client = util::connect(addr);
                    let (got, end) = thread::scope(|s| {
                        s.spawn(|| util::write_stream(&client, seed, 0, len).unwrap());
                        util::read_stream_to_end(&client, seed, 0)
                    });
                    assert_eq!((got, end), (len, util::End::Eof), "{len} bytes sent");
                });
            }
        });
        util::shutdown_and_join(port);
    }
}

#[test]
fn half_close_after_the_server_paused_receiving() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        let client = util::connect(port.local_addr().unwrap());
        // Fill everything up without reading, so that the server has stopped receiving
        // when the EOF comes; then read it all back.
        let written = util::write_until_stalled(&client, seed, 64 << 20);
        let (got, end) = thread::scope(|s| {
            s.spawn(|| util::write_stream(&client, seed, written, written + 1000).unwrap());
            util::read_stream_to_end(&client, seed, 0)
        });
        assert_eq!((got, end), (written + 1000, util::End::Eof));
        util::shutdown_and_join(port);
    }
}
