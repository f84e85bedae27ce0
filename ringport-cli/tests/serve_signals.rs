//! `ringport serve` stops on SIGTERM and SIGINT with status 0: at once when idle, and within
//! its shutdown timeout during 50 transfers, each of which either finishes or is cut (a true
//! prefix, then the close). Nothing hangs.
// Unix only: SIGTERM and SIGINT sent to the child.
#![cfg(unix)]

mod util;

use std::time::Duration;

use util::each_backend;
use util::files::{Client, Transfers, Tree, MIB};

const TRANSFERS: usize = 50;
const SIZE: u64 = 24 * MIB;

#[test]
fn sigterm_and_sigint_when_idle() {
    let mut tree = Tree::new();
    let file = tree.add("f.txt", 1000);
    each_backend(|backend| {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let mut serve = util::serve(tree.root(), backend, &[]);
            Client::connect(serve.addr).get(&file);
            serve.stop_cleanly(signal, Duration::from_secs(30));
        }
    });
}

/// A supervisor may stop the server as soon as it says it is listening: SIGTERM sent right
/// after the first line must still be a clean shutdown (status 0), not death by the signal.
#[test]
fn sigterm_right_after_the_banner() {
    let tree = Tree::new();
    let root = tree.root().to_str().unwrap();
    each_backend(|backend| {
        let backend = backend.to_string();
        let args = [
            "serve",
            root,
            "--listen",
            "127.0.0.1:0",
            "--backend",
            &backend,
        ];
        for _ in 0..20 {
            let mut serve = util::ChildServer::start(&mut util::ringport(&args), "ringport serve");
            serve.stop_cleanly(libc::SIGTERM, Duration::from_secs(30));
        }
    });
}

#[test]
fn sigterm_during_fifty_transfers() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", SIZE);
    each_backend(|backend| {
        let mut serve = util::serve(tree.root(), backend, &["--shutdown-timeout", "2"]);
        let addr = serve.addr;
        let transfers = Transfers::start(addr, &big, TRANSFERS);
        serve.stop_cleanly(libc::SIGTERM, Duration::from_secs(30));
        let whole = transfers.finish();
        eprintln!("{backend}: {whole} of {TRANSFERS} transfers finished, the others were cut");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still accepting"
        );
    });
}

/// A second signal does not wait for the shutdown timeout: every connection is reset at once
/// (a transfer cut short must never look complete to its client), and the server exits with
/// status 130.
#[test]
fn a_second_signal_resets_transfers() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", SIZE);
    each_backend(|backend| {
        let mut serve = util::serve(tree.root(), backend, &["--shutdown-timeout", "60"]);
        let mut stalled: Vec<Client> = (0..5)
            .map(|_| {
                let mut c = Client::connect(serve.addr);
                c.small_receive_buffer();
                c.ask(big.name.as_bytes());
                c.expect_content(&big.name, 0, 64 * 1024);
                c
            })
            .collect();
        serve.signal(libc::SIGINT);
        std::thread::sleep(Duration::from_millis(300));
        serve.signal(libc::SIGINT);
        let status = serve.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(130), "{backend}: exit status {status}");
        for c in &mut stalled {
            let (got, end) = c.verify_until_closed(&big.name, 64 * 1024, SIZE);
            assert!(64 * 1024 + got < SIZE, "{backend}: the whole file came");
            assert_eq!(
                end,
                util::End::Reset,
                "{backend}: the cut ends with a reset"
            );
        }
    });
}
