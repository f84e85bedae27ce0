//! A handler acts on another connection of its worker by completion key (`Io::to`), from a
//! connection's completion and from a worker timer (`WorkerCtx::get`, with the state); a key
//! whose connection closed reaches nothing, even when a newer connection took its slot.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringport::{Completion, CompletionKey, Handler, Io, TimerId, WorkerCtx};

/// The first client is the "listener"; every byte another client sends is forwarded to it.
/// When the listener is gone, senders are told `gone`. `T` from a sender arms a worker timer
/// that greets the sender, through its key and state, when it fires.
#[derive(Default)]
struct Relay {
    listener: Option<CompletionKey>,
    greet: Vec<(TimerId, CompletionKey)>,
}

struct Conn {
    name: u8,
}

impl Handler for Relay {
    type Conn = Conn;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        io.recv();
        self.listener.get_or_insert(io.key());
        Conn { name: b'?' }
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match completion {
            Completion::Received(buf) if buf[0] == b'T' => {
                conn.name = buf[1];
                let timer = io.set_timer(Duration::from_millis(50));
                self.greet.push((timer, io.key()));
            }
            Completion::Received(buf) => {
                let listener = self.listener.filter(|&l| l != io.key());
                if let Some(mut listener) = listener.and_then(|l| io.to(l)) {
                    listener.send(buf);
                    return;
                }
                io.send(&b"gone"[..]);
            }
            Completion::Eof => io.close(),
            _ => {}
        }
    }

    fn timer(&mut self, ctx: &mut WorkerCtx<'_, Conn>, timer: TimerId) {
        let at = self.greet.iter().position(|&(t, _)| t == timer).unwrap();
        let (_, key) = self.greet.remove(at);
        if let Some((conn, mut io)) = ctx.get(key) {
            io.send(vec![b'H', conn.name]);
        }
    }
}

fn read_exactly(mut s: &TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    s.read_exact(&mut got).unwrap();
    got
}

#[test]
fn a_connection_reaches_another_by_key_and_never_a_stale_one() {
    util::each_backend(|backend| {
        let port = util::loopback_port(backend, 1)
            .start(|_| Relay::default())
            .expect("the port starts");
        let addr = port.local_addr().unwrap();
        let listener = util::connect(addr);
        // The listener is accepted first.
        (&listener).write_all(b"T!").unwrap();
        assert_eq!(read_exactly(&listener, 2), b"H!");

        let mut sender = util::connect(addr);
        // No `T` in it: every chunk is forwarded, none is taken for a command.
        let data: Vec<u8> = util::payload(util::seed(), 300_000)
            .into_iter()
            .map(|b| if b == b'T' { b't' } else { b })
            .collect();
        sender.write_all(&data).unwrap();
        util::assert_bytes(&read_exactly(&listener, data.len()), &data, "forwarded");

        // A timer's callback reaches the sender by key, with its state.
        sender.write_all(b"Ts").unwrap();
        assert_eq!(read_exactly(&sender, 2), b"Hs");

        // The listener leaves; a newcomer takes its slot (the only free one).
        drop(listener);
        std::thread::sleep(Duration::from_millis(200));
        let newcomer = util::connect(addr);
        (&newcomer).write_all(b"Tn").unwrap();
        assert_eq!(read_exactly(&newcomer, 2), b"Hn");
        // The old key reaches nothing: the sender is told, the newcomer gets nothing.
        sender.write_all(b"x").unwrap();
        assert_eq!(read_exactly(&sender, 4), b"gone");
        newcomer
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(
            (&newcomer).read(&mut [0; 1]).is_err(),
            "nothing for the newcomer"
        );
        util::shutdown_and_join(port);
    });
}
