//! Shutting a port down: connections are asked to close (`Handler::shutdown`), what cannot
//! finish is aborted at the shutdown timeout, and the workers exit promptly.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use ringport::{Backend, Completion, CompletionKey, Handler, Io, Port, WorkerCtx};

/// Echoes; a connection whose first byte is `s` (stubborn) ignores the shutdown request, and
/// one whose first byte is `f` (flood) is sent 32 MiB at once.
struct Echo {
    tx: Sender<CompletionKey>,
}

impl Handler for Echo {
    /// Whether this connection ignores the shutdown request.
    type Conn = bool;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, bool>) -> bool {
        io.recv();
        false
    }

    fn completion(&mut self, stubborn: &mut bool, io: &mut Io<'_, bool>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                match buf[0] {
                    b's' => *stubborn = true,
                    b'f' => io.send(vec![b'f'; 32 << 20]),
                    _ => {}
                }
                io.send(buf);
            }
            Completion::Sent(_) => {}
            _ => io.close(),
        }
    }

    fn shutdown(&mut self, stubborn: &mut bool, io: &mut Io<'_, bool>) {
        if !*stubborn {
            io.close();
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, _: bool, key: CompletionKey) {
        let _ = self.tx.send(key);
    }
}

fn start(backend: Backend, shutdown_timeout: Duration) -> (Port, mpsc::Receiver<CompletionKey>) {
    let (tx, rx) = mpsc::channel();
    let port = util::loopback_port(backend, 2)
        .shutdown_timeout(shutdown_timeout)
        .start(move |_| Echo { tx: tx.clone() })
        .expect("the port starts");
    (port, rx)
}

/// A client that has seen its first message echoed, or for a flood its first byte (so the
/// port holds its connection).
fn client(port: &Port, first: &[u8]) -> TcpStream {
    let c = util::connect(port.local_addr().unwrap());
    (&c).write_all(first).unwrap();
    let mut echo = vec![0; if first[0] == b'f' { 1 } else { first.len() }];
    (&c).read_exact(&mut echo).unwrap();
    assert_eq!(echo, first[..echo.len()]);
    c
}

#[test]
fn shutdown_closes_idle_connections_gracefully() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        // A timeout far longer than the hang guard: a graceful close must not wait for it.
        let (port, rx) = start(backend, Duration::from_secs(3600));
        let clients: Vec<_> = (0..10).map(|i| client(&port, &[b'0' + i])).collect();
        port.shutdown();
        for c in &clients {
            assert!(util::read_to_end(c, false).is_empty(), "EOF, not a reset");
        }
        util::join(port);
        assert_eq!(rx.try_iter().count(), clients.len(), "each closed once");
        // The listeners are closed too.
        let addr_gone = TcpStream::connect(clients[0].peer_addr().unwrap());
        assert!(addr_gone.is_err(), "nothing listens after shutdown");
    }
}

#[test]
fn shutdown_timeout_aborts_what_cannot_finish() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let (port, rx) = start(backend, Duration::from_millis(300));
        // One that ignores the request, one whose 32 MiB reply it never reads, one idle.
        let stubborn = client(&port, b"s");
        let flooded = client(&port, b"f");
        let idle = client(&port, b"i");
        port.shutdown();
        util::join(port);
        assert_eq!(rx.try_iter().count(), 3, "each closed once");
        assert!(util::read_to_end(&stubborn, true).is_empty());
        assert!(util::read_to_end(&idle, false).is_empty());
        let got = util::read_to_end(&flooded, true);
        assert!(got.len() < 32 << 20, "the flood was cut short");
        assert!(got.iter().all(|&b| b == b'f'), "what arrived is the flood");
    }
}

/// A shutdown that a worker without listeners (a client-only port) sees before its first
/// loop turn must not wait for the shutdown timeout: there is nothing to drain.
#[test]
fn shutdown_right_after_start_is_prompt() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        for _ in 0..20 {
            let port = Port::builder()
                .workers(2)
                .backend(backend)
                .shutdown_timeout(Duration::from_secs(3600))
                .start(|_| Echo {
                    tx: mpsc::channel().0,
                })
                .expect("the port starts");
            util::shutdown_and_join(port);
        }
    }
}
