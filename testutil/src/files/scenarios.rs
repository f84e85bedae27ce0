//! Scenarios shared by the in-process tests and the tests of the `ringport serve` binary.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{download_when_free, Client, Expected, BUSY_LINE, REQUEST_TIMEOUT_LINE};
use crate::wait::within;
use crate::End;

/// With idle and request timeouts of about half a second on the server at `addr`: idle
/// connections (nothing asked, or a transfer done) are closed, a name never ended is answered
/// with the request timeout's line and closed, while a transfer to a client that stalls far
/// longer than the timeouts (but not the send timeout) is not. `big` must be several MiB.
///
/// No clock is read: a fresh idle connection being closed proves that a timeout went by.
pub fn idle_timeout_scenario(addr: SocketAddr, big: &Expected) {
    let mut slow = Client::connect(addr);
    slow.small_receive_buffer();
    slow.ask(big.name.as_bytes());
    slow.expect_range(&big.name, 0, 64 * 1024);
    // The transfer is stalled (the client reads nothing). Twice in a row, an idle client
    // that came later is closed: over two timeouts went by since the slow client's request.
    for _ in 0..2 {
        let mut idle = Client::connect(addr);
        assert_eq!(idle.read_until_closed(0), b"", "the idle client gets EOF");
    }
    let mut partial = Client::connect(addr);
    partial.send(b"a name without its LF");
    assert_eq!(
        partial.read_until_closed(1000),
        REQUEST_TIMEOUT_LINE,
        "an unfinished name is out of time"
    );
    // The stalled transfer was not cut for idleness: the rest comes whole.
    slow.expect_range(&big.name, 64 * 1024, big.size);
    // Once the transfer is done, the connection is idle and closed.
    assert_eq!(slow.read_until_closed(0), b"", "idle after the transfer");
}

/// With at most 2 connections on the server at `addr`: a third client is told "busy" and
/// closed, the two are served on, and a slot freed by a client leaving is given again.
/// `file`'s content must not start with `e` (see [`Client::busy_or_file`]).
pub fn max_connections_scenario(addr: SocketAddr, file: &Expected) {
    let mut a = Client::connect(addr);
    a.get(file);
    let mut b = Client::connect(addr);
    b.get(file);
    // Both are counted now (each was served); the third is over the limit.
    let mut c = Client::connect(addr);
    c.expect_line(BUSY_LINE);
    c.expect_eof();
    // Asking changes nothing for a client over the limit.
    let mut d = Client::connect(addr);
    d.ask(file.name.as_bytes());
    assert_eq!(d.read_until_closed(1000), BUSY_LINE);
    a.get(file);
    b.get(file);
    drop(a);
    download_when_free(addr, file);
    b.get(file);
}

/// Downloads of one file, each on its own thread, under way while a test shuts the server
/// down: every client either gets the whole file or a true prefix of it and then the close.
#[derive(Debug)]
pub struct Transfers {
    clients: Vec<JoinHandle<(u64, End)>>,
    resume: Vec<mpsc::Sender<()>>,
    size: u64,
}

impl Transfers {
    /// Starts `n` clients, each asking the server at `addr` for `file` and reading its first
    /// 64 KiB slowly (a small receive buffer); returns once all have. Then half of them read on
    /// and the other half stall until [`Transfers::finish`] (their transfers can only end by
    /// the shutdown timeout's abort).
    ///
    /// # Panics
    /// If the transfers do not all start within 30 s, or a client gets wrong bytes.
    pub fn start(addr: SocketAddr, file: &Expected, n: usize) -> Self {
        let (started_tx, started) = mpsc::channel();
        let (resume, resumed): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<()>()).unzip();
        let clients = resumed
            .into_iter()
            .enumerate()
            .map(|(i, resumed)| {
                let started = started_tx.clone();
                let (name, size) = (file.name.clone(), file.size);
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    client.small_receive_buffer();
                    client.ask(name.as_bytes());
                    client.expect_content(&name, 0, 64 * 1024);
                    started.send(()).unwrap();
                    if i % 2 == 1 {
                        resumed.recv().unwrap();
                    }
                    let (rest, end) = client.verify_until_closed(&name, 64 * 1024, size);
                    (64 * 1024 + rest, end)
                })
            })
            .collect();
        for _ in 0..n {
            started
                .recv_timeout(Duration::from_secs(30))
                .expect("every transfer starts");
        }
        Transfers {
            clients,
            resume,
            size: file.size,
        }
    }

    /// Once the server has ended: lets the stalled clients read on, waits for every client to
    /// read to the close (at most 60 s) and returns how many got the whole file.
    ///
    /// # Panics
    /// If a client got wrong bytes, a transfer cut short ended with a normal close (it would
    /// look complete to `nc`) instead of a reset, or the clients take longer.
    pub fn finish(self) -> usize {
        for tx in self.resume {
            let _ = tx.send(());
        }
        let clients = self.clients;
        let got = within(
            Duration::from_secs(60),
            "clients reading to the close",
            move || {
                clients
                    .into_iter()
                    .map(|c| c.join().expect("a client"))
                    .collect::<Vec<_>>()
            },
        );
        let cut = got.iter().any(|&(n, _)| n != self.size);
        let wine = cut && crate::wine_differs("a zero-linger close sends a FIN, not a reset");
        for (i, &(n, end)) in got.iter().enumerate() {
            assert!(
                n == self.size || end == End::Reset || (wine && end == End::Eof),
                "transfer {i}: cut after {n} of {} bytes with {end:?}, not a reset",
                self.size
            );
        }
        got.iter().filter(|&&(n, _)| n == self.size).count()
    }
}
