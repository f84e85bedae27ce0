//! Connection timers ([`crate::Io::set_timeout`]) kept by the worker: a heap of deadlines and
//! one kernel timer for the nearest, instead of a kernel timer per connection.
//!
//! Why: io_uring finds a timeout to cancel by walking the ring's list of timeouts, so with a
//! timer per connection every re-arm cost time in proportion to the connections (measured by
//! `ringport compare`: most of a file server's CPU at 10,000 connections went to
//! `io_timeout_cancel`). Here arming and clearing are a heap push and a field write; the one
//! kernel timer moves only when a deadline comes before the one it waits for, and when it fires
//! for a deadline that was cleared meanwhile, it is armed again for the next.
//!
//! Clearing is lazy: a heap entry whose sequence number is not its connection's any more is
//! stale and skipped. Stale entries are bounded: past twice the live ones (and a floor), the
//! heap is rebuilt from the connections' timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::op::{Core, OpId, Owner};
use crate::key::CompletionKey;

/// Stale entries tolerated before a rebuild, whatever the number of live ones.
const STALE_FLOOR: usize = 1024;

/// An armed connection timer, as its connection records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Armed {
    pub(crate) deadline: Instant,
    pub(crate) seq: u64,
}

/// The worker's connection timers.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u64, CompletionKey)>>,
    next_seq: u64,
    /// Timers armed and not yet cleared or fired.
    live: usize,
    /// Entries in the heap that no connection refers to any more.
    stale: usize,
    /// The kernel timer, and the deadline it waits for.
    kernel: Option<(OpId, Instant)>,
}

impl Deadlines {
    /// Whether the kernel timer is operation `id` (then it is not any more).
    pub(crate) fn take_kernel(&mut self, id: OpId) -> bool {
        let current = self.kernel.is_some_and(|(k, _)| k == id);
        if current {
            self.kernel = None;
        }
        current
    }

    /// The kernel timer, to cancel when the worker exits.
    pub(crate) fn kernel(&self) -> Option<OpId> {
        self.kernel.map(|(id, _)| id)
    }

    /// Takes the entries due at `now`, earliest first; stale ones are counted off, not given.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        live: impl Fn(CompletionKey, Armed) -> bool,
        out: &mut Vec<CompletionKey>,
    ) {
        while let Some(&Reverse((deadline, seq, key))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if live(key, Armed { deadline, seq }) {
                self.live -= 1;
                out.push(key);
            } else {
                self.stale = self.stale.saturating_sub(1);
            }
        }
    }
}

impl Core {
    /// Arms a timer for connection `key`, `after` from now; returns what the connection keeps.
    pub(crate) fn arm_deadline(&mut self, key: CompletionKey, after: Duration) -> Armed {
        let now = Instant::now();
        let far = now + Duration::from_secs(1 << 40);
        let deadline = now.checked_add(after).unwrap_or(far).min(far);
        let d = &mut self.deadlines;
        d.next_seq += 1;
        let armed = Armed {
            deadline,
            seq: d.next_seq,
        };
        d.heap.push(Reverse((deadline, armed.seq, key)));
        d.live += 1;
        self.arm_kernel_deadline();
        armed
    }

    /// A connection's timer was cleared or replaced: its entry is stale. Returns whether the
    /// heap should be rebuilt from the live timers.
    pub(crate) fn forget_deadline(&mut self) -> bool {
        let d = &mut self.deadlines;
        d.live -= 1;
        d.stale += 1;
        d.stale > STALE_FLOOR.max(2 * d.live)
    }

    /// Rebuilds the heap from the live timers.
    pub(crate) fn rebuild_deadlines(&mut self, live: impl Iterator<Item = (CompletionKey, Armed)>) {
        let d = &mut self.deadlines;
        d.heap = live
            .map(|(key, a)| Reverse((a.deadline, a.seq, key)))
            .collect();
        d.live = d.heap.len();
        d.stale = 0;
    }

    /// Makes the kernel timer wait for the nearest deadline: arms it, or moves it earlier. (A
    /// nearest deadline that moved later lets it fire early; it is armed again then.)
    pub(crate) fn arm_kernel_deadline(&mut self) {
        let Some(&Reverse((nearest, _, _))) = self.deadlines.heap.peek() else {
            return;
        };
        if self.deadlines.kernel.is_some_and(|(_, at)| at <= nearest) {
            return;
        }
        let after = nearest.saturating_duration_since(Instant::now());
        let id = self.timer(Owner::Deadlines, after);
        if let Some((old, _)) = self.deadlines.kernel.replace((id, nearest)) {
            self.cancel_detached(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_are_skipped_and_counted_off() {
        let mut d = Deadlines::default();
        let key = CompletionKey::new(0, 1, 1);
        let t0 = Instant::now();
        for seq in 1..=3 {
            d.heap.push(Reverse((t0, seq, key)));
        }
        d.live = 1;
        d.stale = 2;
        let mut out = Vec::new();
        d.due(t0, |_, a| a.seq == 3, &mut out);
        assert_eq!(out, [key]);
        assert_eq!((d.live, d.stale), (0, 0));
    }
}
