//! Large sends to a slow reader: every send completes whole (short sends are continued), in
//! the order queued, and `Completion::Sent` gives each buffer back unchanged.

mod util;

use std::io::Read;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use ringport::{Completion, Handler, Io, SendBuf};

const BIG: usize = 8 << 20;

fn parts(seed: u64) -> Vec<Vec<u8>> {
    vec![
        util::payload(seed, BIG),
        util::payload(seed ^ 1, 1),
        util::payload(seed ^ 2, 3 << 20),
    ]
}

#[derive(Debug)]
enum Event {
    /// A buffer came back from `Sent`.
    Sent(Vec<u8>),
    /// `unsent` once every buffer came back.
    Done {
        unsent: usize,
    },
    Unexpected(String),
}

/// Queues `parts` on every connection and closes it once all are sent.
struct Sender3 {
    seed: u64,
    tx: Sender<Event>,
}

impl Handler for Sender3 {
    /// Buffers not yet given back.
    type Conn = usize;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, usize>) -> usize {
        let parts = parts(self.seed);
        let total: usize = parts.iter().map(Vec::len).sum();
        for part in parts {
            io.send(part);
        }
        assert_eq!(io.unsent(), total);
        3
    }

    fn completion(&mut self, left: &mut usize, io: &mut Io<'_, usize>, completion: Completion) {
        match completion {
            Completion::Sent(SendBuf::Vec(v)) => {
                let _ = self.tx.send(Event::Sent(v));
                *left -= 1;
                if *left == 0 {
                    let _ = self.tx.send(Event::Done {
                        unsent: io.unsent(),
                    });
                    io.close();
                }
            }
            other => {
                let _ = self.tx.send(Event::Unexpected(format!("{other:?}")));
                io.abort();
            }
        }
    }
}

#[test]
fn large_sends_to_a_slow_reader_complete_in_order() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let seed = util::seed();
        let (tx, rx) = mpsc::channel();
        let port = util::loopback_port(backend, 1)
            .start(move |_| Sender3 {
                seed,
                tx: tx.clone(),
            })
            .expect("the port starts");
        let client = util::connect(port.local_addr().unwrap());
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(16 * 1024)
            .unwrap();

        // Read slowly: small reads, with a pause every few, so that the port's sends come
        // back short again and again.
        let want: Vec<u8> = parts(seed).concat();
        let mut got = Vec::with_capacity(want.len());
        let mut chunk = [0u8; 16 * 1024];
        let mut reads = 0;
        loop {
            let n = (&client).read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            reads += 1;
            if reads % 8 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        util::assert_bytes(&got, &want, "bytes received in order");

        for part in parts(seed) {
            match rx.recv_timeout(util::IO_TIMEOUT).unwrap() {
                Event::Sent(v) => util::assert_bytes(&v, &part, "buffer given back by Sent"),
                Event::Unexpected(what) => panic!("unexpected {what}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        match rx.recv_timeout(util::IO_TIMEOUT).unwrap() {
            Event::Done { unsent } => assert_eq!(unsent, 0),
            other => panic!("unexpected {other:?}"),
        }
        drop(client);
        util::shutdown_and_join(port);
    }
}
