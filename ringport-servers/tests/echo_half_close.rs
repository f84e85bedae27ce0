//! A client that half-closes after sending gets every byte back, then EOF (the server
//! finishes its sends before closing).

mod util;

use std::thread;

#[test]
fn half_close_gets_everything_back_then_eof() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let port = util::start_echo(backend);
        util::half_close_sizes(port.local_addr().unwrap(), seed);
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
