//! Typed messages between workers and from outside (IOCP's custom completion packets): a
//! handler posts from its callbacks to any worker, the factory's handle works from the first
//! callback on (nothing posted at start is lost), each worker gets what was posted to it in the
//! order its poster sent it, and a full queue refuses a post and hands the message back.

mod util;

use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use ringport::{Completion, Full, Handler, Io, PortHandle, WorkerCtx};

const WORKERS: usize = 3;
const EACH: u32 = 200;

#[derive(Debug, Clone)]
enum Msg {
    /// Number `n` from worker `from`.
    Hello { from: usize, n: u32 },
    /// Sleep this long (to fill the queue behind it).
    Stall(Duration),
}

struct Chatter {
    worker: usize,
    workers: usize,
    handle: PortHandle<Msg>,
    got: Sender<(usize, usize, u32)>,
}

impl Handler for Chatter {
    type Conn = ();
    type Msg = Msg;

    fn accepted(&mut self, io: &mut Io<'_, ()>) {
        io.abort();
    }

    fn completion(&mut self, _: &mut (), _: &mut Io<'_, ()>, _: Completion) {}

    /// Posts at once, from the first callback, to every other worker: some have not started
    /// yet; their queues keep the messages.
    fn started(&mut self, _: &mut WorkerCtx<'_, ()>) {
        for n in 0..EACH {
            for to in (0..self.workers).filter(|&w| w != self.worker) {
                let hello = Msg::Hello {
                    from: self.worker,
                    n,
                };
                self.handle.post(to, hello).expect("room in the queue");
            }
        }
    }

    fn message(&mut self, ctx: &mut WorkerCtx<'_, ()>, msg: Msg) {
        match msg {
            Msg::Hello { from, n } => {
                let _ = self.got.send((ctx.worker(), from, n));
            }
            Msg::Stall(d) => std::thread::sleep(d),
        }
    }
}

#[test]
fn workers_post_to_each_other_from_the_start_in_order() {
    util::each_backend(|backend| {
        let (tx, rx) = mpsc::channel();
        let port = util::loopback_port(backend, WORKERS)
            .start(move |start| {
                assert_eq!(start.workers(), WORKERS);
                Chatter {
                    worker: start.worker(),
                    workers: start.workers(),
                    handle: start.handle().clone(),
                    got: tx.clone(),
                }
            })
            .expect("the port starts");
        let mut next = vec![vec![0u32; WORKERS]; WORKERS];
        for _ in 0..WORKERS * (WORKERS - 1) * EACH as usize {
            let (at, from, n) = rx.recv_timeout(Duration::from_secs(10)).expect("a message");
            assert_ne!(at, from);
            assert_eq!(
                n, next[at][from],
                "worker {at} got {from}'s messages in order"
            );
            next[at][from] += 1;
        }
        util::shutdown_and_join(port);
        assert!(rx.try_recv().is_err(), "each message once");
    });
}

#[test]
fn a_full_queue_hands_the_message_back() {
    util::each_backend(|backend| {
        let (tx, _rx) = mpsc::channel();
        let port = util::loopback_port(backend, 1)
            .message_queue(4)
            .start(move |start| Chatter {
                worker: start.worker(),
                workers: 1,
                handle: start.handle().clone(),
                got: tx.clone(),
            })
            .expect("the port starts");
        // The worker sleeps on the first message while more are posted.
        port.post(0, Msg::Stall(Duration::from_millis(500)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut refused = None;
        for n in 0..10 {
            match port.post(0, Msg::Hello { from: 9, n }) {
                Ok(()) => assert!(n < 4, "the queue holds 4"),
                Err(Full(Msg::Hello { n, .. })) => {
                    refused = Some(n);
                    break;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, Some(4), "the fifth is refused and handed back");
        let err = port.handle().post_all(Msg::Hello { from: 9, n: 99 });
        assert_eq!(err.unwrap_err().workers, vec![0]);
        util::shutdown_and_join(port);
    });
}
