//! Sockets that did not come from the port's own listeners: a `TcpStream` accepted elsewhere
//! and associated from outside the port (`PortHandle::associate`, IOCP's association step) or
//! from a handler (`WorkerIo::associate`); a Unix-domain listener (`listen_unix`) and an
//! outgoing Unix-domain connection (`connect_unix`). Every byte is echoed and verified.

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::time::Duration;

use ringport::{Completion, Handler, Io, Port, WorkerCtx};
#[cfg(unix)]
use util::files::TempDir;

/// Echoes; at start, associates `give` (a connected stream) and greets it, and connects to
/// the Unix socket `dial` and greets that too.
#[derive(Default)]
struct Echo {
    give: Option<std::net::TcpStream>,
    dial: Option<std::path::PathBuf>,
}

impl Handler for Echo {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.recv();
    }

    fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
        match completion {
            Completion::Received(buf) => io.send(buf),
            Completion::Connected => {
                io.send(&b"hello over unix"[..]);
                io.recv();
            }
            Completion::Sent(_) => {}
            _ => io.close(),
        }
    }

    fn started(&mut self, ctx: &mut WorkerCtx<'_, ()>) {
        if let Some(stream) = self.give.take() {
            let key = ctx.associate(stream, ()).expect("associated");
            let mut io = ctx.to(key).expect("just associated");
            io.send(&b"hello"[..]);
            io.recv();
        }
        if let Some(path) = self.dial.take() {
            ctx.connect_unix(path, ()).expect("a socket");
        }
    }
}

fn echo_check(mut s: impl Read + Write, seed: u64) {
    let data = util::payload(seed, 200_000);
    s.write_all(&data).unwrap();
    let mut got = vec![0; data.len()];
    s.read_exact(&mut got).unwrap();
    util::assert_bytes(&got, &data, "echo");
}

#[test]
fn streams_accepted_elsewhere() {
    util::each_backend(|backend| {
        let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = elsewhere.local_addr().unwrap();
        // One for the handler to associate at start, one for the handle from outside.
        let mut early = util::connect(addr);
        let (give, _) = elsewhere.accept().unwrap();
        let port: Port = Port::builder()
            .workers(2)
            .backend(backend)
            .start(move |start| Echo {
                give: (start.worker() == 0).then(|| give.try_clone().unwrap()),
                dial: None,
            })
            .expect("the port starts");
        let mut hello = [0; 5];
        early.read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"hello");
        echo_check(&mut early, 1);

        let late = util::connect(addr);
        let (accepted, _) = elsewhere.accept().unwrap();
        port.handle()
            .associate(1, accepted)
            .expect("room in the queue");
        echo_check(&late, 2);
        util::shutdown_and_join(port);
    });
}

/// Linux only: Unix-domain sockets are not part of the Windows backend (Winsock's `AF_UNIX`
/// has no `ConnectEx` or `AcceptEx`).
#[cfg(unix)]
#[test]
fn unix_domain_listener_and_connection() {
    let dir = TempDir::new("unix");
    let path = dir.path().join("port.sock");
    let dial = dir.path().join("dial.sock");
    util::each_backend(|backend| {
        let outside = UnixListener::bind(&dial).unwrap();
        let port: Port = Port::builder()
            .workers(2)
            .backend(backend)
            .listen_unix(&path)
            .start({
                let dial = dial.clone();
                move |start| Echo {
                    give: None,
                    dial: (start.worker() == 1).then(|| dial.clone()),
                }
            })
            .expect("the port starts");
        // The port dials out to a Unix socket, greets, and echoes.
        let (mut dialled, _) = outside.accept().unwrap();
        dialled
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut hello = [0; 15];
        dialled.read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"hello over unix");
        echo_check(&mut dialled, 3);
        // Clients of the port's Unix listener, on both workers.
        for seed in 0..8 {
            let mut c = UnixStream::connect(&path).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            echo_check(&mut c, seed);
        }
        // A second port may not take a path in use.
        let taken = Port::builder()
            .backend(backend)
            .listen_unix(&path)
            .start(|_| Echo::default());
        assert_eq!(
            taken.unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse,
            "the path is in use"
        );
        util::shutdown_and_join(port);
        assert!(
            !path.exists(),
            "the socket file is removed when the port stops"
        );
        std::fs::remove_file(&dial).unwrap();
    });
}
