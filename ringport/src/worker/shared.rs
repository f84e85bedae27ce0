//! What other threads share with a worker: its queue of posted packets, its quit and abort
//! flags and the waker that wakes it (IOCP's `PostQueuedCompletionStatus`).
//!
//! The queue is bounded: a post to a full queue is refused and the message handed back
//! ([`crate::PostError`]), so a worker that is slow to drain makes its posters wait or drop,
//! never grows memory without bound.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::sys::{OwnedSocket, Raw, Waker};

/// A custom completion packet.
#[derive(Debug)]
pub(crate) enum Packet<M> {
    /// A message for the handler.
    Msg(M),
    /// A socket to associate with the worker (accepted or connected elsewhere).
    Socket(OwnedSocket),
}

/// The cross-thread side of one worker.
#[derive(Debug)]
pub(crate) struct Shared<M> {
    queue: Mutex<VecDeque<Packet<M>>>,
    capacity: usize,
    quit: AtomicBool,
    abort: AtomicBool,
    waker: Waker,
}

impl<M> Shared<M> {
    pub(crate) fn new(capacity: usize) -> io::Result<Self> {
        Ok(Shared {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            quit: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            waker: Waker::new()?,
        })
    }

    /// What the worker's `PollIn` operation watches.
    pub(crate) fn waker_raw(&self) -> Raw {
        self.waker.raw()
    }

    /// The waker, which the worker's driver is built with.
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Queues a packet and wakes the worker; a full queue hands the packet back.
    pub(crate) fn post(&self, packet: Packet<M>) -> Result<(), Packet<M>> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= self.capacity {
            return Err(packet);
        }
        let was_empty = queue.is_empty();
        queue.push_back(packet);
        drop(queue);
        // Only the first packet of a batch needs to wake the worker.
        if was_empty {
            self.wake();
        }
        Ok(())
    }

    /// Posts the quit packet.
    pub(crate) fn quit(&self) {
        self.quit.store(true, Ordering::Release);
        self.wake();
    }

    /// Posts the quit packet with the order to abort every connection at once.
    pub(crate) fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        self.quit();
    }

    fn wake(&self) {
        self.waker.wake();
    }

    /// Resets the wake-up (the worker is awake now).
    pub(crate) fn clear(&self) {
        self.waker.clear();
    }

    /// Takes what was posted so far (at most one queue's worth: later posts wait for the next
    /// turn, so that posters cannot keep the worker from its I/O).
    pub(crate) fn take(&self, out: &mut VecDeque<Packet<M>>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *queue, out);
    }

    pub(crate) fn quit_requested(&self) -> bool {
        self.quit.load(Ordering::Acquire)
    }

    pub(crate) fn abort_requested(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_hands_the_message_back() {
        let shared = Shared::new(2).unwrap();
        assert!(shared.post(Packet::Msg(1)).is_ok());
        assert!(shared.post(Packet::Msg(2)).is_ok());
        match shared.post(Packet::Msg(3)) {
            Err(Packet::Msg(3)) => {}
            other => panic!("{other:?}"),
        }
        let mut out = VecDeque::new();
        shared.take(&mut out);
        assert_eq!(out.len(), 2);
        assert!(shared.post(Packet::Msg(4)).is_ok(), "room again once taken");
    }
}
