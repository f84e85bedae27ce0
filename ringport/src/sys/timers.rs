//! Timeouts kept by a driver itself (epoll, IOCP): deadlines ordered in a set; the nearest
//! one bounds the wait for events.
//!
//! No timerfd or waitable timer: the wait's millisecond timeout, rounded up so that a timer never fires
//! early, is precise enough for connection and shutdown timers.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Pending timeouts by deadline and by operation.
#[derive(Debug, Default)]
pub(super) struct Timers {
    by_deadline: BTreeSet<(Instant, u64)>,
    /// Deadline of each pending timeout; `None`: too far to represent, never fires.
    by_op: HashMap<u64, Option<Instant>>,
}

impl Timers {
    /// Arms a timeout for operation `user_data`, `after` from `now`.
    pub(super) fn insert(&mut self, user_data: u64, after: Duration, now: Instant) {
        let deadline = now.checked_add(after);
        if let Some(at) = deadline {
            self.by_deadline.insert((at, user_data));
        }
        self.by_op.insert(user_data, deadline);
    }

    /// Disarms the timeout of `user_data`; false if there is none.
    pub(super) fn remove(&mut self, user_data: u64) -> bool {
        match self.by_op.remove(&user_data) {
            Some(Some(at)) => self.by_deadline.remove(&(at, user_data)),
            Some(None) => true,
            None => false,
        }
    }

    /// The epoll timeout until the nearest deadline: -1 without one, else milliseconds
    /// rounded up.
    pub(super) fn timeout_ms(&self, now: Instant) -> i32 {
        match self.by_deadline.first() {
            None => -1,
            Some(&(at, _)) => {
                let nanos = at.saturating_duration_since(now).as_nanos();
                i32::try_from(nanos.div_ceil(1_000_000)).unwrap_or(i32::MAX)
            }
        }
    }

    /// Removes the timeouts due at `now`, oldest deadline first, appending their operations.
    pub(super) fn expire(&mut self, now: Instant, out: &mut Vec<u64>) {
        while let Some(&(at, user_data)) = self.by_deadline.first() {
            if at > now {
                break;
            }
            self.by_deadline.pop_first();
            self.by_op.remove(&user_data);
            out.push(user_data);
        }
    }

    /// Number of pending timeouts.
    pub(super) fn len(&self) -> usize {
        self.by_op.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_cancel_and_rounding() {
        let now = Instant::now();
        let mut t = Timers::default();
        assert_eq!(t.timeout_ms(now), -1);
        t.insert(1, Duration::from_nanos(2_000_001), now);
        t.insert(2, Duration::from_millis(1), now);
        t.insert(3, Duration::MAX, now);
        assert_eq!(t.timeout_ms(now), 1);
        assert!(t.remove(2));
        assert!(!t.remove(2));
        assert_eq!(t.timeout_ms(now), 3, "rounded up, never early");
        let mut out = Vec::new();
        t.expire(now + Duration::from_millis(1), &mut out);
        assert!(out.is_empty());
        t.expire(now + Duration::from_millis(3), &mut out);
        assert_eq!(out, [1]);
        assert_eq!(t.len(), 1, "the far timeout stays");
        assert!(t.remove(3));
        assert_eq!(t.len(), 0);
    }
}
