//! Shutdown during 50 transfers: the port joins within a bound, and every client either gets
//! its whole file or a true prefix of it and then the close. Nothing hangs.

mod files_util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use files_util::{each_backend, within, Client, Server, Tree, MIB};

const TRANSFERS: usize = 50;
const SIZE: u64 = 24 * MIB;

#[test]
fn shutdown_during_fifty_transfers() {
    let mut tree = Tree::new();
    tree.add("big.bin", SIZE);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let handle = server.handle();
        let addr = server.addr;
        let (started_tx, started) = mpsc::channel();
        let (resume_tx, resume) = (0..TRANSFERS)
            .map(|_| mpsc::channel::<()>())
            .unzip::<_, _, Vec<_>, Vec<_>>();
        // Half the clients keep reading through the shutdown; the others stall until the
        // server has exited (their transfers can only end by the shutdown timeout's abort).
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
                    let got = 64 * 1024 + client.verify_until_closed("big.bin", 64 * 1024, SIZE);
                    (i, got)
                })
            })
            .collect();
        for _ in 0..TRANSFERS {
            started
                .recv_timeout(Duration::from_secs(30))
                .expect("every transfer starts");
        }
        let start = Instant::now();
        handle.shutdown();
        server
            .join(Duration::from_secs(30))
            .expect("the server exits cleanly");
        eprintln!("{backend}: joined {:?} after the shutdown", start.elapsed());
        for tx in resume_tx {
            let _ = tx.send(());
        }
        let results = within(
            Duration::from_secs(60),
            "clients reading to the close",
            move || {
                clients
                    .into_iter()
                    .map(|c| c.join().expect("a client"))
                    .collect::<Vec<_>>()
            },
        );
        let whole = results.iter().filter(|(_, got)| *got == SIZE).count();
        eprintln!("{backend}: {whole} of {TRANSFERS} transfers finished, the others were cut");
        // New connections are refused: the port is gone.
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still accepting"
        );
    });
}
