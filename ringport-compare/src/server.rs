//! A model server in a child process of its own (`ringport model-server`), so that its CPU
//! time, context switches, peak memory and threads are its own in `/proc`.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringport_models::Model;

/// How long a model server may take to say it listens.
const READY: Duration = Duration::from_secs(20);
/// How long it may take to exit once its standard input is closed.
const EXIT: Duration = Duration::from_secs(10);
/// Bytes of its standard error kept, to explain a failure.
const STDERR_KEPT: u64 = 16 * 1024;

/// How the server is started: `EXE model-server --model M --service S …`.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The `ringport` binary.
    pub exe: &'a Path,
    /// The folder the file service serves.
    pub root: &'a Path,
    /// CPU to pin the server to.
    pub cpu: Option<usize>,
    /// Threads of the pool model.
    pub pool_threads: usize,
}

/// A running model server; ended (standard input closed, then killed if need be) on stop or
/// drop.
#[derive(Debug)]
pub struct ModelServer {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ModelServer {
    /// Starts `model` serving `service` (`echo` or `files`) and waits for its address.
    ///
    /// # Errors
    /// When it cannot be started or does not say it listens (its standard error is quoted).
    pub fn start(launch: &Launch<'_>, model: Model, service: &str) -> io::Result<Self> {
        let mut cmd = Command::new(launch.exe);
        cmd.arg("model-server")
            .args(["--model", model.name(), "--service", service])
            .arg("--root")
            .arg(launch.root)
            .args(["--pool-threads", &launch.pool_threads.to_string()]);
        if let Some(cpu) = launch.cpu {
            cmd.args(["--cpu", &cpu.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("starting {}: {e}", launch.exe.display()))
            })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.take(STDERR_KEPT).read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        let mut server = ModelServer {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = rx.recv_timeout(READY).unwrap_or_default();
        match line.trim().strip_prefix("listening on ").map(str::parse) {
            Some(Ok(addr)) => {
                server.addr = addr;
                Ok(server)
            }
            _ => {
                server.end();
                let stderr = err_rx.recv_timeout(EXIT).unwrap_or_default();
                let why = stderr
                    .lines()
                    .last()
                    .unwrap_or("no output")
                    .trim()
                    .to_owned();
                Err(io::Error::other(format!("{model} did not start: {why}")))
            }
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends it: closing its standard input tells it to exit; one that does not within a
    /// bound is killed.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::warn!("model server {} did not exit: killing it", self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.end();
        }
    }
}
