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
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
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

/// What [`Steady`] sends each client: the verifiable stream of a seed, as one buffer or as a
/// file holding it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Buffer,
    File,
}

/// Bytes a slow reader takes: several times what it reads per send timeout.
const SLOW_TOTAL: usize = 10 << 20;

/// Sends [`SLOW_TOTAL`] bytes of the stream of `seed` in one `send` or one `send_file`, then
/// closes gracefully.
struct Steady {
    seed: u64,
    source: Source,
    file: Option<std::path::PathBuf>,
    events: Sender<String>,
}

impl Handler for Steady {
    type Conn = ();
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        match (self.source, &self.file) {
            (Source::Buffer, _) => io.send(util::payload(self.seed, SLOW_TOTAL)),
            (Source::File, Some(path)) => {
                let file = std::fs::File::open(path).expect("the served file opens");
                io.send_file(std::rc::Rc::new(file), 0, SLOW_TOTAL as u64);
            }
            (Source::File, None) => unreachable!("a file source names its file"),
        }
        io.close();
    }

    fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
        if let Completion::Failed { op, error } = completion {
            let _ = self.events.send(format!("{op:?} failed: {error}"));
            io.abort();
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, _: (), _: CompletionKey) {
        let _ = self.events.send("closed".into());
    }
}

/// A reader that takes 64 KiB every 20 ms (at most 3.2 MB/s: 10 MiB take over 3 s) is slow,
/// not stuck: with a send timeout of 2 s, its one large send or file arrives whole. The port
/// must see progress within a send or a file, not only at its end: an IOCP call that sent
/// the whole of it would complete after the timeout. (The kernel reports room in a socket
/// only once a good part of its buffer is free, so progress comes in steps of a few hundred
/// milliseconds here: the timeout is well above that, for a loaded machine.)
fn slow_reader_gets_everything(source: Source) {
    let seed = util::seed();
    let dir = util::files::TempDir::new("slow-reader");
    let file = (source == Source::File).then(|| {
        let path = dir.path().join("stream.bin");
        std::fs::write(&path, util::payload(seed, SLOW_TOTAL)).unwrap();
        path
    });
    util::each_backend(|backend| {
        let (tx, rx) = mpsc::channel();
        let file = file.clone();
        let port = util::loopback_port(backend, 1)
            .send_timeout(Some(TIMEOUT * 4))
            .start(move |_| Steady {
                seed,
                source,
                file: file.clone(),
                events: tx.clone(),
            })
            .expect("the port starts");
        let mut client = util::connect(port.local_addr().unwrap());
        util::small_buffers(&client);
        let start = Instant::now();
        let mut got = Vec::with_capacity(SLOW_TOTAL);
        let mut buf = vec![0; 64 << 10];
        loop {
            std::thread::sleep(Duration::from_millis(20));
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("{backend}: after {} bytes: {e}", got.len()),
            }
        }
        eprintln!("{backend}: {} bytes in {:?}", got.len(), start.elapsed());
        util::assert_bytes(
            &got,
            &util::payload(seed, SLOW_TOTAL),
            "what the slow reader got",
        );
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "closed");
        util::shutdown_and_join(port);
    });
}

#[test]
fn a_slow_reader_of_one_large_send_is_not_cut() {
    slow_reader_gets_everything(Source::Buffer);
}

#[test]
fn a_slow_reader_of_a_file_is_not_cut() {
    slow_reader_gets_everything(Source::File);
}
