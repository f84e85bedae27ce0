//! Outgoing connections: `WorkerCtx::connect` to a std listener, then an exchange of bytes.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use ringport::{Completion, CompletionKey, Handler, Io, OpKind, Port, WorkerCtx};

#[derive(Debug)]
enum Event {
    /// The whole reply arrived on this worker.
    Reply {
        worker: usize,
        bytes: Vec<u8>,
    },
    Failed {
        op: OpKind,
        kind: ErrorKind,
    },
    Closed(CompletionKey),
    Unexpected(String),
}

/// Connects once when started, sends its request, collects the reply, closes.
struct Client {
    worker: usize,
    target: SocketAddr,
    request: Arc<[u8]>,
    reply_len: usize,
    tx: Sender<Event>,
}

impl Handler for Client {
    type Conn = Vec<u8>;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Vec<u8>>) -> Vec<u8> {
        io.abort();
        Vec::new()
    }

    fn started(&mut self, worker: &mut WorkerCtx<'_, Vec<u8>>) {
        assert_eq!(worker.worker(), self.worker);
        worker.connect(self.target, Vec::new()).expect("a socket");
        assert_eq!(worker.connections(), 1);
    }

    fn completion(&mut self, got: &mut Vec<u8>, io: &mut Io<'_, Vec<u8>>, completion: Completion) {
        match completion {
            Completion::Connected => {
                io.recv();
                io.send(self.request.clone());
            }
            Completion::Sent(buf) => {
                if buf.as_slice() != &*self.request {
                    let _ = self
                        .tx
                        .send(Event::Unexpected("Sent gave back other bytes".into()));
                }
            }
            Completion::Received(buf) => {
                got.extend_from_slice(&buf);
                if got.len() >= self.reply_len {
                    let bytes = std::mem::take(got);
                    let _ = self.tx.send(Event::Reply {
                        worker: self.worker,
                        bytes,
                    });
                    io.close();
                }
            }
            Completion::Failed { op, error } => {
                let _ = self.tx.send(Event::Failed {
                    op,
                    kind: error.kind(),
                });
                io.abort();
            }
            other => {
                let _ = self.tx.send(Event::Unexpected(format!("{other:?}")));
                io.abort();
            }
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, _: Vec<u8>, key: CompletionKey) {
        let _ = self.tx.send(Event::Closed(key));
    }
}

fn request(seed: u64, worker: usize) -> Vec<u8> {
    let mut r = util::payload(seed.wrapping_add(worker as u64), 100_000 + worker * 777);
    // Say which worker sent it, so that the peer can answer each one.
    r[0] = worker as u8;
    r
}

fn reply_to(request: &[u8]) -> Vec<u8> {
    request.iter().rev().map(|b| b ^ 0x5a).collect()
}

fn start_clients(
    backend: ringport::Backend,
    workers: usize,
    target: SocketAddr,
    seed: u64,
    tx: Sender<Event>,
) -> Port {
    Port::builder()
        .workers(workers)
        .backend(backend)
        .start(move |start| {
            let worker = start.worker();
            let request: Arc<[u8]> = request(seed, worker).into();
            Client {
                worker,
                target,
                reply_len: request.len(),
                request,
                tx: tx.clone(),
            }
        })
        .expect("the port starts")
}

#[test]
fn connect_and_exchange_from_every_worker() {
    const WORKERS: usize = 2;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let listener = util::listener();
        let (tx, rx) = mpsc::channel();
        let port = start_clients(backend, WORKERS, listener.local_addr().unwrap(), seed, tx);

        let peers: Vec<_> = (0..WORKERS).map(|_| util::accept(&listener)).collect();
        for mut peer in &peers {
            let mut first = [0u8];
            peer.read_exact(&mut first).unwrap();
            let want = request(seed, usize::from(first[0]));
            let mut got = vec![0; want.len()];
            got[0] = first[0];
            peer.read_exact(&mut got[1..]).unwrap();
            util::assert_bytes(&got, &want, "request received by the peer");
            peer.write_all(&reply_to(&want)).unwrap();
        }
        // The handler closes once it has the whole reply: the peer sees EOF, not a reset.
        for peer in &peers {
            assert!(
                util::read_to_end(peer, false).is_empty(),
                "EOF, nothing more"
            );
        }

        let mut replies = 0;
        let mut closed = Vec::new();
        while closed.len() < WORKERS {
            match rx.recv_timeout(util::IO_TIMEOUT).expect("handler events") {
                Event::Reply { worker, bytes } => {
                    util::assert_bytes(&bytes, &reply_to(&request(seed, worker)), "reply");
                    replies += 1;
                }
                Event::Closed(key) => closed.push(key),
                Event::Unexpected(what) => panic!("unexpected {what}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(replies, WORKERS);
        let mut owners: Vec<usize> = closed.iter().map(|k| k.worker()).collect();
        owners.sort_unstable();
        assert_eq!(owners, [0, 1], "each worker's connection is keyed to it");
        util::shutdown_and_join(port);
        assert!(rx.try_recv().is_err(), "closed exactly once");
    }
}

#[test]
fn connect_refused_is_reported() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        // A port nobody listens on any more.
        let target = util::listener().local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let port = start_clients(backend, 1, target, 1, tx);
        match rx.recv_timeout(util::IO_TIMEOUT).expect("an event") {
            Event::Failed { op, kind } => {
                assert_eq!(op, OpKind::Connect);
                assert_eq!(kind, ErrorKind::ConnectionRefused);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            rx.recv_timeout(util::IO_TIMEOUT),
            Ok(Event::Closed(_))
        ));
        util::shutdown_and_join(port);
    }
}
