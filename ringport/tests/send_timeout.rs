//! The port's send timeout: a send that makes no progress for that long resets its
//! connection — while it is open (the handler hears `Failed` with `TimedOut`) and while it
//! drains after a graceful `close` (which otherwise never ends towards a peer that does not
//! read). Sends that do progress, however slowly, are left alone.

mod util;

use std::io::{ErrorKind, Read};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use ringport::{Completion, CompletionKey, Handler, Io, OpKind, WorkerCtx};

const TIMEOUT: Duration = Duration::from_millis(500);

/// Sends `size` bytes to every client; with `close`, closes gracefully right after.
struct Flood {
    size: usize,
    close: bool,
    events: Sender<String>,
}

impl Handler for Flood {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.send(vec![b'x'; self.size]);
        if self.close {
            io.close();
        }
    }

    fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
        if let Completion::Failed { op, error } = completion {
            assert_eq!(op, OpKind::Send);
            let _ = self.events.send(format!("failed: {:?}", error.kind()));
            io.abort();
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, _: (), _: CompletionKey) {
        let _ = self.events.send("closed".into());
    }
}

fn reset_after_no_progress(close: bool) {
    util::each_backend(|backend| {
        let (tx, rx) = mpsc::channel();
        let port = util::loopback_port(backend, 1)
            .send_timeout(Some(TIMEOUT))
            .start(move |_| Flood {
                size: 32 << 20,
                close,
                events: tx.clone(),
            })
            .expect("the port starts");
        let client = util::connect(port.local_addr().unwrap());
        util::small_buffers(&client);
        let start = Instant::now();
        if !close {
            let failed = rx.recv_timeout(Duration::from_secs(10)).expect("a failure");
            assert_eq!(failed, "failed: TimedOut");
        }
        let closed = rx.recv_timeout(Duration::from_secs(10)).expect("closed");
        assert_eq!(closed, "closed");
        let after = start.elapsed();
        eprintln!("{backend}: closed {after:?} after connecting");
        assert!(after >= TIMEOUT, "closed before the timeout: {after:?}");
        // The peer sees a reset: the data was cut. (Wine 8 closes a socket with a zero linger
        // by a FIN, where Windows sends a reset.)
        let end = loop {
            match (&client).read(&mut [0; 65536]) {
                Ok(0) => break "EOF",
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break "reset",
                Err(e) => panic!("{e}"),
            }
        };
        if util::wine_differs("a zero-linger close sends a FIN, not a reset") {
            assert_eq!(end, "EOF");
        } else {
            assert_eq!(end, "reset");
        }
        util::shutdown_and_join(port);
    });
}

#[test]
fn an_open_connection_that_makes_no_progress_is_reset() {
    reset_after_no_progress(false);
}

#[test]
fn a_graceful_close_that_never_drains_is_reset() {
    reset_after_no_progress(true);
}

/// A reader that takes 64 KiB every 20 ms is slow, not stuck: its 4 MiB arrive whole. (The
/// kernel reports room in a socket only once a good part of its buffer is free, so progress
/// comes in steps of a few hundred milliseconds here: the timeout is set well above that, for
/// a loaded machine.)
#[test]
fn a_slow_reader_is_not_cut() {
    util::each_backend(|backend| {
        let (tx, rx) = mpsc::channel();
        let port = util::loopback_port(backend, 1)
            .send_timeout(Some(TIMEOUT * 6))
            .start(move |_| Flood {
                size: 4 << 20,
                close: true,
                events: tx.clone(),
            })
            .expect("the port starts");
        let mut client = util::connect(port.local_addr().unwrap());
        util::small_buffers(&client);
        let mut got = 0usize;
        let mut buf = vec![0; 64 << 10];
        loop {
            std::thread::sleep(Duration::from_millis(20));
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => panic!("after {got} bytes: {e}"),
            }
        }
        assert_eq!(got, 4 << 20, "{backend}: the whole flood came");
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "closed");
        util::shutdown_and_join(port);
    });
}
