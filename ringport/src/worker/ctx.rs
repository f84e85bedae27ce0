//! [`WorkerCtx`]: what a handler can do with its worker outside any one connection.

use std::io;
use std::net::SocketAddr;

use slab::Slab;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::op::{Core, OpData};
use super::{associate, Slot};
use crate::key::CompletionKey;
use crate::sys::Sub;

/// One worker, as its handler sees it when started or posted to.
#[derive(Debug)]
pub struct WorkerCtx<'a, C> {
    pub(crate) core: &'a mut Core,
    pub(crate) conns: &'a mut Slab<Slot<C>>,
    pub(crate) generation: &'a mut u64,
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
        let key = associate(
            self.core,
            self.conns,
            self.generation,
            socket.into(),
            |io| {
                let sub = Sub::Connect {
                    fd: io.conn.fd,
                    addr: addr.as_ptr().cast(),
                    len: addr.len(),
                };
                io.conn.connect_op = Some(io.op(OpData::Connect { _addr: addr }, sub));
                conn
            },
        );
        Ok(key)
    }
}
