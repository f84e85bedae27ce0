//! The listening sockets of a port: per worker for TCP (`SO_REUSEPORT`: the kernel spreads
//! connections over the workers), one shared by all workers for a Unix-domain path. Where a
//! socket can wait on one port only (Windows), worker 0 gets every listener and hands the
//! connections out.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, SockAddr, Socket};

use crate::sys::{share_port, stream_socket, OwnedSocket, LISTENER_PER_WORKER};

/// Where a port listens.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Listening sockets, one list per worker.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) per_worker: Vec<Vec<OwnedSocket>>,
    /// The TCP addresses, with the real ports where 0 was asked for.
    pub(crate) tcp: Vec<SocketAddr>,
    /// The socket files made, removed when the port stops.
    pub(crate) unix: Vec<PathBuf>,
}

/// Binds every endpoint for `workers` workers.
pub(crate) fn bind(endpoints: &[Endpoint], workers: usize, backlog: i32) -> io::Result<Bound> {
    let listening = if LISTENER_PER_WORKER { workers } else { 1 };
    let mut bound = Bound {
        per_worker: (0..workers).map(|_| Vec::new()).collect(),
        tcp: Vec::new(),
        unix: Vec::new(),
    };
    for endpoint in endpoints {
        match endpoint {
            Endpoint::Tcp(addr) => {
                let mut addr = *addr;
                for listeners in &mut bound.per_worker[..listening] {
                    let socket = tcp(addr, backlog)?;
                    addr = socket.local_addr()?.as_socket().expect("an IP listener");
                    listeners.push(socket.into());
                }
                bound.tcp.push(addr);
            }
            Endpoint::Unix(path) => {
                let socket = unix(path, backlog)?;
                bound.unix.push(path.clone());
                // One socket, one descriptor per worker: each worker closes its own.
                for listeners in &mut bound.per_worker[..listening] {
                    listeners.push(socket.try_clone()?.into());
                }
            }
        }
    }
    Ok(bound)
}

fn tcp(addr: SocketAddr, backlog: i32) -> io::Result<Socket> {
    let socket = stream_socket(Domain::for_address(addr), Some(Protocol::TCP))?;
    share_port(&socket)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    socket.listen(backlog)?;
    Ok(socket)
}

fn unix(path: &Path, backlog: i32) -> io::Result<Socket> {
    if cfg!(windows) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix-domain listeners are Linux only",
        ));
    }
    let socket = stream_socket(Domain::UNIX, None)?;
    let addr = SockAddr::unix(path)?;
    socket.bind(&addr).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::AddrInUse {
            " (a file is there: remove it if no server uses it)"
        } else {
            ""
        };
        io::Error::new(e.kind(), format!("binding {}: {e}{hint}", path.display()))
    })?;
    socket.listen(backlog)?;
    Ok(socket)
}
