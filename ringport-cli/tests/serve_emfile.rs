//! Short of file descriptors: the servers keep serving the connections they have, do not spin
//! while they cannot accept, and accept again once descriptors are free.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's descriptor limit (soft and hard): a little above what it needs at rest.
const NOFILE: u64 = 48;
const FILE: &[u8] = b"the quick brown fox jumps over the lazy dog\n";

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ringport ARGS` with at most [`NOFILE`] descriptors; reads the address from its start line.
fn start(args: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringport"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let rl = libc::rlimit {
                rlim_cur: NOFILE,
                rlim_max: NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ringport");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(',').parse().ok());
    Server {
        child,
        addr: addr.unwrap_or_else(|| panic!("no address in {line:?}")),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Sends `request` and reads exactly `reply` back.
fn exchange(s: &mut TcpStream, request: &[u8], reply: &[u8]) {
    s.write_all(request).unwrap();
    let mut got = vec![0; reply.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, reply);
}

/// Asserts that the server burns well under a core for two seconds (a busy loop would burn one).
fn assert_idle(server: &Server, what: &str) {
    let ticks = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let (t0, c0) = (Instant::now(), ticks(server.child.id()));
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (ticks(server.child.id()) - c0) as f64 / hz;
    let wall = t0.elapsed().as_secs_f64();
    assert!(cpu < wall * 0.5, "{what}: {cpu:.2} s of CPU in {wall:.2} s");
}

fn backends() -> Vec<&'static str> {
    match std::env::var("RINGPORT_BACKEND").as_deref() {
        Ok("uring") => vec!["uring"],
        Ok("epoll") => vec!["epoll"],
        _ => vec!["uring", "epoll"],
    }
}

/// The echo server holds one descriptor per client: past the limit, accept fails with EMFILE.
#[test]
fn echo_out_of_descriptors_keeps_serving_and_recovers() {
    for backend in backends() {
        let server = start(&[
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--backend",
            backend,
        ]);
        // Far more clients than descriptors: the kernel completes their handshakes, the server
        // accepts until EMFILE, and the rest wait in the backlog.
        let mut clients: Vec<TcpStream> = (0..NOFILE * 2).map(|_| connect(server.addr)).collect();
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
    let dir = std::env::temp_dir().join(format!("ringport-emfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), FILE).unwrap();
    let root = dir.to_str().unwrap();
    for backend in backends() {
        let server = start(&[
            "serve",
            root,
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--backend",
            backend,
        ]);
        let mut clients: Vec<TcpStream> = (0..NOFILE * 2).map(|_| connect(server.addr)).collect();
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
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
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
        let mut c = connect(server.addr);
        exchange(&mut c, b"f.txt\n", FILE);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
