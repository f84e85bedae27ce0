//! One connection serves many requests in order: one after another, or pipelined (several
//! names in one write, answered in the order asked, files and refusals interleaved).

mod util;

use util::files::{Tree, KIB, MIB};
use util::{each_backend, Server};

#[test]
fn several_files_one_after_another() {
    let mut tree = Tree::new();
    let files = [
        tree.add("a.txt", 10),
        tree.add("sub/b.bin", 100 * KIB),
        tree.add("empty", 0),
        tree.add("c.bin", 2 * MIB + 3),
        tree.add("d d.txt", 4 * KIB),
    ];
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        for round in 0..3 {
            for file in &files {
                client.get(file);
            }
            client.ask(format!("missing-{round}").as_bytes());
            client.expect_error("no such file", format!("missing-{round}").as_bytes());
        }
    });
}

/// Ten names in one write, existing and missing mixed, with CRLF and blank lines among them
/// (each blank line is answered too: every line gets a reply).
#[test]
fn ten_pipelined_names_answered_in_order() {
    let mut tree = Tree::new();
    let small = tree.add("small.txt", 777);
    let empty = tree.add("empty", 0);
    let mid = tree.add("mid.bin", 300 * KIB);
    let big = tree.add("big.bin", MIB);
    std::fs::create_dir(tree.path("dir")).unwrap();
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        client.send(
            b"small.txt\nnope1\r\nempty\n\nmid.bin\r\n../x\nsmall.txt\n\r\ndir\nnope2\nbig.bin\nempty\n",
        );
        client.expect_file(&small);
        client.expect_error("no such file", b"nope1");
        client.expect_file(&empty);
        client.expect_error("no file name", b"");
        client.expect_file(&mid);
        client.expect_error("outside the served folder", b"../x");
        client.expect_file(&small);
        client.expect_error("no file name", b"");
        client.expect_error("not a regular file", b"dir");
        client.expect_error("no such file", b"nope2");
        client.expect_file(&big);
        client.expect_file(&empty);
        // Nothing more was sent: the next reply is the next request's.
        client.ask(b"small.txt");
        client.expect_file(&small);
    });
}

/// More names in one write than the server holds at once (it stops receiving meanwhile):
/// every one is still answered, in order.
#[test]
fn long_pipeline_with_backpressure() {
    let mut tree = Tree::new();
    let page = tree.add("page.bin", 4 * KIB);
    let tiny = tree.add("tiny", 1);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        let mut request = Vec::new();
        for i in 0..300 {
            let name = match i % 3 {
                0 => "page.bin".to_owned(),
                1 => format!("missing-{i}"),
                _ => "tiny".to_owned(),
            };
            request.extend_from_slice(name.as_bytes());
            request.push(b'\n');
        }
        client.send(&request);
        for i in 0..300 {
            match i % 3 {
                0 => client.expect_file(&page),
                1 => client.expect_error("no such file", format!("missing-{i}").as_bytes()),
                _ => client.expect_file(&tiny),
            }
        }
    });
}
