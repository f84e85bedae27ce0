//! Completion keys: which connection a completion belongs to.

use std::fmt;

/// Identifies one connection of one worker for its whole life (the per-handle completion key
/// of IOCP). Keys are never reused while a process runs: each connection a worker makes gets
/// the next of its 64-bit generations, which would take centuries to wrap at any connection rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompletionKey {
    worker: u16,
    slot: u32,
    generation: u64,
}

impl CompletionKey {
    pub(crate) fn new(worker: usize, slot: usize, generation: u64) -> Self {
        CompletionKey {
            worker: worker as u16,
            slot: u32::try_from(slot).expect("fewer than 2^32 connections per worker"),
            generation,
        }
    }

    /// The connection's slot in its worker's table.
    pub(crate) fn slot(&self) -> usize {
        self.slot as usize
    }

    /// The worker that owns the connection.
    pub fn worker(&self) -> usize {
        usize::from(self.worker)
    }
}

impl fmt::Display for CompletionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}#{}.{}", self.worker, self.slot, self.generation)
    }
}
