//! Short of file descriptors: the servers keep serving the connections they have, do not spin
//! while they cannot accept, and accept again once descriptors are free.
// Linux only: lowers RLIMIT_NOFILE with libc and reads the child's CPU time from /proc.
#![cfg(target_os = "linux")]

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use ringport::Backend;
use util::files::TempDir;
use util::ChildServer;

/// The server's descriptor limit (soft and hard): a little above what it needs at rest.
const NOFILE: u64 = 48;
const FILE: &[u8] = b"the quick brown fox jumps over the lazy dog\n";

/// Runs `ringport ARGS --listen 127.0.0.1:0 --threads 1 --backend BACKEND`, a server, with at
/// most [`NOFILE`] descriptors.
fn start(backend: Backend, args: &[&str]) -> ChildServer {
    start_with(backend, args, NOFILE)
}

/// [`start`] with at most `nofile` descriptors.
fn start_with(backend: Backend, args: &[&str], nofile: u64) -> ChildServer {
    let name = format!("ringport {}", args[0]);
    let mut cmd = util::ringport(args);
    cmd.args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .args(["--backend", &backend.to_string()]);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    ChildServer::start(&mut cmd, &name)
}

/// Sends `request` and reads exactly `reply` back.
fn exchange(s: &mut TcpStream, request: &[u8], reply: &[u8]) {
    s.write_all(request).unwrap();
    let mut got = vec![0; reply.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, reply);
}

/// Asserts that the server burns well under a core for two seconds (a busy loop would burn one).
fn assert_idle(server: &ChildServer, what: &str) {
    let ticks = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let (t0, c0) = (Instant::now(), ticks(server.pid()));
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (ticks(server.pid()) - c0) as f64 / hz;
    let wall = t0.elapsed().as_secs_f64();
    assert!(cpu < wall * 0.5, "{what}: {cpu:.2} s of CPU in {wall:.2} s");
}

/// The echo server holds one descriptor per client: past the limit, accept fails with EMFILE.
#[test]
fn echo_out_of_descriptors_keeps_serving_and_recovers() {
    for backend in util::backends() {
        let server = start(backend, &["echo"]);
        // Far more clients than descriptors: the kernel completes their handshakes, the server
        // accepts until EMFILE, and the rest wait in the backlog.
        let mut clients: Vec<TcpStream> = (0..NOFILE * 2)
            .map(|_| util::connect(server.addr))
            .collect();
        // The first client was accepted before the limit was reached: it is served.
        exchange(&mut clients[0], b"still here", b"still here");
        assert_idle(&server, &format!("{backend}: echo out of descriptors"));
        // Free descriptors: every waiting client is accepted and served in the end.
        let waiting = clients.split_off(NOFILE as usize);
        drop(clients);
        for (i, mut c) in waiting.into_iter().enumerate() {
            let msg = format!("client {i}");
            exchange(&mut c, msg.as_bytes(), msg.as_bytes());
        }
    }
}

/// The file server keeps a descriptor free for each connection's file: it caps connections below
/// the limit, tells the others it is busy, and serves new clients once old ones leave.
#[test]
fn serve_within_descriptors_refuses_cleanly_and_recovers() {
    let dir = TempDir::new("emfile");
    std::fs::write(dir.path().join("f.txt"), FILE).unwrap();
    let root = dir.path().to_str().unwrap();
    for backend in util::backends() {
        let server = start(backend, &["serve", root]);
        let mut clients: Vec<TcpStream> = (0..NOFILE * 2)
            .map(|_| util::connect(server.addr))
            .collect();
        // Every client gets an answer: the file, or "server busy". Over the cap, busy comes with a
        // close; while descriptors are short for a moment (a burst of accepts), the connection
        // stays usable and the request is simply asked again.
        let (mut served, mut busy) = (Vec::new(), 0);
        for mut c in clients.drain(..) {
            for attempt in 0.. {
                assert!(attempt < 100, "{backend}: still busy after 100 attempts");
                c.write_all(b"f.txt\n").unwrap();
                let mut got = vec![0; FILE.len()];
                let n = c.read(&mut got).unwrap();
                if !got[..n].starts_with(b"error: server busy") {
                    c.read_exact(&mut got[n..]).unwrap();
                    assert_eq!(got, FILE, "{backend}");
                    served.push(c);
                    break;
                }
                c.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut rest = [0; 64];
                match c.read(&mut rest) {
                    Ok(0) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                    // Still open: a transient shortage; ask again.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        c.set_read_timeout(Some(util::IO_TIMEOUT)).unwrap();
                        continue;
                    }
                    other => panic!("{backend}: after busy: {other:?}"),
                }
                busy += 1;
                break;
            }
        }
        assert!(
            !served.is_empty() && busy > 0,
            "{backend}: served {}, busy {busy}",
            served.len()
        );
        // The connections it has keep working.
        for c in &mut served {
            exchange(c, b"f.txt\n", FILE);
        }
        assert_idle(&server, &format!("{backend}: serve at its connection cap"));
        // Once they leave, new clients are served.
        drop(served);
        std::thread::sleep(Duration::from_millis(200));
        let mut c = util::connect(server.addr);
        exchange(&mut c, b"f.txt\n", FILE);
    }
}

/// A flood of 200 clients at a server limited to 64 descriptors: the sockets it refuses come
/// and go, yet every client it admitted gets its file on its first request (never "busy" for
/// its file: descriptors for the admitted clients' files are kept), the others are told
/// "busy" and closed, and running out of descriptors to accept with is logged once, not every
/// 100 ms.
#[test]
fn serve_flood_keeps_the_descriptors_of_admitted_clients() {
    let dir = TempDir::new("emfile-flood");
    std::fs::write(dir.path().join("f.txt"), FILE).unwrap();
    let root = dir.path().to_str().unwrap();
    for backend in util::backends() {
        let server = start_with(backend, &["serve", root], 64);
        let clients: Vec<TcpStream> = (0..200).map(|_| util::connect(server.addr)).collect();
        let (mut admitted, mut refused) = (Vec::new(), 0);
        for mut c in clients {
            c.write_all(b"f.txt\n").unwrap();
            let mut got = vec![0; FILE.len()];
            let n = c.read(&mut got).unwrap();
            if got[..n].starts_with(b"error: server busy") {
                // Refused: the line, then the close.
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut rest = Vec::new();
                match c.read_to_end(&mut rest) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                    Err(e) => panic!("{backend}: a busy client was not closed: {e}"),
                }
                refused += 1;
            } else {
                c.read_exact(&mut got[n..]).unwrap();
                assert_eq!(got, FILE, "{backend}");
                admitted.push(c);
            }
        }
        eprintln!("{backend}: {} admitted, {refused} refused", admitted.len());
        assert!(!admitted.is_empty() && refused > 0, "{backend}");
        // The admitted ones keep being served.
        for c in &mut admitted {
            exchange(c, b"f.txt\n", FILE);
        }
        drop(admitted);
        let log = server.log();
        let said = log.matches("Too many open files").count();
        assert!(
            said <= 1,
            "{backend}: the shortage was logged {said} times:\n{log}"
        );
    }
}
