//! Helpers of the echo server's behaviour tests: the backend matrix, in-process echo servers,
//! verifiable byte streams, loopback clients, descriptor counting and bounded waits.
//!
//! Content is always verified: every byte a client sends comes from a pseudo-random stream
//! that can be regenerated from any offset, so a receiver checks what it gets without keeping
//! a copy, and a failure names the first wrong offset.
#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use ringport::Backend;
use ringport::Port;
use ringport_servers::echo::{self, EchoConfig};

/// Read and write timeout of every client socket: a server bug fails the test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to shut down before the test calls it a hang.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);
/// How long a nonblocking writer must make no progress to count as stopped by backpressure.
pub const STALL: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Backends and servers

/// The backends to test on: io_uring and epoll where an echo server can start here, or only
/// the one named by `RINGPORT_BACKEND` (which then must start). Skipped backends are reported
/// once per test binary on stderr (not captured).
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
        match start_echo_with(backend, 1) {
            Ok(port) => {
                port.shutdown();
                port.join().expect("the probe server joins");
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

fn start_echo_with(backend: Backend, workers: usize) -> io::Result<Port> {
    echo::start(&EchoConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers,
        backend,
        shutdown_timeout: Duration::from_millis(500),
    })
}

/// An echo server with two workers on a free loopback port; shutdown aborts what is left
/// after half a second.
pub fn start_echo(backend: Backend) -> Port {
    start_echo_with(backend, 2).expect("the echo server starts")
}

/// Shuts the server down and joins it within [`SHUTDOWN_BOUND`].
pub fn shutdown_and_join(port: Port) {
    port.shutdown();
    within(SHUTDOWN_BOUND, "joining the server", move || port.join())
        .expect("every worker exits cleanly");
}

// ---------------------------------------------------------------------------------------------
// Bounded waits

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

// ---------------------------------------------------------------------------------------------
// Descriptors

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

// ---------------------------------------------------------------------------------------------
// Verifiable bytes

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills `buf` with bytes `offset..` of the pseudo-random stream named by `seed`.
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

/// Checks that `got` is bytes `offset..` of the stream named by `seed`.
#[track_caller]
pub fn check_stream(seed: u64, offset: u64, got: &[u8], what: &str) {
    let mut want = vec![0; got.len()];
    fill(seed, offset, &mut want);
    if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!("{what}: wrong byte at stream offset {}", offset + at as u64);
    }
}

/// Asserts that `got` is `want`, naming the first differing offset rather than dumping bytes.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .or_else(|| (got.len() != want.len()).then(|| got.len().min(want.len())));
    if let Some(at) = at {
        panic!(
            "{what}: got {} bytes, want {}; first difference at offset {at}",
            got.len(),
            want.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A loopback client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connecting");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Sends `data` and reads back as many bytes, writing and reading at once (a server that
/// applies backpressure would never finish a large message read only after it is written).
///
/// # Panics
/// If the echo differs from `data`.
pub fn round_trip(stream: &TcpStream, data: &[u8]) {
    let echoed = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut w = stream;
            w.write_all(data)
        });
        let mut echoed = vec![0; data.len()];
        let read = (&*stream).read_exact(&mut echoed);
        writer.join().unwrap().expect("writing the message");
        read.expect("reading the echo");
        echoed
    });
    assert_bytes(&echoed, data, "echo");
}

/// How a read to the end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Eof,
    Reset,
}

/// Reads until EOF or a reset, checking every byte against the stream named by `seed` from
/// `offset` on; returns how many bytes were read and how it ended. Any other error (a
/// timeout) fails.
pub fn read_stream_to_end(mut stream: &TcpStream, seed: u64, offset: u64) -> (u64, End) {
    let mut chunk = vec![0; 64 * 1024];
    let mut pos = offset;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (pos - offset, End::Eof),
            Ok(n) => {
                check_stream(seed, pos, &chunk[..n], "echoed stream");
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return (pos - offset, End::Reset)
            }
            Err(e) => panic!("reading at stream offset {pos}: {e}"),
        }
    }
}

/// Writes the stream named by `seed` from `from` up to `to`, then half-closes.
pub fn write_stream(mut stream: &TcpStream, seed: u64, from: u64, to: u64) -> io::Result<()> {
    let mut chunk = vec![0; 256 * 1024];
    let mut pos = from;
    while pos < to {
        let n = chunk.len().min((to - pos) as usize);
        fill(seed, pos, &mut chunk[..n]);
        stream.write_all(&chunk[..n])?;
        pos += n as u64;
    }
    stream.shutdown(Shutdown::Write)
}

/// Writes the stream named by `seed` without blocking until the socket takes nothing more for
/// [`STALL`] (or `max` bytes are written); returns the bytes written.
pub fn write_until_stalled(stream: &TcpStream, seed: u64, max: u64) -> u64 {
    stream.set_nonblocking(true).unwrap();
    let mut chunk = vec![0; 64 * 1024];
    let mut written = 0u64;
    let mut last_progress = Instant::now();
    while written < max && last_progress.elapsed() < STALL {
        let n = chunk.len().min((max - written) as usize);
        fill(seed, written, &mut chunk[..n]);
        match (&*stream).write(&chunk[..n]) {
            Ok(n) => {
                written += n as u64;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("writing at stream offset {written}: {e}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
    written
}

/// Sets `SO_LINGER` to zero so that dropping the socket resets the connection.
pub fn set_reset_on_close(stream: &TcpStream) {
    socket2::SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
}

/// Shrinks a client's socket buffers (no autotuning), so that backpressure shows after a
/// few hundred KiB on the client's side.
pub fn small_buffers(stream: &TcpStream) {
    let s = socket2::SockRef::from(stream);
    s.set_send_buffer_size(64 * 1024).unwrap();
    s.set_recv_buffer_size(64 * 1024).unwrap();
}

/// One line of a `/proc/sys` file, split into numbers.
pub fn sysctl(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The most bytes TCP buffers can hold on the server's side of one connection: its receive
/// buffer and its send buffer at their autotuning maximum.
pub fn server_socket_buffers_max() -> u64 {
    let rmem = sysctl("/proc/sys/net/ipv4/tcp_rmem").get(2).copied();
    let wmem = sysctl("/proc/sys/net/ipv4/tcp_wmem").get(2).copied();
    rmem.unwrap_or(6 << 20) + wmem.unwrap_or(4 << 20)
}
