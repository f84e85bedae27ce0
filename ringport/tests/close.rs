//! Closing: `Io::close` delivers every queued byte before the peer sees EOF, `Io::abort`
//! drops queued bytes, no completion follows either, and `Handler::closed` runs exactly once
//! per connection however it ends.

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use ringport::{Backend, Completion, CompletionKey, Handler, Io, Port, SendBuf, WorkerCtx};

#[derive(Debug)]
enum Event {
    Accepted(CompletionKey),
    /// The key given to `closed`, and the key the connection's state was made with.
    Closed {
        key: CompletionKey,
        state: CompletionKey,
    },
    Unexpected(String),
}

static STATIC_PART: &[u8] = b"--a static part between two owned ones--";

/// The buffers queued on every connection: each kind of `SendBuf`, big and tiny.
fn parts(seed: u64, big: usize) -> Vec<SendBuf> {
    let shared: Arc<[u8]> = util::payload(seed ^ 1, 300_000).into();
    vec![
        util::payload(seed ^ 2, big).into(),
        shared.into(),
        STATIC_PART.into(),
        util::payload(seed ^ 3, 3).into(),
        util::payload(seed ^ 4, big).into(),
    ]
}

fn concat(parts: &[SendBuf]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.as_slice().to_vec()).collect()
}

/// Queues `parts` on every accepted connection, then closes or aborts it.
struct Queuer {
    seed: u64,
    big: usize,
    abort: bool,
    tx: Sender<Event>,
}

impl Handler for Queuer {
    type Conn = CompletionKey;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Self::Conn>) -> CompletionKey {
        let _ = self.tx.send(Event::Accepted(io.key()));
        for part in parts(self.seed, self.big) {
            io.send(part);
        }
        assert!(io.unsent() > 0);
        if self.abort {
            io.abort();
        } else {
            io.close();
        }
        assert!(io.is_closing());
        io.key()
    }

    fn completion(
        &mut self,
        _: &mut CompletionKey,
        _: &mut Io<'_, Self::Conn>,
        completion: Completion,
    ) {
        let _ = self.tx.send(Event::Unexpected(format!(
            "{completion:?} after close/abort"
        )));
    }

    fn closed(
        &mut self,
        _: &mut WorkerCtx<'_, Self::Conn>,
        state: CompletionKey,
        key: CompletionKey,
    ) {
        let _ = self.tx.send(Event::Closed { key, state });
    }
}

fn start_queuer(backend: Backend, big: usize, abort: bool) -> (Port, Receiver<Event>, u64) {
    let seed = util::seed();
    let (tx, rx) = mpsc::channel();
    let port = util::loopback_port(backend, 1)
        .start(move |_| Queuer {
            seed,
            big,
            abort,
            tx: tx.clone(),
        })
        .expect("the port starts");
    (port, rx, seed)
}

/// Expects `Accepted` then `Closed` for the same key, and nothing unexpected.
fn expect_one_lifecycle(rx: &Receiver<Event>) {
    let Ok(Event::Accepted(accepted)) = rx.recv_timeout(util::IO_TIMEOUT) else {
        panic!("no Accepted event");
    };
    match rx.recv_timeout(util::IO_TIMEOUT) {
        Ok(Event::Closed { key, state }) => {
            assert_eq!(key, accepted);
            assert_eq!(state, accepted);
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn close_delivers_queued_sends_then_eof() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        // Several MiB: far more than a socket buffer takes at once, so that most of it is
        // still queued when `close` is called.
        let (port, rx, seed) = start_queuer(backend, 3 << 20, false);
        let client = util::connect(port.local_addr().unwrap());
        let got = util::read_to_end(&client, false);
        util::assert_bytes(&got, &concat(&parts(seed, 3 << 20)), "bytes before EOF");
        expect_one_lifecycle(&rx);
        drop(client);
        util::shutdown_and_join(port);
        assert!(rx.try_recv().is_err(), "nothing after closed");
    }
}

#[test]
fn abort_drops_queued_sends() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let big = 8 << 20;
        let (port, rx, seed) = start_queuer(backend, big, true);
        let client = util::connect(port.local_addr().unwrap());
        // Read nothing until the port has closed the socket.
        expect_one_lifecycle(&rx);
        let got = util::read_to_end(&client, true);
        let all = concat(&parts(seed, big));
        assert!(
            got.len() < all.len(),
            "abort dropped queued data ({} of {} bytes arrived)",
            got.len(),
            all.len()
        );
        util::assert_bytes(&got, &all[..got.len()], "what arrived is a prefix");
        drop(client);
        util::shutdown_and_join(port);
        assert!(rx.try_recv().is_err(), "nothing after closed");
    }
}

/// Ends each connection as its first byte says; closes in `accepted` those whose peer port is
/// a multiple of 4.
struct Lifecycle {
    tx: Sender<Event>,
}

fn closed_at_accept(port: u16) -> bool {
    port % 4 == 0
}

impl Handler for Lifecycle {
    /// The key, and whether the command byte was seen.
    type Conn = (CompletionKey, bool);
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Self::Conn>) -> (CompletionKey, bool) {
        let _ = self.tx.send(Event::Accepted(io.key()));
        // A client that already reset has no peer address any more: close it too.
        if io
            .peer_addr()
            .map_or(true, |peer| closed_at_accept(peer.port()))
        {
            io.close();
        } else {
            io.recv();
        }
        (io.key(), false)
    }

    fn completion(
        &mut self,
        (key, commanded): &mut (CompletionKey, bool),
        io: &mut Io<'_, Self::Conn>,
        completion: Completion,
    ) {
        if io.is_closing() {
            let _ = self.tx.send(Event::Unexpected(format!(
                "{completion:?} after close on {key}"
            )));
            return;
        }
        match completion {
            Completion::Received(buf) if !*commanded => {
                *commanded = true;
                match buf[0] {
                    b'e' | b'r' | b'h' => io.send(buf),
                    b'a' => io.abort(),
                    b'c' => {
                        io.close();
                        io.close();
                        io.abort();
                    }
                    b's' => {
                        io.send(&b"bye"[..]);
                        io.close();
                    }
                    other => panic!("unknown command {other}"),
                }
            }
            Completion::Received(buf) => io.send(buf),
            Completion::Sent(_) => {}
            Completion::Eof => io.close(),
            Completion::Failed { .. } => io.abort(),
            other => {
                let _ = self
                    .tx
                    .send(Event::Unexpected(format!("{other:?} on {key}")));
            }
        }
    }

    fn closed(
        &mut self,
        _: &mut WorkerCtx<'_, Self::Conn>,
        (state, _): (CompletionKey, bool),
        key: CompletionKey,
    ) {
        let _ = self.tx.send(Event::Closed { key, state });
    }
}

/// Whether a client resets its connection without waiting for the server: on Windows,
/// `AcceptEx` fails for a client that reset before its accept completed, so the port never
/// sees it (Linux's accept returns it and the handler sees the reset).
fn may_vanish(client: &TcpStream, command: u8) -> bool {
    command == b'r' && closed_at_accept(client.local_addr().unwrap().port())
}

/// Plays one client; returns the stream if it is to stay open until shutdown.
fn play(client: TcpStream, command: u8, seed: u64) -> Option<TcpStream> {
    let early = closed_at_accept(client.local_addr().unwrap().port());
    let data = util::payload(seed, 10_000);
    let mut message = vec![command];
    message.extend_from_slice(&data);
    // A write to a connection closed at accept may fail: that is fine.
    let wrote = (&client).write_all(&message).is_ok();
    match command {
        b'e' => {
            let _ = client.shutdown(Shutdown::Write);
            let got = util::read_to_end(&client, early);
            if early {
                assert!(got.is_empty());
            } else {
                assert!(wrote);
                util::assert_bytes(&got, &message, "echo");
            }
        }
        b'a' | b'c' => {
            let got = util::read_to_end(&client, true);
            assert!(got.is_empty(), "nothing is echoed after an abort");
        }
        b's' => {
            let got = util::read_to_end(&client, true);
            assert_eq!(got, if early { &b""[..] } else { b"bye" });
        }
        b'r' => {
            if !early {
                let mut first = vec![0; message.len()];
                (&client).read_exact(&mut first).unwrap();
                util::assert_bytes(&first, &message, "echo before reset");
            }
            util::set_reset_on_close(&client);
            let _ = (&client).write_all(&data);
        }
        b'h' if early => {
            let _ = util::read_to_end(&client, true);
        }
        b'h' => {
            let mut first = vec![0; message.len()];
            (&client).read_exact(&mut first).unwrap();
            util::assert_bytes(&first, &message, "echo of the held connection");
            return Some(client);
        }
        _ => unreachable!(),
    }
    None
}

#[test]
fn closed_runs_once_per_connection() {
    const CLIENTS: usize = 60;
    const COMMANDS: &[u8] = b"eacsrh";
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let (tx, rx) = mpsc::channel();
        let port = util::loopback_port(backend, 2)
            .start(move |_| Lifecycle { tx: tx.clone() })
            .expect("the port starts");
        let addr = port.local_addr().unwrap();

        let vanishing = AtomicUsize::new(0);
        let held: Vec<TcpStream> = std::thread::scope(|s| {
            let players: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let vanishing = &vanishing;
                    s.spawn(move || {
                        let command = COMMANDS[i % COMMANDS.len()];
                        let client = util::connect(addr);
                        if may_vanish(&client, command) {
                            vanishing.fetch_add(1, Ordering::Relaxed);
                        }
                        play(client, command, seed + i as u64)
                    })
                })
                .collect();
            players
                .into_iter()
                .filter_map(|p| p.join().unwrap())
                .collect()
        });
        assert!(!held.is_empty());
        // The held connections are closed by the shutdown, gracefully: EOF.
        port.shutdown();
        for client in &held {
            assert!(util::read_to_end(client, false).is_empty());
        }
        util::join(port);

        let mut accepted = Vec::new();
        let mut closed: HashMap<CompletionKey, usize> = HashMap::new();
        for event in rx.try_iter() {
            match event {
                Event::Accepted(key) => accepted.push(key),
                Event::Closed { key, state } => {
                    assert_eq!(key, state, "closed gets the connection's own state");
                    *closed.entry(key).or_default() += 1;
                }
                Event::Unexpected(what) => panic!("{what}"),
            }
        }
        if cfg!(windows) {
            let vanishing = vanishing.load(Ordering::Relaxed);
            assert!(
                (CLIENTS - vanishing..=CLIENTS).contains(&accepted.len()),
                "{} accepted of {CLIENTS}, {vanishing} of which may reset before their accept",
                accepted.len()
            );
        } else {
            assert_eq!(accepted.len(), CLIENTS);
        }
        for key in &accepted {
            assert_eq!(closed.get(key), Some(&1), "closed calls for {key}");
        }
        assert_eq!(
            closed.len(),
            accepted.len(),
            "no closed call for an unknown key"
        );
    }
}
