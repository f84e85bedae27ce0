//! No descriptor leaks: the process has as many open descriptors after a file server has served
//! every kind of request (files, refusals, special files, aborted and cut transfers, busy and
//! idle clients) and has been joined as before it started.
//!
//! The tests here count `/proc/self/fd`, so they take turns ([`util::fd_counting`]) and keep no
//! client socket open when they count; this file holds nothing else.
// Unix only: serves FIFOs (libc `mkfifo`) and Unix symlinks among its requests, and lists
// `/proc/self/fd` on failure.
#![cfg(unix)]

mod util;

use std::fs::OpenOptions;
use std::time::Duration;

use util::files::{Client, Tree, KIB, MIB};
use util::{config, each_backend, fd_count, fd_counting, Server};

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn start_and_join_without_clients() {
    let _turn = fd_counting();
    let tree = Tree::new();
    each_backend(|backend| {
        let before = fd_count();
        let server = Server::start(backend, tree.root());
        assert!(fd_count() > before, "the server opened nothing?");
        server.stop().expect("the server stops cleanly");
        assert_eq!(fd_count(), before, "descriptors left by a joined server");
    });
}

#[test]
fn every_kind_of_request_then_join() {
    let _turn = fd_counting();
    let mut tree = Tree::new();
    let small = tree.add("small.txt", 3 * KIB);
    let mid = tree.add("mid.bin", 8 * MIB);
    mkfifo(&tree.path("fifo"));
    std::fs::create_dir(tree.path("dir")).unwrap();
    std::os::unix::fs::symlink("loop", tree.path("loop")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", tree.path("out")).unwrap();
    each_backend(|backend| {
        tree.add("cut.bin", 32 * MIB);
        let before = fd_count();
        let mut cfg = config(backend, tree.root());
        cfg.max_connections = 30;
        cfg.idle_timeout = Some(Duration::from_millis(300));
        let server = Server::start_with(&cfg);
        {
            // Files and refusals of every kind, pipelined.
            let mut client = server.connect();
            client.send(b"small.txt\nfifo\ndir\nloop\nout\n../x\nnope\na\0b\nmid.bin\n");
            client.expect_file(&small);
            for _ in 0..7 {
                let line = client.read_line();
                assert!(
                    line.starts_with(b"error: "),
                    "{:?}",
                    line.escape_ascii().to_string()
                );
            }
            client.expect_file(&mid);
            // Transfers abandoned midway: closed with unread data, and reset.
            for reset in [false, true] {
                let mut gone = server.connect();
                gone.ask(b"mid.bin");
                gone.expect_content("mid.bin", 0, 100 * 1024);
                if reset {
                    gone.reset();
                }
            }
            // A transfer cut short by the file shrinking.
            let mut cut = server.connect();
            cut.small_receive_buffer();
            cut.ask(b"cut.bin");
            cut.expect_content("cut.bin", 0, 64 * 1024);
            OpenOptions::new()
                .write(true)
                .open(tree.path("cut.bin"))
                .unwrap()
                .set_len(0)
                .unwrap();
            let (_, end) = cut.verify_until_closed("cut.bin", 64 * 1024, 32 * MIB);
            assert_eq!(end, util::End::Reset, "a cut transfer ends with a reset");
            // An idle client is closed by the server.
            let mut idle = server.connect();
            let _ = idle.read_until_closed(0);
            // A half-closed client served to the end.
            let mut half = server.connect();
            half.send(b"small.txt\n");
            half.finish_sending();
            half.expect_file(&small);
            half.expect_eof();
            // Last (no new client may come after, while slots are being freed): 34 clients
            // for 30 slots: some are told "busy"; the others are closed when idle.
            let crowd: Vec<Client> = (0..29).map(|_| server.connect()).collect();
            let mut over: Vec<Client> = (0..5).map(|_| server.connect()).collect();
            assert!(
                fd_count() > before + 2 * 34,
                "counting the wrong descriptors?"
            );
            drop(crowd);
            for client in &mut over {
                let _ = client.read_until_closed(100);
            }
            drop(over);
            // The first client, idle since its files came, is closed too.
            assert_eq!(client.read_until_closed(0), b"");
        }
        // Every client socket of this test is closed now.
        server.stop().expect("the server stops cleanly");
        assert_eq!(fd_count(), before, "descriptors left by a joined server");
    });
}
