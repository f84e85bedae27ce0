//! The bound on connections served at once, shared by a model's threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::ModelConfig;

/// Connections served at once, across all of a model's threads.
#[derive(Debug)]
pub(crate) struct Slots {
    open: AtomicUsize,
    max: usize,
}

/// One connection's place; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    /// The bound of `cfg`, lowered to what the descriptor limit can serve with `threads`
    /// threads of the server's own: a file connection may hold a socket and an open file (the
    /// rule of `ringport serve`), an echo connection its socket only.
    pub(crate) fn new(cfg: &ModelConfig, threads: usize, files: bool) -> Arc<Self> {
        let fds = ringport::fd_limit().unwrap_or(1024);
        let within = if files {
            ringport_servers::files::connections_within(fds, threads)
        } else {
            // The file server's reserve (standard streams, and per thread its poller, eventfd and
            // listener, with room to spare), one descriptor per connection.
            fds.saturating_sub(16 + 4 * threads as u64).max(1) as usize
        };
        let max = cfg.max_connections.min(within);
        if max < cfg.max_connections {
            tracing::info!(
                "serving at most {max} connections at once: the descriptor limit is {fds} \
                 and each connection may need {}",
                if files { "two" } else { "one" }
            );
        }
        Arc::new(Slots {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// A place for one more connection, or `None` when all are taken.
    pub(crate) fn take(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.load(Ordering::Relaxed);
        loop {
            if open >= self.max {
                return None;
            }
            match self.open.compare_exchange_weak(
                open,
                open + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Slot(self.clone())),
                Err(now) => open = now,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_given_back() {
        let mut cfg = ModelConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.max_connections = 2;
        let slots = Slots::new(&cfg, 1, true);
        let a = slots.take().unwrap();
        let _b = slots.take().unwrap();
        assert!(slots.take().is_none());
        drop(a);
        assert!(slots.take().is_some());
    }
}
