//! Loopback clients and listeners whose every read and write is bounded.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Read and write timeout of every client socket: a server bug fails the test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A loopback client with read and write timeouts, and without Nagle's delay.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = loop {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => break s,
            // A signal (a child process ending) interrupted the wait: try again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("connecting {addr}: {e}"),
        }
    };
    set_timeouts(&stream);
    stream
}

/// Gives a socket the tests' read and write timeouts and disables Nagle's delay.
fn set_timeouts(stream: &TcpStream) {
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
}

/// A listener on a free loopback port.
pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("binding a loopback listener")
}

/// Accepts one connection within [`IO_TIMEOUT`].
pub fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                set_timeouts(&stream);
                return stream;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection to accept");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads until EOF, returning everything read. A reset after some data counts as the end
/// too when `reset_ok`; a timeout always fails.
pub fn read_to_end(mut stream: &TcpStream, reset_ok: bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if reset_ok && e.kind() == io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading after {} bytes: {e}", got.len()),
        }
    }
}

/// Sets `SO_LINGER` to zero so that dropping the socket resets the connection.
pub fn set_reset_on_close(stream: &TcpStream) {
    socket2::SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
}

/// Shrinks a client's socket buffers (no autotuning), so that backpressure shows after a
/// few hundred KiB on the client's side.
pub fn small_buffers(stream: &TcpStream) {
    let s = socket2::SockRef::from(stream);
    s.set_send_buffer_size(64 * 1024).unwrap();
    s.set_recv_buffer_size(64 * 1024).unwrap();
}

/// The most bytes TCP buffers can hold on the server's side of one connection: its receive
/// buffer and its send buffer at their autotuning maximum.
pub fn server_socket_buffers_max() -> u64 {
    let max = |path: &str, default: u64| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2).and_then(|n| n.parse().ok()))
            .unwrap_or(default)
    };
    max("/proc/sys/net/ipv4/tcp_rmem", 6 << 20) + max("/proc/sys/net/ipv4/tcp_wmem", 4 << 20)
}
