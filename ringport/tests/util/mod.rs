//! Helpers shared by the behaviour tests of the core: the backend matrix, bounded waits,
//! descriptor counting, verifiable payloads and loopback clients.
#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{self, Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringport::{Backend, Completion, Handler, Io, Port};

/// Read and write timeout of every client socket: a server bug fails the test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a port may take to shut down before the test calls it a hang.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

/// A handler that aborts every connection: enough to see whether a port starts.
struct Probe;

impl Handler for Probe {
    type Conn = ();

    fn accepted(&mut self, io: &mut Io<'_>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_>, _: Completion) {}
}

/// The backends to test on: io_uring and epoll where a port can start here, or only the one
/// named by `RINGPORT_BACKEND` (which then must start). Skipped backends are reported once
/// per test binary on stderr (not captured).
pub fn backends() -> Vec<Backend> {
    static BACKENDS: OnceLock<Vec<Backend>> = OnceLock::new();
    BACKENDS.get_or_init(probe_backends).clone()
}

fn probe_backends() -> Vec<Backend> {
    let forced = match std::env::var(Backend::ENV) {
        Ok(name) if !name.is_empty() => match name.parse::<Backend>() {
            Ok(Backend::Auto) => None,
            Ok(backend) => Some(backend),
            Err(e) => panic!("{}: {e}", Backend::ENV),
        },
        _ => None,
    };
    let candidates = match forced {
        Some(backend) => vec![backend],
        None => vec![Backend::Uring, Backend::Epoll],
    };
    let mut usable = Vec::new();
    for backend in candidates {
        // Nothing to drain at shutdown: a short timeout keeps the probe quick whatever the
        // shutdown path does.
        let builder = Port::builder()
            .workers(1)
            .backend(backend)
            .shutdown_timeout(Duration::from_millis(50));
        match builder.start(|_| Probe) {
            Ok(port) => {
                port.shutdown();
                port.join().expect("the probe port joins");
                usable.push(backend);
            }
            Err(e) if forced.is_some() => {
                panic!(
                    "{}={backend} but that backend cannot start: {e}",
                    Backend::ENV
                )
            }
            Err(e) => {
                let _ = writeln!(io::stderr(), "note: skipping backend {backend}: {e}");
            }
        }
    }
    if usable.is_empty() {
        let _ = writeln!(io::stderr(), "note: no backend can start here");
    }
    usable
}

/// Runs `f` on a helper thread and waits for it at most `limit`: a hang guard, not a timing
/// assertion.
///
/// # Panics
/// If `f` panics or takes longer than `limit`.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still not done after {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// Shuts the port down and joins it within [`SHUTDOWN_BOUND`].
pub fn shutdown_and_join(port: Port) {
    port.shutdown();
    within(SHUTDOWN_BOUND, "joining the port", move || port.join())
        .expect("every worker exits cleanly");
}

/// Polls `cond` every few milliseconds until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not true after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Raises the soft descriptor limit to the hard one.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one valid rlimit; raising the soft limit up to the hard
        // one is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// Number of open descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
        // read_dir's own descriptor is listed too.
        .saturating_sub(1)
}

/// The descriptors of this process, with what they point to, for failure messages.
pub fn fd_list() -> Vec<String> {
    let mut list: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    list.sort();
    list
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills `buf` with bytes `offset..` of the pseudo-random stream named by `seed`. Any part of
/// the stream can be made again from its offset, so a receiver can check what it gets
/// without keeping a copy.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = splitmix64(seed ^ (pos / 8).wrapping_mul(0x2545_f491_4f6c_dd1d)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// `len` bytes of the stream named by `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(seed, 0, &mut v);
    v
}

/// A fresh random seed (printed, so that a failure can be replayed).
pub fn seed() -> u64 {
    let seed = rand::random();
    eprintln!("seed {seed:#x}");
    seed
}

/// Index of the first byte where `got` differs from `want`, for failure messages.
pub fn first_difference(got: &[u8], want: &[u8]) -> Option<usize> {
    got.iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .or_else(|| (got.len() != want.len()).then(|| got.len().min(want.len())))
}

/// Asserts that `got` is `want`, naming the first differing offset rather than dumping bytes.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if let Some(at) = first_difference(got, want) {
        panic!(
            "{what}: got {} bytes, want {}; first difference at offset {at}",
            got.len(),
            want.len()
        );
    }
}

/// A loopback client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connecting");
    set_timeouts(&stream);
    stream
}

/// Gives a socket the test's read and write timeouts and disables Nagle.
pub fn set_timeouts(stream: &TcpStream) {
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
}

/// A listener on a free loopback port.
pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("binding a loopback listener")
}

/// Accepts one connection within [`IO_TIMEOUT`].
pub fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                set_timeouts(&stream);
                return stream;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection to accept");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads until EOF, returning everything read. A reset after some data counts as the end
/// too when `reset_ok`; a timeout always fails.
pub fn read_to_end(mut stream: &TcpStream, reset_ok: bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if reset_ok && e.kind() == io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading after {} bytes: {e}", got.len()),
        }
    }
}

/// Sets `SO_LINGER` to zero so that dropping the socket resets the connection.
pub fn set_reset_on_close(stream: &TcpStream) {
    socket2::SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
}
