//! Every request gets an answer, however its bytes are cut into segments: a name of exactly
//! the limit whose CR and LF arrive apart, an empty line (LF or CR LF alone), and a last name
//! that the client ends with EOF instead of LF.

mod util;

use std::time::Duration;

use util::files::Tree;
use util::{config, each_backend, Server};

/// Gives the server time to read one segment before the next is sent.
fn pause() {
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn a_name_of_the_limit_with_cr_and_lf_apart() {
    let mut tree = Tree::new();
    let name = "exactly-16-bytes";
    let file = tree.add(name, 1000);
    each_backend(|backend| {
        let mut cfg = config(backend, tree.root());
        cfg.max_name = name.len();
        let server = Server::start_with(&cfg);
        let mut client = server.connect();
        for cut in [
            &[name.as_bytes(), b"\r", b"\n"][..],
            &[name.as_bytes(), b"\r\n"],
        ] {
            for part in cut {
                client.send(part);
                pause();
            }
            client.expect_file(&file);
        }
        // One byte more is too long, whatever the segmentation.
        client.send(format!("{name}x").as_bytes());
        pause();
        client.send(b"\r\n");
        client.expect_error("name too long", b"");
    });
}

#[test]
fn empty_lines_are_answered() {
    let tree = Tree::new();
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        for line in [&b"\n"[..], b"\r\n"] {
            client.send(line);
            client.expect_error("no file name", b"");
        }
        client.send(b"\r");
        pause();
        client.send(b"\n");
        client.expect_error("no file name", b"");
    });
}

#[test]
fn a_last_name_ended_by_eof() {
    let mut tree = Tree::new();
    let a = tree.add("a.txt", 700);
    let b = tree.add("b.txt", 300);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        client.send(b"a.txt\nb.txt");
        client.finish_sending();
        client.expect_file(&a);
        client.expect_file(&b);
        client.expect_eof();
    });
}
