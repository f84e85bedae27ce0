//! Faults during transfers: the client goes away mid-file (close, reset, half-close), or the
//! file shrinks while it is being sent. The server frees the connection (its slot under
//! `max_connections` comes back) and keeps serving.

mod util;

use std::fs::OpenOptions;
use std::time::Duration;

use util::files::{all_served_at_once, download_when_free, Client, Tree, KIB, MIB};
use util::{config, each_backend, End, Server};

const BIG: u64 = 64 * MIB;
/// Connection slots: every client that went away must give its slot back.
const SLOTS: usize = 12;
/// The send timeout under Wine, well inside the tests' waits for free slots.
const WINE_SEND_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn client_gone_mid_transfer() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", BIG);
    let small = tree.add("small.txt", 10 * KIB);
    each_backend(|backend| {
        let mut cfg = config(backend, tree.root());
        cfg.max_connections = SLOTS;
        if util::wine_differs(
            "a TransmitFile in flight may never hear of the client's reset (seen after the \
             client's FIN): the send timeout ends it",
        ) {
            cfg.port.send_timeout = Some(WINE_SEND_TIMEOUT);
        }
        let server = Server::start_with(&cfg);
        // Close with unread data (the kernel resets), reset with SO_LINGER 0, and both with
        // several clients at once; each time a fresh client is served after.
        for round in 0..3 {
            let mut clients: Vec<Client> = (0..[1, 1, SLOTS - 2][round])
                .map(|_| server.connect())
                .collect();
            for client in &mut clients {
                client.ask(b"big.bin");
            }
            for (i, mut client) in clients.into_iter().enumerate() {
                client.expect_content("big.bin", 0, MIB as usize);
                if (round + i) % 2 == 0 {
                    drop(client);
                } else {
                    client.reset();
                }
            }
            download_when_free(server.addr, &small);
        }
        // A client that goes away before its file was even opened.
        let mut client = server.connect();
        client.send(b"small.txt\nbig.bin\nbig.bin\n");
        client.reset();
        all_served_at_once(server.addr, SLOTS, &small);
        // After all that, the big file still comes whole (once the slots of the clients just
        // closed are free).
        download_when_free(server.addr, &big);
        server.stop().expect("the server stops cleanly");
    });
}

/// A client that sends its names and half-closes (as `nc -N` does) gets every file, then EOF.
#[test]
fn half_close_after_asking() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", 16 * MIB);
    let small = tree.add("small.txt", 100);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        client.send(b"small.txt\nbig.bin\nnope\n");
        client.finish_sending();
        client.expect_file(&small);
        client.expect_file(&big);
        client.expect_error("no such file", b"nope");
        client.expect_eof();
    });
}

/// A slow client of `server` asks for `big.bin` and reads 1 MiB of it; then, with the transfer
/// in progress, the file is cut to `len` bytes. Returns the client, to read the rest.
///
/// On Windows the server opens files sharing them for reading only: a writer is kept out
/// (`ERROR_SHARING_VIOLATION`) while the file is served, so it cannot shrink under a transfer.
/// Then the client that could not be cut comes back as `Err`, to read the whole file.
fn cut_mid_transfer(server: &Server, tree: &Tree, len: u64) -> Result<Client, Client> {
    let mut client = server.connect();
    client.small_receive_buffer();
    client.ask(b"big.bin");
    client.expect_content("big.bin", 0, MIB as usize);
    match OpenOptions::new().write(true).open(tree.path("big.bin")) {
        Ok(file) => {
            file.set_len(len).unwrap();
            Ok(client)
        }
        Err(e) if cfg!(windows) && e.raw_os_error() == Some(SHARING_VIOLATION) => {
            eprintln!("windows: the served file cannot be opened for writing: {e}");
            Err(client)
        }
        Err(e) => panic!("opening big.bin to cut it: {e}"),
    }
}

/// Windows' `ERROR_SHARING_VIOLATION`.
const SHARING_VIOLATION: i32 = 32;

/// The client whose file could not be cut gets all of it; the server goes on serving.
fn kept_whole(mut client: Client, server: Server, small: &util::files::Expected) {
    client.expect_content("big.bin", MIB, (BIG - MIB) as usize);
    server.connect().get(small);
    server.stop().expect("the server stops cleanly");
}

/// The file is cut to nothing while a slow client is downloading it: the client gets a true
/// prefix of the file, then a reset (never a normal close: `nc` would save a short file as if
/// it were whole).
#[test]
fn file_truncated_to_nothing_during_transfer() {
    let mut tree = Tree::new();
    let small = tree.add("small.txt", 4 * KIB);
    each_backend(|backend| {
        let big = tree.add("big.bin", BIG);
        let server = Server::start(backend, tree.root());
        let mut client = match cut_mid_transfer(&server, &tree, 0) {
            Ok(client) => client,
            Err(client) => return kept_whole(client, server, &small),
        };
        let (rest, end) = client.verify_until_closed("big.bin", MIB, BIG - MIB);
        let total = MIB + rest;
        eprintln!("{backend}: {total} of {} bytes, then {end:?}", big.size);
        assert!(total < BIG, "the whole file came, truncation unseen");
        assert_eq!(end, End::Reset, "a cut transfer ends with a reset");
        // The server is not stuck: a new client is served.
        server.connect().get(&small);
        server.stop().expect("the server stops cleanly");
    });
}

/// The file shrinks to 40 MiB while a slow client has read 1 MiB of its 64: a true prefix of
/// the 40 MiB that are left comes (the reset drops what was still in the server's socket
/// buffer), then the reset.
#[test]
fn file_shrunk_during_transfer() {
    let mut tree = Tree::new();
    let small = tree.add("small.txt", 4 * KIB);
    let cut = 40 * MIB;
    each_backend(|backend| {
        tree.add("big.bin", BIG);
        let server = Server::start(backend, tree.root());
        let mut client = match cut_mid_transfer(&server, &tree, cut) {
            Ok(client) => client,
            Err(client) => return kept_whole(client, server, &small),
        };
        let (rest, end) = client.verify_until_closed("big.bin", MIB, BIG - MIB);
        assert!(
            MIB + rest <= cut,
            "{} bytes came of the {cut} left",
            MIB + rest
        );
        assert_eq!(end, End::Reset, "a cut transfer ends with a reset");
        server.connect().get(&small);
        server.stop().expect("the server stops cleanly");
    });
}
