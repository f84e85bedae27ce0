//! A ring of 8 submission entries under a burst: 64 clients each ask at once for a timer and a
//! confined open, so the queue fills many times within one loop turn and is submitted early.
//! Everything the kernel reads for those operations (the timer's timespec, the `open_how`
//! whose `RESOLVE_BENEATH` confines the open, the path) must still be intact when the kernel
//! reads it: every timer fires, never early; every open succeeds and gives its own file; an
//! escaping name is refused.
//! Linux only: the submission queue is io_uring's (the IOCP driver has none to fill; its
//! opens are tested in `sys/iocp/open`).
#![cfg(target_os = "linux")]

mod util;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringport::{Completion, CompletionKey, Dir, Handler, Io, TimerId, WorkerCtx};
use util::files::TempDir;

const CLIENTS: u8 = 64;
/// File names of 16–23 bytes: their C strings share an allocator size class with `open_how`,
/// so a freed `open_how` would be overwritten by the next path.
fn name(d: u8) -> String {
    format!("file-{d:03}-of-a-burst")
}

fn content(d: u8) -> [u8; 32] {
    let mut c = [b'.'; 32];
    let text = format!("the content of file {d}");
    c[..text.len()].copy_from_slice(text.as_bytes());
    c
}

/// On byte `d` from a client: arms a worker timer of `d` × 10 ms (a kernel timeout each, with
/// its own timespec) and opens `name(d)` (or, for 0, an escaping name). Replies `O` + the
/// file's 32 bytes, or `E` + the errno (4 bytes); and `T` + `1` when the timer fired no earlier
/// than asked (`0` if early).
struct Burst {
    root: Arc<Dir>,
    timers: HashMap<TimerId, CompletionKey>,
}

struct Conn {
    armed: Option<(Instant, Duration)>,
}

impl Handler for Burst {
    type Conn = Conn;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        io.recv();
        Conn { armed: None }
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                let d = buf[0];
                let after = Duration::from_millis(10 * u64::from(d));
                conn.armed = Some((Instant::now(), after));
                let timer = io.set_timer(after);
                self.timers.insert(timer, io.key());
                let path = if d == 0 {
                    "../../../../../../etc/hostname".to_owned()
                } else {
                    name(d)
                };
                io.open_beneath(&self.root, path.as_bytes()).unwrap();
            }
            Completion::Opened(Ok(mut file)) => {
                let mut reply = vec![b'O'];
                file.read_to_end(&mut reply).unwrap();
                io.send(reply);
            }
            Completion::Opened(Err(e)) => {
                let mut reply = vec![b'E'];
                reply.extend_from_slice(&e.raw_os_error().unwrap_or(-1).to_le_bytes());
                io.send(reply);
            }
            Completion::Sent(_) => {}
            _ => io.close(),
        }
    }

    fn timer(&mut self, ctx: &mut WorkerCtx<'_, Conn>, timer: TimerId) {
        let key = self.timers.remove(&timer).expect("a timer of ours");
        if let Some((conn, mut io)) = ctx.get(key) {
            let (at, after) = conn.armed.expect("armed");
            let on_time = at.elapsed() >= after;
            io.send(vec![b'T', if on_time { b'1' } else { b'0' }]);
        }
    }
}

#[test]
fn a_burst_through_a_tiny_ring_keeps_what_the_kernel_reads() {
    let dir = TempDir::new("full-queue");
    for d in 1..CLIENTS {
        std::fs::write(dir.path().join(name(d)), content(d)).unwrap();
    }
    let root = Arc::new(Dir::open(dir.path()).unwrap());
    assert!(!dir.path().join(OsStr::from_bytes(b"hostname")).exists());
    util::each_backend(|backend| {
        for round in 0..3 {
            let root = root.clone();
            let port = util::loopback_port(backend, 1)
                .entries(8)
                .start(move |_| Burst {
                    root: root.clone(),
                    timers: HashMap::new(),
                })
                .expect("the port starts");
            let addr = port.local_addr().unwrap();
            let clients: Vec<_> = (0..CLIENTS).map(|_| util::connect(addr)).collect();
            // All ask at once, so that the worker sees the requests in one batch.
            for (d, mut c) in clients.iter().enumerate() {
                c.write_all(&[d as u8]).unwrap();
            }
            thread::scope(|s| {
                for (d, c) in clients.iter().enumerate() {
                    s.spawn(move || check_replies(c, d as u8, round));
                }
            });
            util::shutdown_and_join(port);
        }
    });
}

/// Reads the two replies of client `d` (in either order) and checks them.
fn check_replies(mut c: &std::net::TcpStream, d: u8, round: usize) {
    let (mut opened, mut fired) = (false, false);
    while !(opened && fired) {
        let mut tag = [0];
        if let Err(e) = c.read_exact(&mut tag) {
            panic!("round {round}: client {d}: no reply ({e}); opened: {opened}, fired: {fired}");
        }
        match tag[0] {
            b'O' => {
                let mut got = [0; 32];
                c.read_exact(&mut got).unwrap();
                assert_ne!(d, 0, "round {round}: the escaping name was opened");
                assert_eq!(
                    got,
                    content(d),
                    "round {round}: client {d} got another file"
                );
                opened = true;
            }
            b'E' => {
                let mut errno = [0; 4];
                c.read_exact(&mut errno).unwrap();
                let errno = i32::from_le_bytes(errno);
                assert_eq!(
                    d, 0,
                    "round {round}: opening file {d} failed: errno {errno}"
                );
                assert_eq!(errno, libc::EXDEV, "round {round}: the escape is refused");
                opened = true;
            }
            b'T' => {
                let mut on_time = [0];
                c.read_exact(&mut on_time).unwrap();
                assert_eq!(
                    on_time[0], b'1',
                    "round {round}: client {d}'s timer fired early"
                );
                fired = true;
            }
            other => panic!("round {round}: client {d}: unexpected reply {other}"),
        }
    }
}
