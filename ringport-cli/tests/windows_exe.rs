//! The Windows `ringport.exe`, run under Wine and driven from Linux with real bytes: the echo
//! server at 1 and 200 connections, the file server (files of 0 B to 64 MiB, pipelined and one
//! per connection, missing, escaping and Windows-hostile names: `..\x`, drive and device paths,
//! `CON`, alternate data streams), and a graceful stop with transfers in flight (each cut
//! transfer ends with a reset, never a clean EOF at a short length). Every byte is checked,
//! content and length.
//!
//! `RINGPORT_WINDOWS_EXE` names the executable (a relative path is taken from the workspace
//! root); without it every test prints why it is skipped and passes. `RINGPORT_EXE_RUNNER` is
//! the command put before it (split at spaces; default `wine`, empty for none). CI runs, after
//! `source .ci/wine/env`:
//!
//! ```sh
//! RINGPORT_WINDOWS_EXE=target/x86_64-pc-windows-gnu/debug/ringport.exe \
//!     cargo test -p ringport-cli --test windows_exe
//! ```
//!
//! The same checks run against the Linux binary with
//! `RINGPORT_EXE_RUNNER= RINGPORT_WINDOWS_EXE=target/debug/ringport`.
//!
//! The server is stopped with SIGINT to the process: Wine turns it into a `CTRL_C_EVENT` for
//! the program's console control handler (`/usr/bin/wine` execs the loader, so the child's
//! pid is the Windows process).
//!
//! Linux only: the clients (and the SIGINT that stands for Ctrl+C) run on the Linux side.
#![cfg(unix)]

mod util;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::Duration;

use util::files::{Client, Expected, Transfers, Tree, KIB, MIB};
use util::{assert_bytes, connect, payload, ChildServer};

/// How long the server may take to exit after SIGINT (its shutdown timeout is 2 s).
const EXIT_BOUND: Duration = Duration::from_secs(30);

/// The executable under test and the command that runs it.
struct Exe {
    runner: Vec<String>,
    path: PathBuf,
}

impl Exe {
    /// From `RINGPORT_WINDOWS_EXE` and `RINGPORT_EXE_RUNNER`; `None` (after printing why) when
    /// the first is not set.
    fn from_env(test: &str) -> Option<Exe> {
        let Some(path) = std::env::var_os("RINGPORT_WINDOWS_EXE").filter(|p| !p.is_empty()) else {
            eprintln!(
                "{test}: skipped: RINGPORT_WINDOWS_EXE is not set (.ci/run sets it to the \
                 Windows ringport.exe it built, run under Wine)"
            );
            return None;
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let path = root.join(path);
        assert!(
            path.is_file(),
            "RINGPORT_WINDOWS_EXE: no file {}",
            path.display()
        );
        let runner = match std::env::var("RINGPORT_EXE_RUNNER") {
            Ok(r) => r.split_whitespace().map(str::to_owned).collect(),
            Err(_) => vec!["wine".to_owned()],
        };
        if runner.first().is_some_and(|r| r.starts_with("wine")) {
            assert!(
                std::env::var_os("WINEPATH").is_some(),
                "WINEPATH is not set: run `source .ci/wine/env` first (without its ProcessPrng \
                 shim, no Rust executable starts under Wine 8)"
            );
        }
        eprintln!("{test}: running {runner:?} {}", path.display());
        Some(Exe { runner, path })
    }

    /// Whether the executable runs under Wine, which needs Windows paths.
    fn under_wine(&self) -> bool {
        self.runner.first().is_some_and(|r| r.starts_with("wine"))
    }

    /// The executable with `args`, under the runner.
    fn command(&self, args: &[OsString]) -> Command {
        let mut cmd = match self.runner.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(&self.path);
                cmd
            }
            None => Command::new(&self.path),
        };
        cmd.args(args)
            .env_remove("RINGPORT_BACKEND")
            .env_remove("RUST_LOG");
        cmd
    }

    /// A folder as the executable names it: under Wine, on drive Z: (the Unix root in a new
    /// prefix).
    fn dir_arg(&self, dir: &Path) -> OsString {
        if self.under_wine() {
            let unix = dir.to_str().expect("a UTF-8 temporary folder");
            format!("Z:{}", unix.replace('/', "\\")).into()
        } else {
            dir.into()
        }
    }

    /// `ringport echo` on a free loopback port, two workers.
    fn echo(&self) -> ChildServer {
        let args = ["echo", "--listen", "127.0.0.1:0", "--threads", "2"];
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        ChildServer::start(&mut self.command(&args), "ringport echo")
    }

    /// `ringport serve DIR` on a free loopback port, two workers, a shutdown timeout of 2 s.
    fn serve(&self, dir: &Path) -> ChildServer {
        let mut args = vec!["serve".into(), self.dir_arg(dir)];
        let flags = ["--listen", "127.0.0.1:0", "--threads", "2"];
        args.extend(flags.iter().map(OsString::from));
        args.extend(["--shutdown-timeout", "2"].iter().map(OsString::from));
        ChildServer::start(&mut self.command(&args), "ringport serve")
    }
}

/// SIGINT (Ctrl-C under Wine); the server must exit with status 0 within [`EXIT_BOUND`].
fn stop(server: &mut ChildServer) {
    server.stop_cleanly(libc::SIGINT, EXIT_BOUND);
}

// ---- echo ----

/// Connection `i`'s message: its own pseudo-random bytes, 4 to 12 KiB.
fn message(seed: u64, i: u64) -> Vec<u8> {
    let len = 4 * KIB + (i * 1237 + seed % 997) % (8 * KIB);
    payload(seed ^ (i + 1).wrapping_mul(0x9e37_79b9), len as usize)
}

/// Sends `msg` in four writes, half-closes, and reads to the end: the echo must be `msg`
/// exactly, then a clean EOF.
fn echo_exactly(mut stream: &TcpStream, msg: &[u8]) {
    for part in msg.chunks(msg.len().div_ceil(4)) {
        stream.write_all(part).expect("sending to the echo server");
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let mut echoed = Vec::with_capacity(msg.len());
    stream
        .read_to_end(&mut echoed)
        .expect("reading the echo to EOF");
    assert_bytes(&echoed, msg, "echo");
}

#[test]
fn echo_one_connection() {
    let Some(exe) = Exe::from_env("echo_one_connection") else {
        return;
    };
    let seed = util::seed();
    let mut server = exe.echo();
    let client = connect(server.addr);
    // A round trip first (the connection works both ways), then a message to EOF.
    util::round_trip(&client, &payload(seed, 3000));
    echo_exactly(&client, &message(seed, 0));
    stop(&mut server);
}

#[test]
fn echo_200_connections_at_once() {
    const CONNS: u64 = 200;
    let Some(exe) = Exe::from_env("echo_200_connections_at_once") else {
        return;
    };
    let seed = util::seed();
    let mut server = exe.echo();
    let clients: Vec<TcpStream> = (0..CONNS).map(|_| connect(server.addr)).collect();
    // All connected before any sends, and all sending at once.
    let start = Barrier::new(clients.len());
    std::thread::scope(|s| {
        for (i, client) in clients.iter().enumerate() {
            let start = &start;
            s.spawn(move || {
                start.wait();
                echo_exactly(client, &message(seed, i as u64));
            });
        }
    });
    stop(&mut server);
}

// ---- serve ----

/// The served folder: files of 0 B, 1 B, 4 KiB + 1, 1 MiB and 64 MiB of their own content,
/// `file.txt` (an alternate data stream of it must not be served), and a folder `a`.
fn served_tree() -> (Tree, Vec<Expected>) {
    let mut tree = Tree::new();
    let files = vec![
        tree.add("empty.bin", 0),
        tree.add("one.bin", 1),
        tree.add("page.bin", 4 * KIB + 1),
        tree.add("mib.bin", MIB),
        tree.add("big.bin", 64 * MIB),
    ];
    tree.add("file.txt", 100);
    std::fs::create_dir(tree.root().join("a")).unwrap();
    (tree, files)
}

/// Asks for every file at once on one connection (one write), then reads the replies back to
/// back, each by its known length; then for each again on a connection of its own, which
/// ends with the last name and must then be closed cleanly with nothing more sent.
fn fetch_all(addr: SocketAddr, files: &[Expected]) {
    let mut client = Client::connect(addr);
    let names: Vec<u8> = files
        .iter()
        .flat_map(|f| format!("{}\n", f.name).into_bytes())
        .collect();
    client.send(&names);
    for file in files {
        client.expect_file(file);
    }
    for file in files {
        let mut client = Client::connect(addr);
        client.get(file);
        client.finish_sending();
        client.expect_eof();
    }
}

#[test]
fn serve_files_pipelined_and_one_per_connection() {
    let Some(exe) = Exe::from_env("serve_files_pipelined_and_one_per_connection") else {
        return;
    };
    let (tree, files) = served_tree();
    let mut server = exe.serve(tree.root());
    fetch_all(server.addr, &files);
    stop(&mut server);
}

#[test]
fn serve_refuses_missing_and_escaping_names() {
    let Some(exe) = Exe::from_env("serve_refuses_missing_and_escaping_names") else {
        return;
    };
    let (tree, _) = served_tree();
    let good = tree.expected("page.bin");
    let mut server = exe.serve(tree.root());
    let mut client = Client::connect(server.addr);
    client.ask(b"nope.txt");
    client.expect_error("no such file", b"nope.txt");
    client.get(&good);
    // `a` exists, so `a/../../x` is refused for leaving the folder, not for a missing `a`.
    for name in ["../x", "/etc/passwd", "a/../../x"] {
        client.ask(name.as_bytes());
        client.expect_error("outside the served folder", name.as_bytes());
        client.get(&good);
    }
    stop(&mut server);
}

/// Names a Windows server must never answer with file bytes (on Linux most are legal names of
/// files that do not exist).
const HOSTILE_NAMES: &[&str] = &[
    "..\\x",
    "..\\..\\secret.txt",
    "C:\\Windows\\win.ini",
    "\\\\?\\C:\\x",
    "\\\\.\\NUL",
    "CON",
    "NUL",
    "COM1",
    "aux.txt",
    "file.txt:stream",
    "file.txt::$DATA",
];

#[test]
fn serve_refuses_windows_hostile_names() {
    let Some(exe) = Exe::from_env("serve_refuses_windows_hostile_names") else {
        return;
    };
    let (tree, _) = served_tree();
    let good = tree.expected("page.bin");
    let ads_target = tree.expected("file.txt");
    let mut server = exe.serve(tree.root());
    let mut client = Client::connect(server.addr);
    for name in HOSTILE_NAMES {
        client.ask(name.as_bytes());
        let line = client.read_line();
        assert!(
            line.starts_with(b"error: ") && line.ends_with(b"\r\n"),
            "{name:?}: want an error line, got {:?}",
            line.escape_ascii().to_string()
        );
        eprintln!("{name:?}: {}", String::from_utf8_lossy(&line).trim_end());
        // Nothing else came: the next reply is exactly the next file.
        client.get(&good);
    }
    // The file behind the stream names is there and served.
    client.get(&ads_target);
    // The refusals cost nothing: a pipelined batch of good names still works afterwards.
    let batch: Vec<u8> = [&good, &ads_target, &good]
        .iter()
        .flat_map(|f| format!("{}\n", f.name).into_bytes())
        .collect();
    client.send(&batch);
    for file in [&good, &ads_target, &good] {
        client.expect_file(file);
    }
    stop(&mut server);
}

// ---- shutdown ----

#[test]
fn sigint_with_transfers_in_flight_exits_zero() {
    const TRANSFERS: usize = 4;
    let Some(exe) = Exe::from_env("sigint_with_transfers_in_flight_exits_zero") else {
        return;
    };
    let (tree, _) = served_tree();
    let big = tree.expected("big.bin");
    let mut server = exe.serve(tree.root());
    let addr = server.addr;
    // Each reads 64 KiB slowly (a small receive buffer); half then stall until the server has
    // exited, so their transfers can only end by the shutdown timeout's reset.
    let transfers = Transfers::start(addr, &big, TRANSFERS);
    stop(&mut server);
    // Whole files, or a true prefix ended by a reset (checked inside `finish`).
    let whole = transfers.finish();
    eprintln!("{whole} of {TRANSFERS} transfers finished, the others were reset");
    assert!(
        whole < TRANSFERS,
        "the stalled transfers cannot have finished before the shutdown timeout"
    );
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}
