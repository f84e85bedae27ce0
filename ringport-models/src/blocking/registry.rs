//! The connections of a blocking model: bounded in number, and each reachable so that
//! stopping the server can shut it down (which returns the thread blocked on it).

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use crate::slots::{Slot, Slots};
use crate::ModelConfig;

/// Every open connection of the server, by id.
#[derive(Debug)]
pub(super) struct Registry {
    slots: Arc<Slots>,
    conns: Mutex<(u64, HashMap<u64, Arc<TcpStream>>)>,
}

/// A connection in the registry; it leaves the registry (and frees its slot) when dropped.
#[derive(Debug)]
pub(super) struct Registered {
    id: u64,
    stream: Arc<TcpStream>,
    registry: Arc<Registry>,
    _slot: Slot,
}

impl Registry {
    pub(super) fn new(cfg: &ModelConfig, threads: usize, files: bool) -> Arc<Self> {
        Arc::new(Registry {
            slots: Slots::new(cfg, threads, files),
            conns: Mutex::new((0, HashMap::new())),
        })
    }

    /// Registers `stream`; `Err(stream)` back when the connection limit is reached, `None`
    /// when the registry is unusable (a thread panicked holding it).
    pub(super) fn register(
        self: &Arc<Self>,
        stream: TcpStream,
    ) -> Option<Result<Registered, TcpStream>> {
        let Some(slot) = self.slots.take() else {
            return Some(Err(stream));
        };
        let stream = Arc::new(stream);
        let mut conns = self.conns.lock().ok()?;
        let id = conns.0;
        conns.0 += 1;
        conns.1.insert(id, stream.clone());
        Some(Ok(Registered {
            id,
            stream,
            registry: self.clone(),
            _slot: slot,
        }))
    }

    /// Shuts every registered connection down (both directions): blocked reads and writes
    /// return at once.
    pub(super) fn shut_all_down(&self) {
        if let Ok(conns) = self.conns.lock() {
            for stream in conns.1.values() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Registered {
    pub(super) fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.registry.conns.lock() {
            conns.1.remove(&self.id);
        }
    }
}
