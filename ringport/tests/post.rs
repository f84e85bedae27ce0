//! Posting from threads outside the port (`PostQueuedCompletionStatus`): every value reaches
//! the worker it was posted to, once, on that worker's thread.

mod util;

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::ThreadId;

use ringport::{Backend, Completion, Handler, Io, Port, PortHandle, WorkerCtx};

const WORKERS: usize = 3;
/// Values posted with `post_all` have this bit set.
const ALL: u64 = 1 << 63;

#[derive(Debug)]
struct Arrival {
    /// The worker the handler was made for.
    made_for: usize,
    /// The worker `WorkerCtx` says it runs on.
    worker: usize,
    value: u64,
    /// Whether `message` ran on the thread `started` ran on.
    same_thread: bool,
}

struct Recorder {
    made_for: usize,
    thread: Option<ThreadId>,
    tx: Sender<Arrival>,
}

impl Handler for Recorder {
    type Conn = ();
    type Msg = u64;

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_, ()>, _: Completion) {}

    fn started(&mut self, worker: &mut WorkerCtx<'_, ()>) {
        assert_eq!(worker.worker(), self.made_for);
        self.thread = Some(std::thread::current().id());
    }

    fn message(&mut self, worker: &mut WorkerCtx<'_, ()>, value: u64) {
        let _ = self.tx.send(Arrival {
            made_for: self.made_for,
            worker: worker.worker(),
            value,
            same_thread: self.thread == Some(std::thread::current().id()),
        });
    }
}

fn start(backend: Backend) -> (Port<u64>, Receiver<Arrival>) {
    let (tx, rx) = mpsc::channel();
    let port = Port::builder()
        .workers(WORKERS)
        .backend(backend)
        .start(move |start| Recorder {
            made_for: start.worker(),
            thread: None,
            tx: tx.clone(),
        })
        .expect("the port starts");
    assert_eq!(port.workers(), WORKERS);
    (port, rx)
}

fn tag(worker: usize, i: u64) -> u64 {
    (worker as u64) << 32 | i
}

/// Receives `n` arrivals, checks where each ran, and counts them by (worker, value).
fn collect(rx: &Receiver<Arrival>, n: usize) -> HashMap<(usize, u64), usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let a = rx.recv_timeout(util::IO_TIMEOUT).expect("a posted value");
        assert_eq!(a.made_for, a.worker, "posted to the handler of its worker");
        assert!(a.same_thread, "posted runs on the worker's thread");
        if a.value & ALL == 0 {
            assert_eq!(a.value >> 32, a.worker as u64, "value {:#x}", a.value);
        }
        *seen.entry((a.worker, a.value)).or_default() += 1;
    }
    seen
}

#[test]
fn posts_reach_the_right_worker() {
    const EACH: u64 = 200;
    const BROADCASTS: u64 = 20;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let (port, rx) = start(backend);
        let (one, all) = (port.handle(), port.handle());
        // Two outside threads at once: one posts to each worker, one to all of them.
        let posters = [
            std::thread::spawn(move || {
                for i in 0..EACH {
                    for w in 0..WORKERS {
                        one.post(w, tag(w, i)).unwrap();
                    }
                }
            }),
            std::thread::spawn(move || {
                for j in 0..BROADCASTS {
                    all.post_all(ALL | j).unwrap();
                }
            }),
        ];
        for p in posters {
            p.join().unwrap();
        }
        // `Port::post` too.
        port.post(WORKERS - 1, tag(WORKERS - 1, EACH)).unwrap();

        let n = WORKERS * (EACH + BROADCASTS) as usize + 1;
        let seen = collect(&rx, n);
        for w in 0..WORKERS {
            for i in 0..EACH {
                assert_eq!(seen.get(&(w, tag(w, i))), Some(&1), "worker {w} value {i}");
            }
            for j in 0..BROADCASTS {
                assert_eq!(
                    seen.get(&(w, ALL | j)),
                    Some(&1),
                    "worker {w} broadcast {j}"
                );
            }
        }
        assert_eq!(seen.get(&(WORKERS - 1, tag(WORKERS - 1, EACH))), Some(&1));
        util::shutdown_and_join(port);
        assert!(rx.try_recv().is_err(), "nothing more");
    }
}

#[test]
fn posts_before_shutdown_are_delivered() {
    const BURST: u64 = 500;
    for backend in util::backends() {
        eprintln!("backend {backend}");
        let (port, rx) = start(backend);
        // Every worker is in its loop once it has handled a post.
        port.handle().post_all(ALL).unwrap();
        collect(&rx, WORKERS);

        let handle = port.handle();
        for i in 0..BURST {
            for w in 0..WORKERS {
                handle.post(w, tag(w, i)).unwrap();
            }
        }
        handle.shutdown();
        util::join(port);
        let seen = collect(&rx, WORKERS * BURST as usize);
        assert_eq!(seen.len(), WORKERS * BURST as usize, "each value once");
    }
}

#[test]
fn handles_cross_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<PortHandle<u64>>();
    send::<Port>();
}
