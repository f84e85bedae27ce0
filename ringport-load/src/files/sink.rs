//! Downloads that never look at the bytes (`--discard`): each body goes from the socket into a
//! pipe and from the pipe into `/dev/null` with `splice(2)`, so the client copies nothing and
//! only counts lengths. This measures the server against the loopback limit instead of
//! measuring the client: a verifying client spends its core copying and comparing.
//!
//! One blocking thread per connection (the point here is the byte path, not the client's
//! concurrency model); the HTTP head, when there is one, is read with ordinary reads and
//! checked like the verifying client does. At the end of the window every socket is shut down,
//! which ends the threads' `splice` calls.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};

use super::report::{FilesReport, Inputs};
use super::{FilesConfig, Protocol};
use crate::error::LoadError;
use crate::http;
use crate::run::CpuStart;
use crate::stats::{Failure, Stats};

/// Bytes moved per `splice` call at most (the pipe is grown to this size where allowed).
const CHUNK: usize = 1 << 20;

/// What the threads share with the controller.
struct Shared {
    measuring: AtomicBool,
    stop: AtomicBool,
    /// Every connection, to shut down at the end.
    sockets: Mutex<Vec<TcpStream>>,
}

/// Runs `cfg` (with `request` as every download's request) without looking at the bytes.
pub(crate) fn run(
    cfg: &FilesConfig,
    request: Arc<[u8]>,
    size: u64,
) -> Result<FilesReport, LoadError> {
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        sockets: Mutex::new(Vec::new()),
    });
    let threads: Vec<_> = (0..cfg.conns)
        .map(|_| {
            let (shared, request) = (shared.clone(), request.clone());
            let (addr, protocol, stall) = (cfg.addr, cfg.protocol, cfg.stall_timeout);
            std::thread::spawn(move || {
                let mut stats = Stats::default();
                if let Err((failure, why)) =
                    connection(&shared, addr, protocol, &request, size, stall, &mut stats)
                {
                    if !shared.stop.load(Ordering::Relaxed) {
                        stats.count(failure, why);
                    }
                }
                stats
            })
        })
        .collect();
    std::thread::sleep(cfg.warmup);
    let cpu = CpuStart::read(cfg.server_pid)?;
    let window_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(cfg.duration);
    shared.measuring.store(false, Ordering::Relaxed);
    let window = window_start.elapsed();
    let (server_cpu, client_cpu, server) = cpu.elapsed();
    shared.stop.store(true, Ordering::Relaxed);
    for s in shared.sockets.lock().unwrap().iter() {
        let _ = s.shutdown(Shutdown::Both);
    }
    let mut stats = Stats::default();
    for t in threads {
        stats.merge(
            &t.join()
                .map_err(|_| LoadError::Config("a sink thread panicked".into()))?,
        );
    }
    let inputs = Inputs {
        backend: "threads+splice".into(),
        protocol: cfg.protocol,
        name: cfg.name.clone(),
        size,
        verified: false,
        conns: cfg.conns,
        threads: cfg.conns,
        warmup: cfg.warmup,
        window,
        server_cpu,
        client_cpu,
        server,
    };
    Ok(FilesReport::new(inputs, &stats))
}

type Fail = (Failure, String);

/// One connection: download after download until stopped.
fn connection(
    shared: &Shared,
    addr: std::net::SocketAddr,
    protocol: Protocol,
    request: &[u8],
    size: u64,
    stall: Duration,
    stats: &mut Stats,
) -> Result<(), Fail> {
    let io = |e: std::io::Error| (Failure::Io, e.to_string());
    let mut sock =
        TcpStream::connect(addr).map_err(|e| (Failure::Connect, format!("{addr}: {e}")))?;
    stats.connected += 1;
    sock.set_nodelay(true).map_err(io)?;
    sock.set_read_timeout(Some(stall)).map_err(io)?;
    shared
        .sockets
        .lock()
        .unwrap()
        .push(sock.try_clone().map_err(io)?);
    let (pipe_r, pipe_w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| io(e.into()))?;
    let _ = rustix::pipe::fcntl_setpipe_size(&pipe_w, CHUNK);
    let null: OwnedFd = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(io)?
        .into();
    let mut head = vec![0; http::MAX_HEAD];
    while !shared.stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        sock.write_all(request).map_err(io)?;
        // The body bytes that came with the head.
        let mut got = match protocol {
            Protocol::Nc => 0,
            Protocol::Http => read_head(&mut sock, &mut head, size)?,
        };
        if shared.measuring.load(Ordering::Relaxed) {
            stats.bytes_received += got;
        }
        while got < size {
            let want = (size - got).min(CHUNK as u64) as usize;
            let n = match splice(sock.as_fd(), None, &pipe_w, None, want, SpliceFlags::MOVE) {
                Ok(n) => n,
                // The socket's receive timeout: the download stalled.
                Err(rustix::io::Errno::AGAIN) => {
                    let why = format!("no byte for {stall:?} after {got} of {size} bytes");
                    return Err((Failure::Io, why));
                }
                Err(e) => return Err(io(e.into())),
            };
            if n == 0 {
                return Err((Failure::Io, format!("EOF after {got} of {size} bytes")));
            }
            let mut left = n;
            while left > 0 {
                left -= splice(&pipe_r, None, &null, None, left, SpliceFlags::MOVE)
                    .map_err(|e| io(e.into()))?;
            }
            got += n as u64;
            if shared.measuring.load(Ordering::Relaxed) {
                stats.bytes_received += n as u64;
            }
        }
        if shared.measuring.load(Ordering::Relaxed) {
            stats.record(start.elapsed(), 0);
        }
    }
    Ok(())
}

/// Reads an HTTP response head (checked to announce `size` bytes) with ordinary reads; returns
/// how many body bytes came after it.
fn read_head(sock: &mut TcpStream, buf: &mut [u8], size: u64) -> Result<u64, Fail> {
    let mut len = 0;
    loop {
        let n = sock
            .read(&mut buf[len..])
            .map_err(|e| (Failure::Io, e.to_string()))?;
        if n == 0 {
            return Err((Failure::Io, "EOF in the response head".into()));
        }
        len += n;
        match http::parse_head(&buf[..len]) {
            Ok(Some(head)) => {
                head.expect(size).map_err(|why| (Failure::Verify, why))?;
                let extra = (len - head.len) as u64;
                if extra > size {
                    return Err((Failure::Verify, "more bytes than the body".into()));
                }
                return Ok(extra);
            }
            Ok(None) if len == buf.len() => {
                return Err((Failure::Verify, "response head too long".into()))
            }
            Ok(None) => {}
            Err(why) => return Err((Failure::Verify, why)),
        }
    }
}
