//! Backpressure on receives: after `stop_recv`, `recv` resumes, and not a byte is lost or
//! reordered, whether it resumes later or before the cancellation has completed.

mod util;

use std::io::Write;
use std::net::Shutdown;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use ringport::{Backend, Completion, Handler, Io};

/// When a paused connection receives again.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// On a 1 ms timer: the cancellation has completed by then.
    Later,
    /// In the same callback as `stop_recv`, before its cancellation completes.
    AtOnce,
}

/// Echoes every chunk, pausing receives after each one.
struct Pauser {
    resume: Resume,
    tx: Sender<usize>,
}

impl Handler for Pauser {
    /// Pauses so far.
    type Conn = usize;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, usize>) -> usize {
        io.recv();
        0
    }

    fn completion(&mut self, pauses: &mut usize, io: &mut Io<'_, usize>, completion: Completion) {
        match completion {
            Completion::Received(buf) => {
                io.send(buf);
                if io.is_receiving() {
                    *pauses += 1;
                    io.stop_recv();
                    assert!(!io.is_receiving());
                    match self.resume {
                        Resume::Later => io.set_timeout(Duration::from_millis(1)),
                        Resume::AtOnce => io.recv(),
                    }
                }
            }
            Completion::Timeout => io.recv(),
            Completion::Sent(_) => {}
            Completion::Eof => {
                let _ = self.tx.send(*pauses);
                io.close();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn pause_and_resume(backend: Backend, resume: Resume) {
    const LEN: usize = 2 << 20;
    let seed = util::seed();
    let (tx, rx) = mpsc::channel();
    let port = util::loopback_port(backend, 1)
        .start(move |_| Pauser {
            resume,
            tx: tx.clone(),
        })
        .expect("the port starts");
    let client = util::connect(port.local_addr().unwrap());
    let data = util::payload(seed, LEN);
    let echoed = std::thread::scope(|s| {
        s.spawn(|| {
            // Uneven writes, so that chunks arrive in many sizes.
            let mut rest = &data[..];
            let mut n = 1;
            while !rest.is_empty() {
                let take = n.min(rest.len());
                (&client).write_all(&rest[..take]).unwrap();
                rest = &rest[take..];
                n = n * 7 % 100_003 + 1;
            }
            client.shutdown(Shutdown::Write).unwrap();
        });
        util::read_to_end(&client, false)
    });
    util::assert_bytes(&echoed, &data, "echo through stop_recv/recv");
    let pauses = rx.recv_timeout(util::IO_TIMEOUT).unwrap();
    assert!(pauses > 1, "receiving paused {pauses} times");
    util::shutdown_and_join(port);
}

#[test]
fn resume_after_the_pause_completed() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        pause_and_resume(backend, Resume::Later);
    }
}

#[test]
fn resume_before_the_pause_completed() {
    for backend in util::backends() {
        eprintln!("backend {backend}");
        pause_and_resume(backend, Resume::AtOnce);
    }
}
