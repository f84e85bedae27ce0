//! Listening sockets, set up alike for every model.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog of every model (the kernel caps it at `net.core.somaxconn`, 4096 by
/// default): the same as ringport's port, so that no model loses connections to a shorter
/// queue than another.
const BACKLOG: i32 = 4096;

/// A blocking listener on `addr`; with `reuseport`, one of several on the same port
/// (`SO_REUSEPORT`: the kernel spreads connections over them).
pub(crate) fn bind(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Whether an accept error is a shortage (descriptors, memory, buffers) to back off from,
/// rather than a failure of one connection.
pub(crate) fn is_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
