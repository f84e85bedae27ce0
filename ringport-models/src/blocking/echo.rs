//! The echo service with blocking I/O: read what came, write it all back, until EOF.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Bytes read at a time (on the thread's stack: the kernel maps only the pages written).
const BUF: usize = 16 * 1024;

/// Echoes `stream` until the client closes its side; then closes (the caller drops it).
/// A client that sends without reading blocks this thread in `write`: memory stays bounded.
pub(super) fn serve(mut stream: &TcpStream) -> io::Result<()> {
    let mut buf = [0u8; BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => stream.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
