//! The per-connection quota of provided buffers is applied by the port itself: a handler that
//! keeps every buffer it receives (as one that queues data for somewhere slow would) stops
//! receiving at the quota, not at the end of the worker's pool; the buffers it holds are
//! observable; other connections of the worker are served meanwhile; and once it lets the
//! buffers go, receiving resumes and no byte is lost.

mod util;

use std::io::{Read, Write};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use ringport::{Completion, Handler, Io, RecvBuf};

const POOL: u16 = 64;
const QUOTA: u32 = 8;
const SEGMENTS: usize = 100;
const SEGMENT: usize = 100;
/// How long the hoarder keeps what it got before letting go.
const HOARD_FOR: Duration = Duration::from_millis(600);

/// A connection whose first byte is `h` hoards its buffers for a while; others echo.
struct Hoarder {
    report: Sender<(u32, u32)>,
}

#[derive(Default)]
struct Conn {
    hoarding: Option<Vec<RecvBuf>>,
    received: usize,
    most_held: u32,
    least_free: u32,
}

impl Handler for Hoarder {
    type Conn = Conn;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        io.recv();
        Conn {
            least_free: io.pool_free(),
            ..Conn::default()
        }
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                if conn.received == 0 && buf[0] == b'h' {
                    conn.hoarding = Some(Vec::new());
                    io.set_timeout(HOARD_FOR);
                }
                conn.received += buf.len();
                conn.most_held = conn.most_held.max(io.bufs_held());
                conn.least_free = conn.least_free.min(io.pool_free());
                match &mut conn.hoarding {
                    Some(kept) => kept.push(buf),
                    None if conn.received == SEGMENTS * SEGMENT => {
                        let _ = self.report.send((conn.most_held, conn.least_free));
                        io.send(&b"all received"[..]);
                    }
                    None if buf[0] != b'h' => io.send(buf),
                    None => {}
                }
            }
            // Let go: the buffers return to the pool and receiving resumes.
            Completion::Timeout => {
                conn.hoarding = None;
                if conn.received == SEGMENTS * SEGMENT {
                    let _ = self.report.send((conn.most_held, conn.least_free));
                    io.send(&b"all received"[..]);
                }
            }
            Completion::Sent(_) => {}
            _ => io.close(),
        }
    }
}

#[test]
fn a_hoarding_handler_is_held_to_the_quota() {
    util::each_backend(|backend| {
        let (tx, rx) = mpsc::channel();
        let port = util::loopback_port(backend, 1)
            .buffers(POOL, 4096)
            .max_bufs_per_conn(QUOTA)
            .start(move |_| Hoarder { report: tx.clone() })
            .expect("the port starts");
        let addr = port.local_addr().unwrap();
        let mut hog = util::connect(addr);
        thread::scope(|s| {
            s.spawn(|| {
                // One segment at a time, so that each lands in a buffer of its own.
                for _ in 0..SEGMENTS {
                    hog.write_all(&[b'h'; SEGMENT]).unwrap();
                    thread::sleep(Duration::from_millis(3));
                }
            });
            // While the hoarder holds its quota, another connection is served.
            thread::sleep(HOARD_FOR / 2);
            let other = util::connect(addr);
            for i in 0..20 {
                util::round_trip(&other, &util::payload(i, 3000));
            }
        });
        let mut done = [0; 12];
        hog.read_exact(&mut done).unwrap();
        assert_eq!(&done, b"all received", "{backend}: every byte arrived");
        let (most_held, least_free) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        eprintln!("{backend}: held at most {most_held} buffers; the pool kept {least_free} free");
        // The kernel may hand over what it already took in the loop turn that reached the
        // quota: a little over it, never the pool.
        assert!(most_held <= 2 * QUOTA, "{backend}: held {most_held}");
        assert!(most_held >= QUOTA, "{backend}: never reached the quota?");
        assert!(least_free >= u32::from(POOL) - 2 * QUOTA, "{backend}");
        util::shutdown_and_join(port);
    });
}
