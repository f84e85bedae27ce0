//! A server binary run as a child process: started, read for the address in its listening
//! line, signalled (Linux: signals and `/proc` are Linux facilities), and waited for with a bound; killed if a test fails before it exits, when
//! what it logged is printed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child server may take to print its listening line.
pub const START_BOUND: Duration = Duration::from_secs(20);

/// How long the rest of its stderr may take to arrive once the child has exited. Processes it
/// started may keep the pipe open (Wine's services do, when the child started them): then the
/// log is left incomplete rather than the test hanging.
const LOG_BOUND: Duration = Duration::from_secs(5);

/// A server binary running as a child process, listening on [`ChildServer::addr`].
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    /// The address of its listening line.
    pub addr: SocketAddr,
    /// Its listening line: the first line it printed.
    pub banner: String,
    log: Arc<Mutex<String>>,
    /// The thread reading its stderr into `log`, until it exits.
    logger: Option<JoinHandle<()>>,
    /// Gets a message when the logger has read stderr to its end.
    logged: mpsc::Receiver<()>,
}

impl ChildServer {
    /// Starts `cmd` (stdin empty, stdout and stderr read here) and reads the address from its
    /// first line, `NAME listening on ADDR…`, where a space, a comma or the end follows ADDR.
    ///
    /// # Panics
    /// If it cannot be started, or prints no such line within [`START_BOUND`].
    pub fn start(cmd: &mut Command, name: &str) -> ChildServer {
        ChildServer::try_start(cmd, name)
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()))
    }

    /// [`ChildServer::start`], except that a `cmd` that cannot be started is an error (for
    /// the tests that skip then).
    ///
    /// # Errors
    /// The error of spawning `cmd`.
    ///
    /// # Panics
    /// If it prints no listening line of `name` within [`START_BOUND`].
    pub fn try_start(cmd: &mut Command, name: &str) -> std::io::Result<ChildServer> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let (logged_tx, logged) = mpsc::channel();
        let logger = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
            let _ = logged_tx.send(());
        });
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
        // From here on, a failure kills the child (on drop) and prints its log.
        let mut server = ChildServer {
            child,
            addr: ([0, 0, 0, 0], 0).into(),
            banner: String::new(),
            log,
            logger: Some(logger),
            logged,
        };
        server.banner = match rx.recv_timeout(START_BOUND) {
            Ok(Some(Ok(line))) => line.trim_end().to_owned(),
            other => panic!("no listening line from {name} within {START_BOUND:?}: {other:?}"),
        };
        server.addr = listening_addr(&server.banner, name).unwrap_or_else(|| {
            panic!(
                "unexpected first line {:?}: want {name} listening on ADDR",
                server.banner
            )
        });
        Ok(server)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the child.
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) takes plain integers; the pid is our own child's, not yet reaped (it
        // is reaped only by `wait_exit` or drop, which take `self` mutably), so it cannot name
        // another process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the child to exit, at most `limit` (a hang guard); afterwards [`log`] holds
    /// all it logged (unless its stderr stays open 5 s longer: then what came so far).
    ///
    /// # Panics
    /// If it still runs after `limit`.
    ///
    /// [`log`]: ChildServer::log
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let status = wait_child(&mut self.child, limit);
        self.join_logger();
        status
    }

    /// Waits (at most [`LOG_BOUND`]) for the logger to read the rest of the child's stderr.
    fn join_logger(&mut self) {
        if let Some(logger) = self.logger.take() {
            if self.logged.recv_timeout(LOG_BOUND).is_ok() {
                let _ = logger.join();
            } else {
                eprintln!("the child's stderr was still open {LOG_BOUND:?} after it ended");
            }
        }
    }

    /// Sends `signal` and checks that the child exits with status 0 within `limit`.
    ///
    /// # Panics
    /// If it does not.
    #[cfg(unix)]
    #[track_caller]
    pub fn stop_cleanly(&mut self, signal: i32, limit: Duration) {
        self.signal(signal);
        let status = self.wait_exit(limit);
        assert!(
            status.success(),
            "exit status {status} after signal {signal}"
        );
    }

    /// What the child wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Number of open descriptors of the child.
    #[cfg(unix)]
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/PID/fd")
            .count()
    }

    /// The child's resident memory in bytes.
    #[cfg(unix)]
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Whether the child has a handler for `signal` (`SigCgt` in `/proc/PID/status`).
    #[cfg(unix)]
    pub fn catches(&self, signal: i32) -> bool {
        let mask = proc_status(self.pid(), "SigCgt:")
            .map(|hex| u64::from_str_radix(hex.trim(), 16).expect("a hex signal mask"))
            .expect("a SigCgt line");
        mask & (1 << (signal - 1)) != 0
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            self.join_logger();
            eprintln!("the child server logged:\n{}", self.log());
        }
    }
}

/// The address in a listening line `NAME listening on ADDR…`, where a space, a comma or the
/// end follows ADDR.
fn listening_addr(line: &str, name: &str) -> Option<SocketAddr> {
    line.strip_prefix(name)?
        .strip_prefix(" listening on ")?
        .split([' ', ','])
        .next()?
        .parse()
        .ok()
}

/// Waits for `child` to exit, at most `limit` (a hang guard).
///
/// # Panics
/// If it still runs after `limit`; it is killed first.
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} still ran after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS`).
#[cfg(unix)]
pub fn rss_of(pid: u32) -> u64 {
    let kib: u64 = proc_status(pid, "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// The value of field `key` in `/proc/PID/status`.
#[cfg(unix)]
fn proc_status(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::to_owned)
}
