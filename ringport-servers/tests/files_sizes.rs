//! Whole files of every size come back byte for byte, and nothing more: after each file the
//! next reply on the same connection is exactly the next one asked for.

mod util;

use util::files::{Tree, KIB, MIB};
use util::{each_backend, Server};

/// 0 B, 1 B, 4 KiB, 1 MiB and 64 MiB of random content, each on its own connection and
/// followed by a refusal that proves the length; then all of them again on one connection.
#[test]
fn files_of_every_size_come_back_whole() {
    let mut tree = Tree::new();
    let files = [
        tree.add("empty", 0),
        tree.add("one", 1),
        tree.add("page.bin", 4 * KIB),
        tree.add("mib.bin", MIB),
        tree.add("big.bin", 64 * MIB),
    ];
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        for file in &files {
            let mut client = server.connect();
            client.get(file);
            // The file ended where it should: the next reply starts right after it.
            client.ask(b"missing");
            client.expect_error("no such file", b"missing");
        }
        let mut client = server.connect();
        for file in files.iter().rev() {
            client.get(file);
        }
        server.stop().expect("the server stops cleanly");
    });
}

/// CRLF ends a name as LF does, and every blank line (LF or CR LF alone) is answered, in order.
#[test]
fn crlf_and_blank_lines() {
    let mut tree = Tree::new();
    let a = tree.add("a.txt", 1000);
    let b = tree.add("b.txt", 3000);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        client.send(b"\n\r\n\na.txt\r\n\r\n\nb.txt\n");
        for _ in 0..3 {
            client.expect_error("no file name", b"");
        }
        client.expect_file(&a);
        for _ in 0..2 {
            client.expect_error("no file name", b"");
        }
        client.expect_file(&b);
        // A name split over several writes is framed as one.
        client.send(b"b.t");
        client.send(b"xt\r");
        client.send(b"\n");
        client.expect_file(&b);
        client.ask(b"nope");
        client.expect_error("no such file", b"nope");
    });
}
