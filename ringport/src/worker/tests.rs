//! How a worker ends when the kernel does not finish what it was asked to cancel.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::op::Owner;
use super::WorkerCtx;
use crate::{Backend, Completion, Handler, Io, Port};

/// Opens one outgoing connection at start, and gives it an operation that never completes.
struct Stuck {
    to: std::net::SocketAddr,
}

impl Handler for Stuck {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_, ()>, _: Completion) {}

    fn started(&mut self, ctx: &mut WorkerCtx<'_, ()>) {
        let key = ctx.connect(self.to, ()).expect("a socket");
        let slot = key.slot();
        ctx.w.ios[slot].inflight += 1;
        ctx.w.core.ops.insert_phantom(Owner::Conn(slot));
    }
}

/// Cancellations that never complete: the worker gives up after its grace period, leaks what
/// is in flight rather than free memory the kernel may still use, and `join` says so.
#[test]
fn giving_up_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap();
    for backend in [Backend::Uring, Backend::Epoll] {
        let port = match Port::builder()
            .workers(1)
            .backend(backend)
            .shutdown_timeout(Duration::from_millis(50))
            .cancel_grace(Duration::from_millis(100))
            .start(move |_| Stuck { to })
        {
            Ok(port) => port,
            Err(e) => {
                eprintln!("skipping {backend}: {e}");
                continue;
            }
        };
        let start = Instant::now();
        port.shutdown();
        let err = port.join().expect_err("a worker that gave up reports it");
        eprintln!("{backend}: {err} (after {:?})", start.elapsed());
        assert!(err.to_string().contains("leaked"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
