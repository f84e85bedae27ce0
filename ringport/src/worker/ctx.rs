//! What a handler can do with its worker beyond one connection: reach connections by key,
//! open or associate new ones, arm worker timers ([`WorkerIo`], from any callback), and reach
//! connection states too ([`WorkerCtx`], from the callbacks that are not a connection's).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use slab::Slab;
use socket2::{Domain, Protocol, SockAddr, Socket};

use super::op::{Core, OpData, OpId, Owner};
use crate::conn::ConnIo;
use crate::io::Io;
use crate::key::CompletionKey;
use crate::sys::{stream_socket, IoHandle, OwnedSocket, Sub};

/// A worker timer ([`WorkerIo::set_timer`]): [`crate::Handler::timer`] says which fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) u64);

/// The worker, as any handler callback reaches it: its connections by key, new connections
/// and file handles, and timers of its own. `C` is the handler's connection state.
///
/// Everything here runs on the worker's thread; to reach another worker, post to it
/// ([`crate::PortHandle::post`]).
#[derive(Debug)]
pub struct WorkerIo<'a, C> {
    pub(crate) core: &'a mut Core,
    pub(crate) ios: &'a mut Slab<ConnIo>,
    /// States of connections made during this callback: the worker installs them after it.
    pub(crate) fresh: &'a mut Vec<(usize, C)>,
}

impl<'a, C> WorkerIo<'a, C> {
    /// This worker's index in the port.
    pub fn worker(&self) -> usize {
        self.core.worker
    }

    /// Number of connections (and file handles) this worker holds.
    pub fn connections(&self) -> usize {
        self.ios.len()
    }

    /// The keys of this worker's connections (and file handles), closing ones included.
    pub fn keys(&self) -> impl Iterator<Item = CompletionKey> + '_ {
        self.ios.iter().map(|(_, c)| c.key)
    }

    /// A connection of this worker, by its key, to start operations on; `None` if it is gone
    /// (closed, its slot perhaps reused by a newer connection, whose key differs) or belongs
    /// to another worker.
    pub fn to(&mut self, key: CompletionKey) -> Option<Io<'_, C>> {
        let live = key.worker() == self.core.worker
            && self.ios.get(key.slot()).is_some_and(|c| c.key == key);
        live.then(|| Io {
            w: self.reborrow(),
            slot: key.slot(),
        })
    }

    pub(crate) fn reborrow(&mut self) -> WorkerIo<'_, C> {
        WorkerIo {
            core: &mut *self.core,
            ios: &mut *self.ios,
            fresh: &mut *self.fresh,
        }
    }

    /// Opens a TCP connection to `addr`, associated with this worker under a new completion
    /// key with state `conn`. [`crate::Completion::Connected`] (or `Failed`) tells how it
    /// went; sends queued meanwhile wait for it.
    ///
    /// # Errors
    /// When no socket can be created (for example, out of descriptors).
    pub fn connect(&mut self, addr: SocketAddr, conn: C) -> io::Result<CompletionKey> {
        let socket = stream_socket(Domain::for_address(addr), Some(Protocol::TCP))?;
        socket.set_tcp_nodelay(true)?;
        Ok(self.connect_socket(socket, SockAddr::from(addr), conn))
    }

    /// Opens a connection to the Unix-domain stream socket at `path`, as
    /// [`WorkerIo::connect`] does over TCP.
    ///
    /// # Errors
    /// When no socket can be created, or `path` is too long for a socket address; on Windows
    /// always (`Unsupported`: Linux only).
    pub fn connect_unix(&mut self, path: impl AsRef<Path>, conn: C) -> io::Result<CompletionKey> {
        if cfg!(windows) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix-domain connections are Linux only",
            ));
        }
        let addr = SockAddr::unix(path)?;
        let socket = stream_socket(Domain::UNIX, None)?;
        Ok(self.connect_socket(socket, addr, conn))
    }

    fn connect_socket(&mut self, socket: Socket, addr: SockAddr, conn: C) -> CompletionKey {
        let addr = Box::new(addr);
        self.insert(IoHandle::socket(socket.into()), conn, |io| {
            // `socklen_t` on Linux, `i32` on Windows.
            #[allow(clippy::unnecessary_cast)]
            let len = addr.len() as u32;
            let sub = Sub::Connect {
                fd: io.c().fd,
                addr: addr.as_ptr().cast(),
                len,
            };
            let id = io.op(OpData::Connect { _addr: addr }, sub);
            io.cm().connect_op = Some(id);
        })
    }

    /// Associates a connected stream socket made elsewhere (a `std::net::TcpStream`, a Unix
    /// stream) with this worker under a new completion key with state `conn` (IOCP's
    /// association step); it is made non-blocking. Start its operations with
    /// [`WorkerIo::to`]. As with [`crate::PortHandle::associate`], it must have no overlapped
    /// operation of its previous owner in flight.
    ///
    /// # Errors
    /// When it cannot be made non-blocking.
    pub fn associate(
        &mut self,
        socket: impl Into<OwnedSocket>,
        conn: C,
    ) -> io::Result<CompletionKey> {
        let socket = Socket::from(socket.into());
        socket.set_nonblocking(true)?;
        let _ = socket.set_tcp_nodelay(true); // not TCP: nothing to do
        Ok(self.insert(IoHandle::socket(socket.into()), conn, |_| {}))
    }

    /// Associates an open file with this worker under a new completion key with state
    /// `conn`: a file handle, whose [`Io::read_at`] and [`Io::write_at`] complete like any
    /// operation, and whose [`Io::close`] closes the file. (IOCP is for files as much as
    /// sockets.)
    pub fn associate_file(&mut self, file: File, conn: C) -> CompletionKey {
        self.insert(IoHandle::file(file), conn, |_| {})
    }

    /// Adds a connection (or file handle) on descriptor `fd`; `init` starts its first
    /// operations.
    pub(crate) fn insert(
        &mut self,
        handle: IoHandle,
        conn: C,
        init: impl FnOnce(&mut Io<'_, C>),
    ) -> CompletionKey {
        let key = self.insert_io(handle);
        self.fresh.push((key.slot(), conn));
        let mut io = Io {
            w: self.reborrow(),
            slot: key.slot(),
        };
        init(&mut io);
        key
    }

    /// Adds the port's side of a connection (its state comes later): its new key.
    pub(crate) fn insert_io(&mut self, handle: IoHandle) -> CompletionKey {
        let slot = self.ios.vacant_key();
        self.core.generation += 1;
        let key = CompletionKey::new(self.core.worker, slot, self.core.generation);
        self.ios.insert(ConnIo::new(handle, key));
        key
    }

    /// Arms a timer of the worker's (not tied to a connection): after `after`,
    /// [`crate::Handler::timer`] runs with the id returned here — for flushes, heartbeats,
    /// periodic work (arm the next one in the callback). Timers are one-shot.
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        let id = self.core.timer(Owner::Timer, after);
        self.core.timers.insert(id.user_data());
        TimerId(id.user_data())
    }

    /// Disarms a worker timer; false if it already fired (or was cancelled).
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let armed = self.core.timers.remove(&timer.0);
        if armed {
            self.core.cancel_detached(OpId::from_user_data(timer.0));
        }
        armed
    }
}

/// The worker, as its handler sees it outside a connection's completion (when started, for a
/// posted message, a worker timer): everything of [`WorkerIo`] (it dereferences to it), and
/// the states of its connections.
#[derive(Debug)]
pub struct WorkerCtx<'a, C> {
    pub(crate) w: WorkerIo<'a, C>,
    pub(crate) states: &'a mut Vec<Option<C>>,
}

impl<'a, C> Deref for WorkerCtx<'a, C> {
    type Target = WorkerIo<'a, C>;

    fn deref(&self) -> &WorkerIo<'a, C> {
        &self.w
    }
}

impl<'a, C> DerefMut for WorkerCtx<'a, C> {
    fn deref_mut(&mut self) -> &mut WorkerIo<'a, C> {
        &mut self.w
    }
}

impl<C> WorkerCtx<'_, C> {
    /// A connection of this worker, by its key: its state and its operations; `None` if it is
    /// gone or belongs to another worker.
    pub fn get(&mut self, key: CompletionKey) -> Option<(&mut C, Io<'_, C>)> {
        install(self.states, self.w.fresh);
        let WorkerCtx { w, states } = self;
        let state = states.get_mut(key.slot())?.as_mut()?;
        let io = w.to(key)?;
        Some((state, io))
    }
}

/// Puts the states of connections made during a callback where they belong.
pub(crate) fn install<C>(states: &mut Vec<Option<C>>, fresh: &mut Vec<(usize, C)>) {
    for (slot, state) in fresh.drain(..) {
        if states.len() <= slot {
            states.resize_with(slot + 1, || None);
        }
        states[slot] = Some(state);
    }
}
