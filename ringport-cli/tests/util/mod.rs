//! Helpers of the tests that run the real `ringport` binary: the backend matrix, a child
//! server that announces its address, what `/proc` says about it, verifiable byte streams and
//! loopback clients.
#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use ringport::Backend;
use ringport::{Completion, Handler, Io, Port};

/// Read and write timeout of every client socket: a server bug fails the test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to exit after SIGTERM before the test calls it a hang.
pub const EXIT_BOUND: Duration = Duration::from_secs(10);
/// How long a nonblocking writer must make no progress to count as stopped by backpressure.
pub const STALL: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Backends

struct Probe;

impl Handler for Probe {
    type Conn = ();

    fn accepted(&mut self, io: &mut Io<'_>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_>, _: Completion) {}
}

/// The backends to test on: io_uring and epoll where a port can start here, or only the one
/// named by `RINGPORT_BACKEND` (which then must start). Skipped backends are reported once per
/// test binary on stderr (not captured).
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

// ---------------------------------------------------------------------------------------------
// The child server

/// A `ringport echo` child on a free loopback port. Dropping it kills it if it still runs, and
/// a failing test prints what it logged.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The first line it printed.
    pub banner: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `ringport echo` on `backend` with two workers and a one-second shutdown timeout.
    pub fn echo(backend: Backend) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringport"));
        cmd.args(["echo", "--listen", "127.0.0.1:0", "--threads", "2"])
            .args(["--shutdown-timeout", "1", "--backend"])
            .arg(backend.to_string())
            .env_remove(Backend::ENV)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning ringport");
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().unwrap(), log.clone());

        // The first stdout line, read on a helper thread so that a silent child cannot hang
        // the test.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining, so that the child never blocks on a full pipe.
            for _ in lines {}
        });
        let banner = match rx.recv_timeout(IO_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no listening line from ringport ({other:?}); it logged:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let addr = parse_addr(&banner);
        Server {
            child,
            addr,
            banner,
            log,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: kill has no memory effects; the pid is our own child, which has not been
        // reaped yet (we hold its `Child`), so it cannot name another process.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
    }

    /// Waits for the child to exit, at most [`EXIT_BOUND`] (a hang guard).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for ringport") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ringport still runs {EXIT_BOUND:?} after SIGTERM; it logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the child wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Number of open descriptors of the child.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/PID/fd")
            .count()
    }

    /// The child's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS`).
pub fn rss_of(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("ringport logged:\n{}", self.log());
        }
    }
}

fn collect(stderr: ChildStderr, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// The address in `ringport echo listening on ADDR (...)`.
pub fn parse_addr(line: &str) -> SocketAddr {
    line.strip_prefix("ringport echo listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
}

/// Polls `cond` every few milliseconds until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not true after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `value` until it stops changing for `quiet`, at most `limit`; returns it.
pub fn settled<T: PartialEq + Copy>(limit: Duration, quiet: Duration, value: impl Fn() -> T) -> T {
    let deadline = Instant::now() + limit;
    let mut last = value();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(Instant::now() < deadline, "never settled within {limit:?}");
    }
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

/// Sends `data` and reads back as many bytes, writing and reading at once; checks the echo.
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
    if let Some(at) = echoed.iter().zip(data).position(|(a, b)| a != b) {
        panic!("echo differs at offset {at}");
    }
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

/// Shrinks a client's socket buffers (no autotuning).
pub fn small_buffers(stream: &TcpStream) {
    let s = socket2::SockRef::from(stream);
    s.set_send_buffer_size(64 * 1024).unwrap();
    s.set_recv_buffer_size(64 * 1024).unwrap();
}

/// The most bytes TCP buffers can hold on the server's side of one connection.
pub fn server_socket_buffers_max() -> u64 {
    let max = |path: &str, default: u64| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2).and_then(|n| n.parse().ok()))
            .unwrap_or(default)
    };
    max("/proc/sys/net/ipv4/tcp_rmem", 6 << 20) + max("/proc/sys/net/ipv4/tcp_wmem", 4 << 20)
}
