//! `ringport serve` stops on SIGTERM and SIGINT with status 0: at once when idle, and within
//! its shutdown timeout during 50 transfers, each of which either finishes or is cut (a true
//! prefix, then the close). Nothing hangs.

mod serve_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serve_util::files::{each_backend, within, Client, Tree, MIB};
use serve_util::Serve;

const TRANSFERS: usize = 50;
const SIZE: u64 = 24 * MIB;

#[test]
fn sigterm_and_sigint_when_idle() {
    let mut tree = Tree::new();
    let file = tree.add("f.txt", 1000);
    each_backend(|backend| {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let mut serve = Serve::start(tree.root(), backend, &[]);
            Client::connect(serve.addr).get(&file);
            serve.signal(signal);
            let status = serve.wait_within(Duration::from_secs(30));
            assert!(
                status.success(),
                "signal {signal}: {status}; {}",
                serve.stderr_text()
            );
        }
    });
}

/// A supervisor may stop the server as soon as it says it is listening: SIGTERM sent right
/// after the first line must still be a clean shutdown (status 0), not death by the signal.
#[test]
fn sigterm_right_after_the_banner() {
    let tree = Tree::new();
    each_backend(|backend| {
        for _ in 0..20 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_ringport"))
                .arg("serve")
                .arg(tree.root())
                .args(["--listen", "127.0.0.1:0", "--backend", &backend.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(line.starts_with("ringport serve listening on "), "{line:?}");
            let pid = libc::pid_t::try_from(child.id()).unwrap();
            // SAFETY: kill(2) takes plain integers; the PID is our child's, not yet reaped.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            let status = within(Duration::from_secs(30), "ringport exits", move || {
                child.wait()
            });
            assert_eq!(status.unwrap().code(), Some(0), "SIGTERM after the banner");
        }
    });
}

#[test]
fn sigterm_during_fifty_transfers() {
    let mut tree = Tree::new();
    tree.add("big.bin", SIZE);
    each_backend(|backend| {
        let mut serve = Serve::start(tree.root(), backend, &["--shutdown-timeout", "2"]);
        let addr = serve.addr;
        let (started_tx, started) = mpsc::channel();
        let (resume_tx, resume): (Vec<_>, Vec<_>) =
            (0..TRANSFERS).map(|_| mpsc::channel::<()>()).unzip();
        // Half the clients read through the shutdown; the others stall until the binary has
        // exited (their transfers can only end by the shutdown timeout's abort).
        let clients: Vec<_> = resume
            .into_iter()
            .enumerate()
            .map(|(i, resume)| {
                let started = started_tx.clone();
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    client.small_receive_buffer();
                    client.ask(b"big.bin");
                    client.expect_content("big.bin", 0, 64 * 1024);
                    started.send(()).unwrap();
                    if i % 2 == 1 {
                        resume.recv().unwrap();
                    }
                    64 * 1024 + client.verify_until_closed("big.bin", 64 * 1024, SIZE)
                })
            })
            .collect();
        for _ in 0..TRANSFERS {
            started
                .recv_timeout(Duration::from_secs(30))
                .expect("every transfer starts");
        }
        serve.signal(libc::SIGTERM);
        let status = serve.wait_within(Duration::from_secs(30));
        assert!(
            status.success(),
            "{status}; stderr: {}",
            serve.stderr_text()
        );
        for tx in resume_tx {
            let _ = tx.send(());
        }
        let got = within(
            Duration::from_secs(60),
            "clients reading to the close",
            move || {
                clients
                    .into_iter()
                    .map(|c| c.join().expect("a client"))
                    .collect::<Vec<_>>()
            },
        );
        let whole = got.iter().filter(|&&n| n == SIZE).count();
        eprintln!("{backend}: {whole} of {TRANSFERS} transfers finished, the others were cut");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still accepting"
        );
    });
}
