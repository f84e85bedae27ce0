//! The container case, for real: the `ringport` binary runs under a seccomp filter that makes
//! `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail with `EPERM` (what Docker's
//! and many sandboxes' default profiles do). `--backend auto` must fall back to epoll with one
//! log line saying why and serve correctly; `--backend uring` must fail at once, clearly.
//!
//! x86_64 only (the filter names x86_64 syscall numbers); elsewhere this file is empty.
// Linux only: a seccomp filter that blocks io_uring, and the epoll fallback.
#![cfg(target_os = "linux")]
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use util::files::TempDir;
use util::ChildServer;

/// `AUDIT_ARCH_X86_64`: `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `io_uring_setup`, `io_uring_enter`, `io_uring_register` on x86_64.
const IO_URING_SYSCALLS: [u32; 3] = [425, 426, 427];
/// Offsets in `struct seccomp_data` of the syscall number and the audit architecture.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// How long any step may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(20);

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_eq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// Classic BPF: on x86_64, the io_uring syscalls return `EPERM`; everything else is allowed.
fn io_uring_filter() -> Vec<libc::sock_filter> {
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let n = IO_URING_SYSCALLS.len() as u8;
    let mut f = vec![
        stmt(load, ARCH_OFFSET),
        jump_eq(AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(load, NR_OFFSET),
    ];
    for (i, &nr) in IO_URING_SYSCALLS.iter().enumerate() {
        // On a match, jump over the remaining tests and the ALLOW to the ERRNO return.
        f.push(jump_eq(nr, n - i as u8, 0));
    }
    f.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    f.push(stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
    f
}

/// The `ringport` binary with `args`, to be started under the filter.
fn ringport(args: &[&str]) -> Command {
    let mut cmd = util::ringport(args);
    let filter = io_uring_filter();
    // Runs in the child between fork and exec: two prctl calls on data prepared before the
    // fork; no allocation, no locks.
    let install = move || -> io::Result<()> {
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mode = libc::SECCOMP_MODE_FILTER as libc::c_ulong;
        // SAFETY: `prog` points to `filter`, alive for the call; the kernel copies it.
        let rc = unsafe { libc::prctl(libc::PR_SET_SECCOMP, mode, &prog as *const _, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: `install` is async-signal-safe (see above), as pre_exec requires.
    unsafe { cmd.pre_exec(install) };
    cmd
}

/// Explains why this machine cannot run the test (no seccomp).
fn skipping(e: io::Error) {
    let _ = writeln!(
        io::stderr(),
        "note: skipping: cannot install a seccomp filter: {e}"
    );
}

/// Starts the server `name` of `cmd`, or explains why this machine cannot run the test and
/// returns None.
fn start(mut cmd: Command, name: &str) -> Option<ChildServer> {
    ChildServer::try_start(&mut cmd, name)
        .map_err(skipping)
        .ok()
}

/// Runs `cmd` to its end (within [`LIMIT`]): status, stdout, stderr.
fn run(mut cmd: Command) -> Option<(ExitStatus, String, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(skipping)
        .ok()?;
    let status = util::wait_child(&mut child, LIMIT);
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    Some((status, out, err))
}

/// Asks `server` to shut down (SIGTERM) and checks that it exits 0; returns its stderr.
fn terminate(mut server: ChildServer) -> String {
    server.stop_cleanly(libc::SIGTERM, LIMIT);
    server.log()
}

/// Checks the one log line that explains the fallback.
fn assert_fallback_logged(stderr: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("using epoll"))
        .collect();
    assert_eq!(lines.len(), 1, "one fallback line; stderr:\n{stderr}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(lines[0].contains("io_uring"), "{}", lines[0]);
    assert!(lines[0].contains("Operation not permitted"), "{}", lines[0]);
    eprintln!("fallback logged: {}", lines[0]);
}

/// Sends `data` on a new connection to `addr` while reading the echo; returns what came back.
fn echo_round(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let stream = util::connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let owned = data.to_vec();
    let w = std::thread::spawn(move || {
        writer.write_all(&owned).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    (&stream).read_to_end(&mut got).unwrap();
    w.join().unwrap();
    got
}

#[test]
fn auto_falls_back_to_epoll_and_echoes() {
    let args = [
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "auto",
        "--threads",
        "2",
    ];
    let Some(server) = start(ringport(&args), "ringport echo") else {
        return;
    };
    let line = &server.banner;
    assert!(line.contains("epoll backend"), "start line: {line:?}");
    let seed = util::seed();
    for size in [1, 1000, 3 << 20] {
        let data = util::payload(seed ^ size as u64, size);
        let got = echo_round(server.addr, &data);
        assert!(
            got == data,
            "echo of {size} bytes came back as {} bytes",
            got.len()
        );
    }
    let stderr = terminate(server);
    assert_fallback_logged(&stderr);
}

#[test]
fn uring_requested_fails_clearly() {
    let start = Instant::now();
    let cmd = ringport(&["echo", "--listen", "127.0.0.1:0", "--backend", "uring"]);
    let Some((status, _, stderr)) = run(cmd) else {
        return;
    };
    assert!(!status.success(), "must fail; stderr:\n{stderr}");
    assert!(start.elapsed() < Duration::from_secs(10), "fails quickly");
    assert!(stderr.contains("io_uring"), "{stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

#[test]
fn info_reports_the_fallback() {
    let Some((status, stdout, stderr)) = run(ringport(&["info"])) else {
        return;
    };
    assert!(status.success(), "stderr:\n{stderr}");
    assert!(stdout.contains("backend (auto): epoll"), "{stdout}");
    assert!(
        stdout.contains("io_uring setup: Operation not permitted"),
        "{stdout}"
    );
}

#[test]
fn auto_serves_files_on_epoll() {
    let dir = TempDir::new("seccomp");
    let data = util::payload(util::seed(), 300_000);
    std::fs::write(dir.path().join("file.bin"), &data).unwrap();
    let root = dir.path().to_str().unwrap();
    let cmd = ringport(&[
        "serve",
        root,
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "auto",
    ]);
    let Some(server) = start(cmd, "ringport serve") else {
        return;
    };
    let line = &server.banner;
    assert!(line.contains("epoll backend"), "start line: {line:?}");
    let mut stream = util::connect(server.addr);
    stream.write_all(b"file.bin\n").unwrap();
    let mut got = vec![0; data.len()];
    stream.read_exact(&mut got).unwrap();
    assert!(got == data, "the file came back changed");
    drop(stream);
    let stderr = terminate(server);
    assert_fallback_logged(&stderr);
}
