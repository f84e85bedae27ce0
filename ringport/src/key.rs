//! Completion keys: which connection a completion belongs to.

use std::fmt;

/// Identifies one connection of one worker for its whole life (the per-handle completion key
/// of IOCP). Keys are never reused while a process runs: a new connection in the same slot
/// gets a new generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompletionKey {
    worker: u16,
    slot: u32,
    generation: u32,
}

impl CompletionKey {
    pub(crate) fn new(worker: usize, slot: usize, generation: u32) -> Self {
        CompletionKey {
            worker: worker as u16,
            slot: slot as u32,
            generation,
        }
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
