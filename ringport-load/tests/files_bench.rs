//! The download benchmark against the real file server (in-process) and against small HTTP
//! servers on plain threads, correct and broken: the checks must pass on good replies and
//! catch bad ones. Runs on every backend this machine has.
// Linux only, like ringport-load itself (it measures with Linux facilities).
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringport::{Backend, Port};
use ringport_load::{run_files, Expect, FilesConfig, FilesReport, LoadError, Protocol};
use ringport_servers::files::{self, FilesConfig as ServerConfig};

const BACKENDS: [Backend; 2] = [Backend::Uring, Backend::Epoll];
const MIB: usize = 1 << 20;
const NAME: &str = "1m.bin";

/// A folder of its own under the system's temp folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ringport-files-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Writes `content` as `name` and returns its path.
    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes of a xorshift stream: no run or period that a misplaced chunk could match.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The file server on `backend` serving `dir`, or `None` (with a note) where it is unavailable.
fn file_server(dir: &Path, backend: Backend) -> Option<Port> {
    let mut cfg = ServerConfig::new(dir, "127.0.0.1:0".parse().unwrap());
    cfg.port.workers = 1;
    cfg.port.backend = backend;
    cfg.port.shutdown_timeout = Duration::from_millis(500);
    match files::start(&cfg) {
        Ok(port) => Some(port),
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("skipping {backend}: {e}");
            None
        }
        Err(e) => panic!("file server on {backend}: {e}"),
    }
}

fn config(addr: SocketAddr, expect: Expect, backend: Backend) -> FilesConfig {
    let mut cfg = FilesConfig::new(addr, NAME, expect);
    cfg.conns = 4;
    cfg.warmup = Duration::from_millis(100);
    cfg.duration = Duration::from_millis(700);
    cfg.backend = backend;
    cfg
}

/// Runs the generator, or `None` (with a note) where its backend is unavailable.
fn run_or_skip(cfg: &FilesConfig) -> Option<FilesReport> {
    match run_files(cfg) {
        Ok(report) => Some(report),
        Err(LoadError::Start(e)) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("skipping {}: {e}", cfg.backend);
            None
        }
        Err(e) => panic!("{}: {e}", cfg.backend),
    }
}

/// Runs `check(backend, server address, local copy)` against the file server on every
/// backend, serving a 1 MiB file whose local copy is `local` (the same bytes if `None`).
fn with_file_server(local: Option<Vec<u8>>, check: impl Fn(Backend, SocketAddr, PathBuf)) {
    let dir = TempDir::new();
    let served = random_bytes(MIB);
    let local_dir = TempDir::new();
    let copy = local_dir.file(NAME, local.as_deref().unwrap_or(&served));
    dir.file(NAME, &served);
    for backend in BACKENDS {
        let Some(port) = file_server(&dir.0, backend) else {
            continue;
        };
        check(backend, port.local_addr().unwrap(), copy.clone());
        port.shutdown();
        port.join().unwrap();
    }
}

/// The bytes of the window are those of its downloads, give or take one download in flight per
/// connection at either end of the window.
fn assert_window_bytes(r: &FilesReport) {
    let (low, high) = (r.downloads.saturating_sub(4), r.downloads + 4);
    assert!(
        (low * r.size..=high * r.size).contains(&r.bytes),
        "{} bytes for {} downloads: {r}",
        r.bytes,
        r.downloads
    );
}

#[test]
fn downloads_verify() {
    with_file_server(None, |backend, addr, copy| {
        let mut cfg = config(addr, Expect::File(copy), backend);
        cfg.server_pid = Some(std::process::id());
        let started = Instant::now();
        let Some(r) = run_or_skip(&cfg) else { return };
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{backend}: slow"
        );
        assert!(r.downloads > 0, "{backend}: {r}");
        assert_eq!(r.outcome.errors, 0, "{backend}: {r}");
        assert_eq!(r.outcome.connected, 4, "{backend}: {r}");
        assert!(r.verified && r.size == MIB as u64, "{backend}: {r}");
        assert_window_bytes(&r);
        assert!(
            r.mb_per_sec > 0.0 && r.latency.p99_us.unwrap() > 0.0,
            "{backend}: {r}"
        );
        // The server runs in this process: its CPU is ours.
        assert!(r.server_cpu_s_per_gb.is_some(), "{backend}: {r}");
    });
}

#[test]
fn different_bytes_are_caught() {
    let mut local = random_bytes(MIB);
    local[700_000] ^= 0x40;
    with_file_server(Some(local), |backend, addr, copy| {
        let cfg = config(addr, Expect::File(copy), backend);
        let Some(r) = run_or_skip(&cfg) else { return };
        assert_eq!(r.downloads, 0, "{backend}: {r}");
        assert_eq!(r.outcome.verify_errors, 4, "{backend}: {r}");
        let first = r.outcome.first_error.unwrap();
        assert!(first.contains("byte 700000 differs"), "{backend}: {first}");
    });
}

#[test]
fn wrong_sizes_are_caught() {
    with_file_server(None, |backend, addr, _| {
        // One byte short: the file runs past the end.
        let cfg = config(addr, Expect::Size(MIB as u64 - 1), backend);
        let Some(r) = run_or_skip(&cfg) else { return };
        assert_eq!(
            (r.downloads, r.outcome.verify_errors),
            (0, 4),
            "{backend}: {r}"
        );
        assert!(r
            .outcome
            .first_error
            .unwrap()
            .contains("more than the 1048575 bytes"));

        // One byte more: the download never ends, and stalls.
        let mut cfg = config(addr, Expect::Size(MIB as u64 + 1), backend);
        cfg.stall_timeout = Duration::from_millis(200);
        let r = run_files(&cfg).unwrap();
        assert_eq!((r.downloads, r.outcome.io_errors), (0, 4), "{backend}: {r}");
        let first = r.outcome.first_error.unwrap();
        assert!(first.contains("after 1048576 of 1048577 bytes"), "{first}");
    });
}

#[test]
fn error_replies_are_reported() {
    with_file_server(None, |backend, addr, _| {
        let mut cfg = config(addr, Expect::Size(100), backend);
        cfg.name = "missing.bin".into();
        cfg.conns = 2;
        let Some(r) = run_or_skip(&cfg) else { return };
        assert_eq!(
            (r.downloads, r.outcome.verify_errors),
            (0, 2),
            "{backend}: {r}"
        );
        let first = r.outcome.first_error.unwrap();
        assert!(
            first.contains("replied \"error: no such file: missing.bin\""),
            "{first}"
        );
    });
}

/// An HTTP/1.1 keep-alive server on plain threads that answers every `GET /1m.bin` with
/// `body`, declaring `content_length`; every other reply has its head sent in two pieces, so
/// the client also sees heads split across receives.
struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start(body: Vec<u8>, content_length: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let body = Arc::new(body);
        let thread = std::thread::spawn(move || {
            let mut clients = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let body = body.clone();
                        clients.push(std::thread::spawn(move || {
                            serve_http(stream, &body, content_length);
                        }));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            drop(listener);
            // Clients end when the load generator closes their connections.
            clients.into_iter().for_each(|c| c.join().unwrap());
        });
        HttpServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve_http(mut stream: TcpStream, body: &[u8], content_length: usize) {
    stream.set_nonblocking(false).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut replies = 0u64;
    let mut pending = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let request = pending.drain(..end + 4).collect::<Vec<_>>();
        assert!(
            request.starts_with(b"GET /1m.bin HTTP/1.1\r\n"),
            "{}",
            request.escape_ascii()
        );
        let head =
            format!("HTTP/1.1 200 OK\r\nServer: test\r\nContent-Length: {content_length}\r\n\r\n");
        replies += 1;
        let cut = if replies % 2 == 0 { 20 } else { 0 };
        let sent = stream.write_all(&head.as_bytes()[..cut]).and_then(|()| {
            if cut > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            stream.write_all(&head.as_bytes()[cut..])?;
            stream.write_all(body)
        });
        if sent.is_err() {
            return;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn http_downloads_verify() {
    let body = random_bytes(MIB);
    let dir = TempDir::new();
    let copy = dir.file(NAME, &body);
    let server = HttpServer::start(body, MIB);
    for backend in BACKENDS {
        let mut cfg = config(server.addr, Expect::File(copy.clone()), backend);
        cfg.protocol = Protocol::Http;
        let Some(r) = run_or_skip(&cfg) else { continue };
        assert!(r.downloads > 0, "{backend}: {r}");
        assert_eq!(r.outcome.errors, 0, "{backend}: {r}");
        assert_eq!(r.protocol, "http");
        assert_window_bytes(&r);
    }
}

#[test]
fn http_wrong_content_length_is_caught() {
    let server = HttpServer::start(random_bytes(MIB), MIB + 1);
    for backend in BACKENDS {
        let mut cfg = config(server.addr, Expect::Size(MIB as u64), backend);
        cfg.protocol = Protocol::Http;
        let Some(r) = run_or_skip(&cfg) else { continue };
        assert_eq!(
            (r.downloads, r.outcome.verify_errors),
            (0, 4),
            "{backend}: {r}"
        );
        let first = r.outcome.first_error.unwrap();
        assert!(
            first.contains("Content-Length 1048577, expected 1048576"),
            "{first}"
        );
    }
}

#[test]
fn stops_when_the_server_hangs() {
    // A listener that accepts (the kernel does, into the backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    for backend in BACKENDS {
        let mut cfg = config(silent.local_addr().unwrap(), Expect::Size(10), backend);
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_millis(300);
        let started = Instant::now();
        let Some(r) = run_or_skip(&cfg) else { continue };
        assert!(started.elapsed() < Duration::from_secs(3), "{backend}");
        assert_eq!(
            (r.downloads, r.outcome.errors, r.outcome.connected),
            (0, 0, 4),
            "{backend}: {r}"
        );
    }
}

/// `discard` (splice into /dev/null, lengths only) downloads over nc and HTTP from the real
/// server, and a wrong length is still caught.
#[test]
fn discarding_downloads_count_lengths() {
    with_file_server(None, |backend, addr, copy| {
        for protocol in [Protocol::Nc, Protocol::Http] {
            let mut cfg = config(addr, Expect::Size(MIB as u64), backend);
            cfg.protocol = protocol;
            cfg.discard = true;
            let r = run_files(&cfg).unwrap();
            assert!(r.downloads > 0 && !r.verified, "{protocol}: {r}");
            assert_eq!(r.outcome.errors, 0, "{protocol}: {r}");
            assert_window_bytes(&r);
        }
        let mut cfg = config(addr, Expect::Size(MIB as u64 + 1), backend);
        cfg.protocol = Protocol::Http;
        cfg.discard = true;
        let r = run_files(&cfg).unwrap();
        assert!(r.outcome.verify_errors > 0, "{r}");
        let mut cfg = config(addr, Expect::File(copy), backend);
        cfg.discard = true;
        assert!(matches!(run_files(&cfg), Err(LoadError::Config(_))));
    });
}
