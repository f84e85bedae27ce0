//! The `chat` example, run as its own program on two workers: every line a client sends
//! reaches every other client, on its worker and on the other, in the order it was sent,
//! byte for byte; a client that does not read is disconnected once its backlog passes the
//! limit, while the others get everything.

mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use util::{ChildServer, End};

const LINES: usize = 150;
/// Lines member 0 sends in the second round, 1 KB each: several backlog limits' worth.
const FLOOD: usize = 6000;

fn chat(backend: ringport::Backend) -> ChildServer {
    let mut cmd = Command::new(util::example("chat"));
    cmd.args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args([
            "--max-backlog",
            "1048576",
            "--backend",
            &backend.to_string(),
        ])
        .env_remove("RUST_LOG");
    ChildServer::start(&mut cmd, "chat")
}

/// A member and the worker its welcome line names.
fn join(addr: SocketAddr) -> (BufReader<TcpStream>, usize) {
    let s = util::connect(addr);
    let mut r = BufReader::new(s);
    let mut welcome = String::new();
    r.read_line(&mut welcome).unwrap();
    // "welcome w1#3.7"
    let worker = welcome
        .strip_prefix("welcome w")
        .and_then(|w| w.split('#').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a welcome line: {welcome:?}"));
    (r, worker)
}

fn line(from: usize, n: usize) -> String {
    // Lines of different lengths, so that they cross buffer boundaries.
    let filler = "x".repeat((from * 131 + n * 17) % 300);
    format!("{from}:{n}:{filler}\n")
}

fn flood_line(n: usize) -> String {
    format!("0:{n}:{}\n", "y".repeat(1000))
}

#[test]
fn every_line_reaches_every_other_member_in_order() {
    util::each_backend(|backend| {
        let server = chat(backend);
        // Members until each worker has at least two.
        let mut members = Vec::new();
        let mut on = [0, 0];
        while on.iter().any(|&n| n < 2) {
            assert!(
                members.len() < 64,
                "{backend}: the workers got {on:?} of 64 members"
            );
            let (r, worker) = join(server.addr);
            on[worker] += 1;
            members.push(r);
        }
        // A member that never reads (its receive buffer as small as can be).
        let deaf =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        deaf.set_recv_buffer_size(1).unwrap();
        deaf.connect(&server.addr.into()).unwrap();
        let deaf: TcpStream = deaf.into();
        let n = members.len();
        eprintln!("{backend}: {n} members on workers {on:?}, and a deaf one");
        std::thread::sleep(Duration::from_millis(100));

        let mut members: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = members
                .into_iter()
                .enumerate()
                .map(|(me, r)| s.spawn(move || first_round(me, n, r)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Second round: member 0 sends far more than the backlog limit, paced so that readers
        // keep up; every reader gets it all, the deaf member is disconnected.
        std::thread::scope(|s| {
            let (first, rest) = members.split_first_mut().unwrap();
            let mut w = first.get_ref().try_clone().unwrap();
            s.spawn(move || {
                for k in 0..FLOOD {
                    w.write_all(flood_line(k).as_bytes()).unwrap();
                    if k % 50 == 49 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
            for r in rest {
                s.spawn(move || {
                    for k in 0..FLOOD {
                        let mut got = String::new();
                        r.read_line(&mut got).unwrap();
                        assert_eq!(got, flood_line(k), "flood line {k}");
                    }
                });
            }
        });
        // The deaf member was sent far more than 1 MiB of lines: it was disconnected.
        let (got, end) = read_to_the_end(&deaf);
        eprintln!("{backend}: the deaf member had {got} bytes, then {end:?}");
        if util::wine_differs("a zero-linger close sends a FIN, not a reset") {
            assert_eq!(end, End::Eof, "{backend}: the deaf member was disconnected");
        } else {
            assert_eq!(end, End::Reset, "{backend}: the deaf member was reset");
        }
        drop(server);
    });
}

/// Member `me` of `n` sends its lines while it reads every other member's, each sender's in
/// order; returns the member for the next round.
fn first_round(me: usize, n: usize, mut r: BufReader<TcpStream>) -> BufReader<TcpStream> {
    let mut w = r.get_ref().try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for k in 0..LINES {
            w.write_all(line(me, k).as_bytes()).unwrap();
        }
    });
    let mut next: HashMap<usize, usize> = HashMap::new();
    for _ in 0..(n - 1) * LINES {
        let mut got = String::new();
        r.read_line(&mut got).unwrap();
        let from: usize = got.split(':').next().unwrap().parse().unwrap();
        assert_ne!(from, me, "a member got its own line");
        let k = next.entry(from).or_default();
        assert_eq!(got, line(from, *k), "member {me}: line {k} of {from}");
        *k += 1;
    }
    writer.join().unwrap();
    r
}

fn read_to_the_end(mut s: &TcpStream) -> (usize, End) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0; 1 << 16];
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, End::Eof),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, End::Reset),
            Err(e) => panic!("after {got} bytes: {e}"),
        }
    }
}
