//! The echo load generator against a real echo server (in-process), and against a broken one
//! whose errors it must catch. Runs on every backend this machine has.
// Linux only, like ringport-load itself (it measures with Linux facilities).
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringport::{Backend, Port};
use ringport_load::{run_echo, EchoConfig, LoadError, Report};
use ringport_servers::echo::{self, EchoConfig as ServerConfig};

const BACKENDS: [Backend; 2] = [Backend::Uring, Backend::Epoll];

/// Starts the echo server on `backend`, or `None` (with a note) where it is unavailable.
fn server(backend: Backend) -> Option<Port> {
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.port.workers = 1;
    cfg.port.backend = backend;
    cfg.port.shutdown_timeout = Duration::from_secs(1);
    match echo::start(&cfg) {
        Ok(port) => Some(port),
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("skipping {backend}: {e}");
            None
        }
        Err(e) => panic!("echo server on {backend}: {e}"),
    }
}

/// Runs the generator, or `None` (with a note) where its backend is unavailable.
fn run_or_skip(cfg: &EchoConfig) -> Option<Report> {
    match run_echo(cfg) {
        Ok(report) => Some(report),
        Err(LoadError::Start(e)) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("skipping {}: {e}", cfg.backend);
            None
        }
        Err(e) => panic!("{}: {e}", cfg.backend),
    }
}

fn config(addr: SocketAddr, backend: Backend) -> EchoConfig {
    let mut cfg = EchoConfig::new(addr);
    cfg.conns = 10;
    cfg.size = 1000;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_secs(1);
    cfg.backend = backend;
    cfg
}

#[test]
fn echo_round_trips_verify() {
    for backend in BACKENDS {
        let Some(port) = server(backend) else {
            continue;
        };
        let cfg = config(port.local_addr().unwrap(), backend);
        let started = Instant::now();
        let report = run_echo(&cfg).unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{backend}: too slow"
        );
        assert!(report.round_trips > 0, "{backend}: {report}");
        assert_eq!(report.outcome.errors, 0, "{backend}: {report}");
        assert_eq!(report.outcome.verify_errors, 0, "{backend}: {report}");
        assert_eq!(report.outcome.connected, 10, "{backend}: {report}");
        assert_eq!(report.outcome.served, 10, "{backend}: {report}");
        assert!(report.latency.p50_us.unwrap() > 0.0);
        assert!(report.mb_per_sec > 0.0);
        assert!(report.server_cpu_s.is_none());
        port.shutdown();
        port.join().unwrap();
    }
}

#[test]
fn server_cpu_is_measured() {
    let Some(port) = BACKENDS.into_iter().find_map(server) else {
        return;
    };
    let mut cfg = config(port.local_addr().unwrap(), Backend::Auto);
    cfg.conns = 2;
    cfg.warmup = Duration::ZERO;
    // The server runs in this process: its CPU time is ours.
    cfg.server_pid = Some(std::process::id());
    let report = run_echo(&cfg).unwrap();
    assert!(report.round_trips > 0, "{report}");
    assert!(report.server_cpu_s.is_some(), "{report}");
    assert!(report.client_cpu_ns_per_rt.is_some(), "{report}");
    // The port's workers wait for completions: they switch voluntarily, and are counted.
    assert!(report.server.ctx_switches().unwrap() > 0, "{report}");
    assert!(report.server.server_threads.unwrap() >= 2, "{report}");
    assert!(report.server.server_peak_rss_bytes.unwrap() > 0, "{report}");
    assert!(report.to_string().contains("server ctx"), "{report}");

    cfg.server_pid = Some(u32::MAX);
    assert!(matches!(
        run_echo(&cfg),
        Err(LoadError::ServerPid { pid: u32::MAX, .. })
    ));
}

/// An echo server on plain threads that flips one bit of every 300th byte it sends back.
struct BrokenEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BrokenEcho {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut clients = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => clients.push(std::thread::spawn(|| serve(stream))),
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
        BrokenEcho {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut stream: TcpStream) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0; 4096];
    let mut offset = 0usize;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for (i, b) in buf[..n].iter_mut().enumerate() {
            if (offset + i) % 300 == 299 {
                *b ^= 0x10;
            }
        }
        offset += n;
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

impl Drop for BrokenEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn wrong_echo_is_caught() {
    for backend in BACKENDS {
        let broken = BrokenEcho::start();
        let mut cfg = config(broken.addr, backend);
        cfg.conns = 4;
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_millis(300);
        let Some(report) = run_or_skip(&cfg) else {
            continue;
        };
        assert_eq!(report.outcome.verify_errors, 4, "{backend}: {report}");
        assert_eq!(report.outcome.errors, 4, "{backend}: {report}");
        assert_eq!(report.round_trips, 0, "{backend}: {report}");
        let first = report.outcome.first_error.unwrap();
        assert!(first.contains("at byte 299"), "{first}");
    }
}

#[test]
fn refused_connections_are_errors() {
    // A port nothing listens on: bind, note the address, close.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for backend in BACKENDS {
        let mut cfg = config(addr, backend);
        cfg.conns = 3;
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_millis(200);
        let Some(report) = run_or_skip(&cfg) else {
            continue;
        };
        assert_eq!(report.outcome.connected, 0, "{backend}: {report}");
        assert_eq!(report.outcome.connect_errors, 3, "{backend}: {report}");
        assert_eq!(report.round_trips, 0, "{backend}: {report}");
        let first = report.outcome.first_error.unwrap();
        assert!(first.contains("refused"), "{backend}: {first}");
    }
}

#[test]
fn stops_when_the_server_hangs() {
    // A listener that accepts (the kernel does, into the backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    for backend in BACKENDS {
        let mut cfg = config(silent.local_addr().unwrap(), backend);
        cfg.conns = 5;
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_millis(300);
        let started = Instant::now();
        let Some(report) = run_or_skip(&cfg) else {
            continue;
        };
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{backend}: did not stop"
        );
        assert_eq!(report.round_trips, 0, "{backend}: {report}");
        assert_eq!(report.outcome.errors, 0, "{backend}: {report}");
        assert_eq!(report.outcome.connected, 5, "{backend}: {report}");
        assert_eq!(report.outcome.served, 0, "{backend}: {report}");
    }
}
