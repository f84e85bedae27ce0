//! `ringport serve --idle-timeout 0.5` closes idle connections but not a slow transfer;
//! `--max-connections 2` tells the third client "busy" and closes it; `--request-timeout`
//! cuts a name that never ends; meaningless time flags are refused.

mod util;

use std::time::{Duration, Instant};

use util::each_backend;
use util::files::{self, Client, Tree, KIB, MIB};

#[test]
fn idle_timeout_flag() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", 16 * MIB);
    each_backend(|backend| {
        let args = ["--idle-timeout", "0.5", "--request-timeout", "0.5"];
        let serve = util::serve(tree.root(), backend, &args);
        files::idle_timeout_scenario(serve.addr, &big);
    });
}

#[test]
fn max_connections_flag() {
    let mut tree = Tree::new();
    let file = tree.add("file.bin", 20 * KIB);
    each_backend(|backend| {
        let serve = util::serve(tree.root(), backend, &["--max-connections", "2"]);
        files::max_connections_scenario(serve.addr, &file);
    });
}

/// A name trickled a byte every 300 ms never ends, yet every byte would have re-armed an idle
/// timer: the request timeout counts from its first byte, so the client is told and closed
/// about a second later, while another client is served meanwhile.
#[test]
fn request_timeout_flag_cuts_a_trickled_name() {
    let mut tree = Tree::new();
    let file = tree.add("file.bin", 20 * KIB);
    each_backend(|backend| {
        let args = ["--request-timeout", "1", "--idle-timeout", "30"];
        let serve = util::serve(tree.root(), backend, &args);
        let start = Instant::now();
        let mut slow = Client::connect(serve.addr);
        let mut sent = 0;
        let reply = loop {
            // Each byte would restart an idle timer; the name never ends.
            slow.send(b"x");
            sent += 1;
            std::thread::sleep(Duration::from_millis(300));
            if sent == 2 {
                Client::connect(serve.addr).get(&file);
            }
            if let Some(reply) = slow.try_read_until_closed(Duration::from_millis(10)) {
                break reply;
            }
            assert!(sent < 30, "{backend}: still open after {sent} bytes");
        };
        eprintln!(
            "{backend}: closed after {:?} and {sent} bytes",
            start.elapsed()
        );
        assert_eq!(reply, files::REQUEST_TIMEOUT_LINE);
        assert!(start.elapsed() >= Duration::from_secs(1));
    });
}

/// Time flags are read one way: seconds, 0 for "off"; what cannot be meant is refused with a
/// message, never taken as "close at once" or "never".
#[test]
fn meaningless_times_are_refused() {
    for flag in [
        "--idle-timeout",
        "--request-timeout",
        "--send-timeout",
        "--shutdown-timeout",
    ] {
        for value in ["1e-300", "-1", "NaN", "inf", "abc"] {
            let arg = format!("{flag}={value}");
            let out = util::ringport(&["serve", ".", &arg]).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
            assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        }
    }
}
