//! Helpers of the tests that run the real `ringport` binary: the shared ones of
//! `ringport-testutil` (the backend matrix, bounded waits, clients, verifiable streams, child
//! servers, and in [`files`] the file server's client and served folders), and the command
//! lines of the binary's servers.
#![allow(dead_code)] // each test file uses a different part of this module

pub use ringport_testutil::*;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ringport::Backend;

/// How long a server may take to exit after a signal before the test calls it a hang.
pub const EXIT_BOUND: Duration = Duration::from_secs(10);

/// The `ringport` binary with `args`, its backend and log level not taken from the test's
/// environment.
pub fn ringport(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringport"));
    cmd.args(args)
        .env_remove(Backend::ENV)
        .env_remove("RUST_LOG");
    cmd
}

/// `ringport echo` on `backend` on a free loopback port, with two workers and a one-second
/// shutdown timeout.
pub fn echo(backend: Backend) -> ChildServer {
    let backend = backend.to_string();
    let args = ["echo", "--listen", "127.0.0.1:0", "--threads", "2"];
    let mut cmd = ringport(&args);
    cmd.args(["--shutdown-timeout", "1", "--backend", &backend]);
    ChildServer::start(&mut cmd, "ringport echo")
}

/// `ringport serve DIR --listen 127.0.0.1:0 --threads 2 --backend B EXTRA...`, once its signal
/// handlers are installed; checks what its listening line says.
pub fn serve(dir: &Path, backend: Backend, extra: &[&str]) -> ChildServer {
    let mut cmd = ringport(&["serve"]);
    cmd.arg(dir)
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args(["--backend", &backend.to_string()])
        .args(extra);
    let serve = ChildServer::start(&mut cmd, "ringport serve");
    // The handlers are installed before the banner (serve_signals tests that); waiting for
    // them keeps the other tests that signal the binary about its shutdown alone. (Windows has
    // no signal dispositions to read, and its tests send no signals.)
    #[cfg(unix)]
    wait_until(
        START_BOUND,
        "ringport serve catches SIGINT and SIGTERM",
        || serve.catches(libc::SIGINT) && serve.catches(libc::SIGTERM),
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

/// The name the binary prints for a backend (`BackendKind`'s display).
pub fn kind_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Uring => "io_uring",
        Backend::Epoll => "epoll",
        Backend::Iocp => "iocp",
        _ => "auto",
    }
}
