//! Requests the server cannot keep up with, from a client that never reads the replies: ten
//! million names `\0` (each refused with a reply line) in 20 MB. The server stops serving the
//! connection once replies pile up and stops receiving once unframed bytes do, so its memory
//! stays within a few megabytes, whatever the client sends; others are served meanwhile; and
//! the send timeout ends the flood's connection.
// Unix only: reads the child's resident memory from /proc.
#![cfg(unix)]

mod util;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use util::each_backend;
use util::files::{Client, Tree, KIB};

/// How much the server's resident memory may grow with the flood.
const RSS_BOUND: u64 = 16 << 20;

#[test]
fn a_flood_of_names_without_reading_is_bounded() {
    let mut tree = Tree::new();
    let file = tree.add("f.txt", 3 * KIB);
    each_backend(|backend| {
        let server = util::serve(tree.root(), backend, &["--send-timeout", "5"]);
        Client::connect(server.addr).get(&file);
        let baseline = server.rss();
        let flooding = AtomicBool::new(true);
        let pid = server.pid();
        let (written, peak) = thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut peak = 0;
                while flooding.load(Ordering::Relaxed) {
                    peak = peak.max(util::rss_of(pid));
                    thread::sleep(Duration::from_millis(20));
                }
                peak.max(util::rss_of(pid))
            });
            let mut flood = util::connect(server.addr);
            util::small_buffers(&flood);
            flood
                .set_write_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let chunk = b"\0\n".repeat(32 * 1024);
            let mut written = 0usize;
            while written < 20_000_000 {
                match flood.write(&chunk) {
                    Ok(n) => written += n,
                    Err(_) => break, // stalled: the server stopped receiving
                }
            }
            // Another client is served while the flood is held.
            Client::connect(server.addr).get(&file);
            flooding.store(false, Ordering::Relaxed);
            (written, watcher.join().unwrap())
        });
        let grew = peak.saturating_sub(baseline);
        eprintln!("{backend}: the client wrote {written} bytes; the server grew {grew} bytes");
        assert!(
            written < 20_000_000,
            "{backend}: the server took the whole flood"
        );
        assert!(grew < RSS_BOUND, "{backend}: the server grew {grew} bytes");
    });
}
