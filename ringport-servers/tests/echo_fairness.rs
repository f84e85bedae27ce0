//! Clients that send without reading cannot take a worker's receive buffers from the others.
//!
//! One worker serves 50 ping-pong clients (64 B, every byte verified). Their rate is measured
//! alone, then again once bad clients have taken what they can (the server stopped reading
//! them): one that sends 100-byte segments 50 microseconds apart and never reads (each segment
//! lands in a buffer of its own, and the buffers stay queued for sending to a client that does
//! not read), or forty bulk senders that never read. The port's per-connection buffer quota
//! and the scarce-pool share keep the others served: their rate stays close to what it was
//! (a generous bound: the machine is shared), and a client that connects meanwhile is served
//! too. Without those limits their rate falls to zero. The tests run one at a time, so that
//! neither measures the other's load.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use ringport::Backend;

const PING_PONG: usize = 50;
/// How long each rate is measured.
const WINDOW: Duration = Duration::from_millis(1500);
/// A round trip that takes longer counts as starved.
const STARVED: Duration = Duration::from_secs(3);

/// 50 clients doing 64-byte round trips until told to stop; counts them.
struct PingPong {
    stop: AtomicBool,
    trips: AtomicU64,
}

/// One 64-byte round trip, its echo verified; an error is a timeout (starved) or a failure.
fn ping(mut stream: &TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(data)?;
    let mut echoed = vec![0; data.len()];
    stream.read_exact(&mut echoed)?;
    util::assert_bytes(&echoed, data, "echo");
    Ok(())
}

impl PingPong {
    /// Runs the clients until `stop`; a client starved past its read timeout gives up.
    fn run(&self, addr: SocketAddr, seed: u64) {
        thread::scope(|s| {
            for c in 0..PING_PONG as u64 {
                s.spawn(move || {
                    let stream = util::connect(addr);
                    stream.set_read_timeout(Some(STARVED)).unwrap();
                    let mut i = 0u64;
                    while !self.stop.load(Ordering::Relaxed) {
                        if ping(&stream, &util::payload(seed ^ c << 20 ^ i, 64)).is_err() {
                            return;
                        }
                        self.trips.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                });
            }
        });
    }

    /// Round trips per second over the next `WINDOW`.
    fn rate(&self) -> f64 {
        let (t0, n0) = (Instant::now(), self.trips.load(Ordering::Relaxed));
        thread::sleep(WINDOW);
        let n1 = self.trips.load(Ordering::Relaxed);
        (n1 - n0) as f64 / t0.elapsed().as_secs_f64()
    }
}

/// What the hogs share: when to stop, and how many have stalled (the server stopped reading
/// them: it paused them, or it ran out of buffers for everyone).
struct Hogs {
    stop: AtomicBool,
    stalled: AtomicU64,
}

/// A connection with the smallest socket buffers the kernel allows, set before connecting,
/// so that what the server stops reading backs up after a few kilobytes, not megabytes.
fn never_reader(addr: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(1).unwrap();
    s.set_send_buffer_size(1).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Sends 100-byte segments ~50 µs apart and never reads; then half-closes, which does not
/// release what the server holds either.
fn trickle_hog(addr: SocketAddr, hogs: &Hogs) {
    let mut s = never_reader(addr);
    s.set_nodelay(true).unwrap();
    let segment = [b'h'; 100];
    let mut stalled = false;
    while !hogs.stop.load(Ordering::Relaxed) && !stalled {
        stalled = s.write_all(&segment).is_err();
        thread::sleep(Duration::from_micros(50));
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    hogs.stalled.fetch_add(1, Ordering::Relaxed);
    while !hogs.stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(10));
    }
}

/// Writes 64 KiB chunks without reading until `stop`.
fn bulk_hog(addr: SocketAddr, hogs: &Hogs) {
    let mut s = never_reader(addr);
    let chunk = vec![b'b'; 64 * 1024];
    let mut counted = false;
    while !hogs.stop.load(Ordering::Relaxed) {
        if s.write(&chunk).is_err() && !counted {
            counted = true;
            hogs.stalled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One measurement at a time.
static ALONE: Mutex<()> = Mutex::new(());

fn fairness(backend: Backend, n: usize, hog: fn(SocketAddr, &Hogs)) {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let seed = util::seed();
    let mut cfg = ringport_servers::echo::EchoConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.port.workers = 1;
    cfg.port.backend = backend;
    cfg.port.shutdown_timeout = Duration::from_millis(200);
    let port = ringport_servers::echo::start(&cfg).expect("the echo server starts");
    let addr = port.local_addr().unwrap();
    let pp = PingPong {
        stop: AtomicBool::new(false),
        trips: AtomicU64::new(0),
    };
    let hogs = Hogs {
        stop: AtomicBool::new(false),
        stalled: AtomicU64::new(0),
    };
    thread::scope(|s| {
        s.spawn(|| pp.run(addr, seed));
        util::wait_until(Duration::from_secs(10), "ping-pong started", || {
            pp.trips.load(Ordering::Relaxed) > 1000
        });
        let alone = pp.rate();
        for _ in 0..n {
            s.spawn(|| hog(addr, &hogs));
        }
        // Until the server stops reading every hog, or 6 s: enough for the echo to a trickling
        // client that does not read to back up in the server's socket buffers (megabytes),
        // after which each of its segments holds a buffer.
        let start = Instant::now();
        while hogs.stalled.load(Ordering::Relaxed) < n as u64 && start.elapsed().as_secs() < 6 {
            thread::sleep(Duration::from_millis(20));
        }
        let stalled_after = start.elapsed();
        let with_hogs = pp.rate();
        // A newcomer is served too.
        let late = util::connect(addr);
        late.set_read_timeout(Some(STARVED)).unwrap();
        let late_served =
            (0..100).all(|i| ping(&late, &util::payload(seed ^ 0xdead ^ i, 64)).is_ok());
        // Stop every client before judging, so that a failure cannot leave threads running.
        hogs.stop.store(true, Ordering::Relaxed);
        pp.stop.store(true, Ordering::Relaxed);
        eprintln!(
            "{backend}, {n} hog(s) stalled after {:?}: {alone:.0} round trips/s alone, \
             {with_hogs:.0} with them",
            stalled_after
        );
        assert!(
            with_hogs >= alone / 4.0,
            "{with_hogs:.0} round trips/s with the hogs, {alone:.0} without"
        );
        assert!(
            late_served,
            "a client that came while the hogs ran was not served"
        );
    });
    util::shutdown_and_join(port);
}

#[test]
fn a_trickling_client_that_never_reads() {
    util::each_backend(|backend| fairness(backend, 1, trickle_hog));
}

#[test]
fn forty_bulk_senders_that_never_read() {
    util::each_backend(|backend| fairness(backend, 40, bulk_hog));
}
