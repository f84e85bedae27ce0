//! Helpers of the tests of the real `ringport serve` binary: start it on a folder and a
//! backend, read the address it prints, signal it and wait for it with a bound.
//!
//! The clients, served folders and backend matrix are the file server's own test helpers.
#![allow(dead_code)] // each test file uses a different part of this module

#[path = "../../../ringport-servers/tests/files_util/mod.rs"]
pub mod files;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use files::{kind_name, Backend};

/// How long the binary may take to print its first line.
const START_BOUND: Duration = Duration::from_secs(20);

/// A running `ringport serve`; killed (by its PID) on drop if still running.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    /// The first line it printed.
    pub banner: String,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Serve {
    /// `ringport serve DIR --listen 127.0.0.1:0 --backend B --threads 2 EXTRA...`.
    pub fn start(dir: &Path, backend: Backend, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringport"))
            .arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .args(["--backend", &backend.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the ringport binary");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            loop {
                match err.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        // Read the first line, then keep draining stdout so the child never blocks on it.
        let (tx, rx) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let banner = match rx.recv_timeout(START_BOUND) {
            Ok(line) if !line.is_empty() => line.trim_end().to_owned(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ringport serve did not start ({other:?}); stderr: {}",
                    String::from_utf8_lossy(&stderr.lock().unwrap())
                );
            }
        };
        let addr = banner
            .strip_prefix("ringport serve listening on ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {banner:?}"));
        let serve = Serve {
            child,
            addr,
            banner,
            stderr,
        };
        // The handlers are installed before the banner (serve_signals tests that); waiting
        // for them keeps the other tests that signal the binary about its shutdown alone.
        files::eventually(
            START_BOUND,
            "ringport serve catches SIGINT and SIGTERM",
            || (serve.catches(libc::SIGINT) && serve.catches(libc::SIGTERM)).then_some(()),
        );
        let root = std::fs::canonicalize(dir).unwrap();
        let tail = format!(
            ", serving {} ({} backend, 2 workers)",
            root.display(),
            kind_name(backend)
        );
        assert!(
            serve.banner.ends_with(&tail),
            "{:?} should end with {tail:?}",
            serve.banner
        );
        serve
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the binary (by its PID).
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) takes plain integers; the PID is our own child's, not yet reaped
        // (it is reaped only by `wait_within` or drop, which take `self`).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the binary to exit, at most `limit` (polling, with a generous bound).
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for ringport") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ringport serve still running {limit:?} later; stderr: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the binary has a handler for `signal` (`SigCgt` in `/proc/PID/status`).
    pub fn catches(&self, signal: i32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading /proc/PID/status");
        let mask = status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).expect("a hex signal mask"))
            .expect("a SigCgt line");
        mask & (1 << (signal - 1)) != 0
    }

    /// What it wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Descriptors open in the binary.
    pub fn open_fds(&self) -> usize {
        files::open_fds_of(&self.pid().to_string())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
