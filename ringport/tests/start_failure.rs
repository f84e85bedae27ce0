//! A port whose setup fails part way (here: out of descriptors, at every possible step)
//! returns an error without hanging, stops the workers that did start, and leaks no
//! descriptor.
//!
//! The test lowers this process's descriptor limit, so it is the only test in its binary.
//! Linux only: Windows has no descriptor limit to lower.
#![cfg(unix)]

mod util;

use std::io;
use std::time::Duration;

use ringport::{Completion, Handler, Io};

struct Nothing;

impl Handler for Nothing {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_, ()>, _: Completion) {}
}

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: &libc::rlimit) {
    // SAFETY: setrlimit reads one valid rlimit; the soft limit stays within the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) }, 0);
}

/// The descriptor limit that leaves exactly `spare` descriptors to open: the number of the
/// `spare`-th free descriptor (descriptors get the lowest free numbers below the limit).
fn limit_leaving(spare: usize) -> u64 {
    let free = (0..)
        // SAFETY: F_GETFD only reads the descriptor table; EBADF means the number is free.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1)
        .nth(spare)
        .expect("a free descriptor number");
    free as u64
}

#[test]
fn setup_failing_at_any_step_neither_hangs_nor_leaks() {
    const WORKERS: usize = 3;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let saved = nofile();
        let mut baseline = util::fd_count();
        let mut leaks = Vec::new();
        let mut failed = 0;
        // From "no descriptor left" up to enough for the whole port.
        for extra in 0..=16 {
            let limit = libc::rlimit {
                rlim_cur: limit_leaving(extra),
                rlim_max: saved.rlim_max,
            };
            set_nofile(&limit);
            let started = util::within(
                Duration::from_secs(10),
                &format!("starting with {extra} descriptors to spare"),
                move || {
                    let port = util::loopback_port(backend, WORKERS)
                        .shutdown_timeout(Duration::from_secs(1))
                        .start(|_| Nothing)?;
                    port.shutdown();
                    port.join()
                },
            );
            set_nofile(&saved);
            match started {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("{extra} spare: {e}");
                    failed += 1;
                    assert_ne!(e.kind(), io::ErrorKind::Other, "a meaningful error: {e}");
                }
            }
            let now = util::fd_count();
            if now != baseline {
                leaks.push(format!(
                    "{} descriptors left open by a start with {extra} to spare: {:?}",
                    now - baseline,
                    util::fd_list()
                ));
                baseline = now;
            }
        }
        assert!(leaks.is_empty(), "{leaks:#?}");
        assert!(
            failed > WORKERS,
            "the low limits made setup fail ({failed} times)"
        );
    }
}
