//! Connection timers: `set_timeout` fires `Completion::Timeout`; `clear_timeout` and a
//! replacing `set_timeout` keep the old timer from firing, even when its deadline has already
//! passed while the worker was busy.
//!
//! "Did not fire" is checked without sleeping: a witness timer, armed later for longer on the
//! same worker, fires after the cleared one would have, and the handler reports timers in the
//! order the worker sees them. Elapsed times are only checked from below (a timer never fires
//! early).

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use ringport::{Backend, Completion, Handler, Io, Port};

/// Armed on every accepted connection.
const FIRST: Duration = Duration::from_millis(150);
/// Armed by the `w` and `r` commands.
const LONG: Duration = Duration::from_millis(400);
/// How long `s` and `r` keep the worker busy: longer than `FIRST`.
const STALL: Duration = Duration::from_millis(300);

#[derive(Debug)]
struct Fired {
    conn: usize,
    elapsed: Duration,
    armed_for: Duration,
}

struct Conn {
    id: usize,
    armed_at: Instant,
    armed_for: Duration,
}

impl Conn {
    fn arm(&mut self, io: &mut Io<'_, Conn>, after: Duration) {
        self.armed_at = Instant::now();
        self.armed_for = after;
        io.set_timeout(after);
    }
}

/// Runs one-byte commands:
/// - `c`: clear the timer;
/// - `s`: stall the worker past the deadline, then clear the timer;
/// - `w`: arm the timer for `LONG` (replacing the armed one);
/// - `r`: stall the worker past the deadline, then arm for `LONG`.
///
/// Each command is acknowledged with its upper-case letter; a timer firing sends `T`.
struct Timers {
    accepted: usize,
    tx: Sender<Fired>,
}

impl Handler for Timers {
    type Conn = Conn;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        let mut conn = Conn {
            id: self.accepted,
            armed_at: Instant::now(),
            armed_for: FIRST,
        };
        self.accepted += 1;
        conn.arm(io, FIRST);
        io.recv();
        conn
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                for &command in buf.iter() {
                    match command {
                        b'c' => io.clear_timeout(),
                        b's' => {
                            std::thread::sleep(STALL);
                            io.clear_timeout();
                        }
                        b'w' => conn.arm(io, LONG),
                        b'r' => {
                            std::thread::sleep(STALL);
                            conn.arm(io, LONG);
                        }
                        other => panic!("unknown command {other}"),
                    }
                    io.send(vec![command.to_ascii_uppercase()]);
                }
            }
            Completion::Timeout => {
                let _ = self.tx.send(Fired {
                    conn: conn.id,
                    elapsed: conn.armed_at.elapsed(),
                    armed_for: conn.armed_for,
                });
                io.send(&b"T"[..]);
            }
            Completion::Sent(_) => {}
            _ => io.close(),
        }
    }
}

fn start(backend: Backend) -> (Port, Receiver<Fired>) {
    let (tx, rx) = mpsc::channel();
    let port = util::loopback_port(backend, 1)
        .start(move |_| Timers {
            accepted: 0,
            tx: tx.clone(),
        })
        .expect("the port starts");
    (port, rx)
}

fn command(mut client: &TcpStream, command: u8) {
    client.write_all(&[command]).unwrap();
    expect(client, command.to_ascii_uppercase());
}

fn expect(mut client: &TcpStream, byte: u8) {
    let mut got = [0u8];
    client.read_exact(&mut got).unwrap();
    assert_eq!(
        char::from(got[0]),
        char::from(byte),
        "byte from the handler"
    );
}

/// Asserts that nothing more has arrived on `client` (no stray `T`).
fn nothing_pending(client: &TcpStream) {
    client.set_nonblocking(true).unwrap();
    let err = (&*client).read(&mut [0u8]).expect_err("no stray bytes");
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    client.set_nonblocking(false).unwrap();
}

fn check_fired(fired: &Fired, conn: usize) {
    assert_eq!(fired.conn, conn, "which connection's timer fired first");
    assert!(
        fired.elapsed >= fired.armed_for,
        "a timer fired {:?} after being armed for {:?}: an old timer",
        fired.elapsed,
        fired.armed_for
    );
}

/// Connection 0 did `first` (which must leave no timer armed); then a witness connection
/// arms a `LONG` timer and sees it fire. No timer of connection 0 may have fired by then.
fn cleared_then_witness(backend: Backend, first: u8) {
    let (port, rx) = start(backend);
    let addr = port.local_addr().unwrap();
    let a = util::connect(addr);
    command(&a, first);
    let witness = util::connect(addr);
    command(&witness, b'w');
    expect(&witness, b'T');
    let fired = rx.recv_timeout(util::IO_TIMEOUT).unwrap();
    check_fired(&fired, 1);
    assert!(rx.try_recv().is_err(), "one timer fired, the witness's");
    nothing_pending(&a);
    drop((a, witness));
    util::shutdown_and_join(port);
}

#[test]
fn set_timeout_fires() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let (port, rx) = start(backend);
        let client = util::connect(port.local_addr().unwrap());
        expect(&client, b'T');
        let fired = rx.recv_timeout(util::IO_TIMEOUT).unwrap();
        check_fired(&fired, 0);
        // It fired once: a later witness timer on the same connection is the next one.
        command(&client, b'w');
        expect(&client, b'T');
        check_fired(&rx.recv_timeout(util::IO_TIMEOUT).unwrap(), 0);
        assert!(rx.try_recv().is_err());
        drop(client);
        util::shutdown_and_join(port);
    }
}

#[test]
fn clear_timeout_prevents_it() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        cleared_then_witness(backend, b'c');
    }
}

#[test]
fn clear_timeout_after_deadline_passed() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        cleared_then_witness(backend, b's');
    }
}

#[test]
fn set_timeout_replaces_the_armed_timer() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let (port, rx) = start(backend);
        let client = util::connect(port.local_addr().unwrap());
        command(&client, b'w');
        expect(&client, b'T');
        check_fired(&rx.recv_timeout(util::IO_TIMEOUT).unwrap(), 0);
        assert!(rx.try_recv().is_err(), "the replaced timer did not fire");
        nothing_pending(&client);
        drop(client);
        util::shutdown_and_join(port);
    }
}

#[test]
fn set_timeout_replaces_after_deadline_passed() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let (port, rx) = start(backend);
        let client = util::connect(port.local_addr().unwrap());
        command(&client, b'r');
        expect(&client, b'T');
        check_fired(&rx.recv_timeout(util::IO_TIMEOUT).unwrap(), 0);
        assert!(rx.try_recv().is_err(), "the replaced timer did not fire");
        drop(client);
        util::shutdown_and_join(port);
    }
}
