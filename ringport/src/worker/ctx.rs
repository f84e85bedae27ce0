//! [`WorkerCtx`]: what a handler can do with its worker outside any one connection.

use std::io;
use std::net::SocketAddr;

use slab::Slab;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::op::{Core, OpData, Owner};
use super::Slot;
use crate::io::ConnIo;
use crate::key::CompletionKey;
use crate::sys::Sub;

/// One worker, as its handler sees it when started or posted to.
#[derive(Debug)]
pub struct WorkerCtx<'a, C> {
    pub(crate) core: &'a mut Core,
    pub(crate) conns: &'a mut Slab<Slot<C>>,
    pub(crate) generation: &'a mut u32,
}

impl<C> WorkerCtx<'_, C> {
    /// This worker's index in the port.
    pub fn worker(&self) -> usize {
        self.core.worker
    }

    /// Number of connections this worker holds.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Opens a connection to `addr`, associated with this worker under a new completion key
    /// with state `conn`. [`crate::Completion::Connected`] (or `Failed`) tells how it went.
    ///
    /// # Errors
    /// When no socket can be created (for example, out of descriptors).
    pub fn connect(&mut self, addr: SocketAddr, conn: C) -> io::Result<CompletionKey> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        socket.set_tcp_nodelay(true)?;
        let addr = Box::new(SockAddr::from(addr));
        let fd = std::os::fd::IntoRawFd::into_raw_fd(socket);
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        *self.generation = self.generation.wrapping_add(1);
        let key = CompletionKey::new(self.core.worker, slot, *self.generation);
        let mut io = ConnIo::new(fd, key);
        let sub = Sub::Connect {
            fd,
            addr: addr.as_ptr().cast(),
            len: addr.len(),
        };
        io.connect_op = Some(self.core.start(
            Owner::Conn(slot),
            OpData::Connect { _addr: addr },
            sub,
        ));
        io.inflight = 1;
        entry.insert(Slot { io, state: conn });
        Ok(key)
    }
}
