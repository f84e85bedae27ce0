//! The backend matrix: every behaviour test runs once on each backend that can start here.

use std::io::{self, Write as _};
use std::sync::OnceLock;
use std::time::Duration;

use ringport::{Backend, Completion, Handler, Io, Port};

/// A handler that aborts every connection: enough to see whether a port starts.
struct Probe;

impl Handler for Probe {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_, ()>, _: Completion) {}
}

/// The backends to test on: io_uring and epoll where a port can start here (IOCP on
/// Windows), or only the one
/// named by `RINGPORT_BACKEND` (which then must start). Skipped backends are reported once per
/// test binary on stderr (not captured by the test harness, so always seen).
pub fn backends() -> Vec<Backend> {
    static BACKENDS: OnceLock<Vec<Backend>> = OnceLock::new();
    BACKENDS.get_or_init(probe_backends).clone()
}

/// Runs `test` once per backend of [`backends`], naming the backend on stderr first.
pub fn each_backend(mut test: impl FnMut(Backend)) {
    for backend in backends() {
        eprintln!("--- backend {backend}");
        test(backend);
    }
}

fn probe_backends() -> Vec<Backend> {
    let forced = match std::env::var(Backend::ENV) {
        Ok(name) if !name.is_empty() => match name.parse::<Backend>() {
            Ok(Backend::Auto) => None,
            Ok(backend) => Some(backend),
            Err(e) => panic!("{}: {e}", Backend::ENV),
        },
        _ => None,
    };
    let candidates = match forced {
        Some(backend) => vec![backend],
        None if cfg!(windows) => vec![Backend::Iocp],
        None => vec![Backend::Uring, Backend::Epoll],
    };
    let mut usable = Vec::new();
    for backend in candidates {
        // Nothing to drain at shutdown: a short timeout keeps the probe quick whatever the
        // shutdown path does.
        let builder = Port::builder()
            .workers(1)
            .backend(backend)
            .shutdown_timeout(Duration::from_millis(50));
        match builder.start(|_| Probe) {
            Ok(port) => {
                port.shutdown();
                port.join().expect("the probe port joins");
                usable.push(backend);
            }
            Err(e) if forced.is_some() => {
                panic!(
                    "{}={backend} but that backend cannot start: {e}",
                    Backend::ENV
                )
            }
            Err(e) => {
                let _ = writeln!(io::stderr(), "note: skipping backend {backend}: {e}");
            }
        }
    }
    if usable.is_empty() {
        let _ = writeln!(
            io::stderr(),
            "note: no backend can start here: nothing tested"
        );
    }
    usable
}
