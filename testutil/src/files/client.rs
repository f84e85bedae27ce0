//! A client of the file server's protocol, reading replies exactly.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use super::{content_at, content_stream, Expected};
use crate::net;
use crate::wait::{eventually, EVENTUALLY};
use crate::End;

/// The reply line of a refusal: `error: REASON: NAME\r\n`, the name escaped as
/// `std::ascii::escape_default` does and cut to 200 bytes (followed by `...`); without a name,
/// `error: REASON\r\n`.
pub fn error_line(reason: &str, name: &[u8]) -> Vec<u8> {
    if name.is_empty() {
        return format!("error: {reason}\r\n").into_bytes();
    }
    let shown: String = name
        .iter()
        .take(200)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    let cut = if name.len() > 200 { "..." } else { "" };
    format!("error: {reason}: {shown}{cut}\r\n").into_bytes()
}

/// The line a client over the limit gets before it is closed.
pub const BUSY_LINE: &[u8] = b"error: server busy, try again\r\n";
/// The reply to a name that did not arrive whole within the request timeout.
pub const REQUEST_TIMEOUT_LINE: &[u8] = b"error: name not received in time\r\n";

/// A client of the file server: one connection, read through a buffer so that replies
/// (file bytes and error lines) are taken exactly.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects to the file server at `addr` (with the tests' timeouts).
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = net::connect(addr);
        Client {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::with_capacity(256 * 1024, stream),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("sending to the server");
    }

    /// Asks for `name` (adds the LF).
    pub fn ask(&mut self, name: &[u8]) {
        let mut line = name.to_vec();
        line.push(b'\n');
        self.send(&line);
    }

    /// Reads exactly `size` bytes and returns their hash.
    pub fn read_hash(&mut self, size: u64, what: &str) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        let mut left = size;
        while left > 0 {
            let buf = match self.reader.fill_buf() {
                Ok([]) => panic!("{what}: EOF after {} of {size} bytes", size - left),
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{what}: {e} after {} of {size} bytes", size - left),
            };
            let n = buf.len().min(left as usize);
            hasher.update(&buf[..n]);
            self.reader.consume(n);
            left -= n as u64;
        }
        hasher.finalize()
    }

    /// Reads exactly `want.len()` bytes and compares them with `want`.
    pub fn expect_bytes(&mut self, want: &[u8], what: &str) {
        let mut done = 0;
        while done < want.len() {
            let buf = match self.reader.fill_buf() {
                Ok([]) => panic!("{what}: EOF after {done} of {} bytes", want.len()),
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{what}: {e} after {done} of {} bytes", want.len()),
            };
            let n = buf.len().min(want.len() - done);
            if buf[..n] != want[done..done + n] {
                let at = buf.iter().zip(&want[done..]).position(|(a, b)| a != b);
                panic!("{what}: byte {} differs", done + at.unwrap());
            }
            self.reader.consume(n);
            done += n;
        }
    }

    /// Reads the next reply as the whole of `file`, by size and hash.
    pub fn expect_file(&mut self, file: &Expected) {
        let hash = self.read_hash(file.size, &file.name);
        assert_eq!(
            hash, file.hash,
            "{}: the {} bytes received differ from the file",
            file.name, file.size
        );
    }

    /// Asks for `file` and checks the reply.
    pub fn get(&mut self, file: &Expected) {
        self.ask(file.name.as_bytes());
        self.expect_file(file);
    }

    /// Reads one line, with its CR LF (at most 1000 bytes).
    pub fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        match (&mut self.reader).take(1000).read_until(b'\n', &mut line) {
            Ok(_) => line,
            Err(e) => panic!("reading a line (got {:?}): {e}", line.escape_ascii()),
        }
    }

    /// Reads the next reply as exactly `line`.
    pub fn expect_line(&mut self, line: &[u8]) {
        let got = self.read_line();
        assert_eq!(
            got.escape_ascii().to_string(),
            line.escape_ascii().to_string(),
            "unexpected reply line"
        );
    }

    /// Reads the next reply as the refusal of `name` for `reason`.
    pub fn expect_error(&mut self, reason: &str, name: &[u8]) {
        self.expect_line(&error_line(reason, name));
    }

    /// If the server says something or closes within `wait`: reads until it closes and
    /// returns what came (at most 4 KiB); else `None`, with nothing read.
    pub fn try_read_until_closed(&mut self, wait: Duration) -> Option<Vec<u8>> {
        self.writer.set_read_timeout(Some(wait)).unwrap();
        let ready = match self.reader.fill_buf() {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Err(e) => panic!("waiting for the server: {e}"),
        };
        self.writer.set_read_timeout(Some(net::IO_TIMEOUT)).unwrap();
        ready.then(|| self.read_until_closed(4096))
    }

    /// Reads until the server closes: EOF, or a reset. Returns the bytes that came first.
    pub fn read_until_closed(&mut self, limit: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0; 64 * 1024];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    assert!(got.len() <= limit, "over {limit} bytes before the close");
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "waiting for the server to close (got {} bytes): {e}",
                    got.len()
                ),
            }
        }
    }

    /// The server closes the connection in an orderly way with nothing more to say.
    pub fn expect_eof(&mut self) {
        let mut byte = [0; 1];
        loop {
            match self.reader.read(&mut byte) {
                Ok(0) => return,
                Ok(_) => panic!(
                    "expected EOF, got byte {:?}",
                    byte.escape_ascii().to_string()
                ),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("expected EOF, got {e}"),
            }
        }
    }

    /// Reads the rest of a download of `name` until the server closes the connection,
    /// comparing every byte with the file's content from `offset`; returns how many came and
    /// how the connection ended. At most `max` bytes may come.
    pub fn verify_until_closed(&mut self, name: &str, mut offset: u64, max: u64) -> (u64, End) {
        let start = offset;
        let mut stream = content_stream(name);
        stream.set_position(offset);
        let mut want = vec![0; 256 * 1024];
        loop {
            let buf = match self.reader.fill_buf() {
                Ok([]) => return (offset - start, End::Eof),
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return (offset - start, End::Reset)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{name}: {e} at byte {offset}"),
            };
            let n = buf.len().min(want.len());
            stream.fill(&mut want[..n]);
            if buf[..n] != want[..n] {
                let at = buf.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                panic!("{name}: byte {} differs from the file", offset + at as u64);
            }
            self.reader.consume(n);
            offset += n as u64;
            assert!(offset - start <= max, "{name}: more than {max} bytes");
        }
    }

    /// Reads bytes `from..to` of `name`'s content, checking each as it streams.
    pub fn expect_range(&mut self, name: &str, from: u64, to: u64) {
        let mut stream = content_stream(name);
        stream.set_position(from);
        let mut want = vec![0; 256 * 1024];
        let mut offset = from;
        while offset < to {
            let buf = match self.reader.fill_buf() {
                Ok([]) => panic!("{name}: EOF at byte {offset} of {to}"),
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{name}: {e} at byte {offset} of {to}"),
            };
            let n = buf.len().min(want.len()).min((to - offset) as usize);
            stream.fill(&mut want[..n]);
            if buf[..n] != want[..n] {
                let at = buf.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                panic!("{name}: byte {} differs from the file", offset + at as u64);
            }
            self.reader.consume(n);
            offset += n as u64;
        }
    }

    /// Half-closes: the server reads EOF after what was sent.
    pub fn finish_sending(&self) {
        self.writer.shutdown(Shutdown::Write).unwrap();
    }

    /// Closes with a reset (SO_LINGER 0) instead of a FIN.
    pub fn reset(self) {
        socket2::SockRef::from(&self.writer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(self);
    }

    /// Caps the receive buffer, so that a client that stops reading stops the transfer early.
    pub fn small_receive_buffer(&self) {
        socket2::SockRef::from(&self.writer)
            .set_recv_buffer_size(64 * 1024)
            .unwrap();
    }

    /// Reads and checks `len` bytes of `name`'s content from `offset`.
    pub fn expect_content(&mut self, name: &str, offset: u64, len: usize) {
        let mut got = vec![0; len];
        self.reader
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("{name}: reading {len} bytes at {offset}: {e}"));
        assert!(
            got == content_at(name, offset, len),
            "{name}: bytes {offset}..+{len} differ from the file"
        );
    }
}

/// Connects and downloads `file` once, retrying (for at most [`EVENTUALLY`]) while the server
/// answers "busy": proof that the server serves new clients.
pub fn download_when_free(addr: SocketAddr, file: &Expected) {
    eventually(EVENTUALLY, "a fresh client is served", || {
        let mut client = Client::connect(addr);
        client.ask(file.name.as_bytes());
        (!client.busy_or_file(file)).then_some(())
    })
}

/// Polls (for at most [`EVENTUALLY`]) until `n` clients connected at once are all served
/// `file`, none told "busy": proof that the slots of clients gone before are free again.
pub fn all_served_at_once(addr: SocketAddr, n: usize, file: &Expected) {
    eventually(EVENTUALLY, "connection slots free again", || {
        let mut clients: Vec<_> = (0..n).map(|_| Client::connect(addr)).collect();
        for client in &mut clients {
            client.ask(file.name.as_bytes());
        }
        let busy = clients
            .iter_mut()
            .map(|c| c.busy_or_file(file))
            .filter(|&b| b)
            .count();
        (busy == 0).then_some(())
    });
}

impl Client {
    /// Reads the reply to a request for `file` (whose content must not start with `e`): the
    /// busy line (then true), or the whole file.
    pub fn busy_or_file(&mut self, file: &Expected) -> bool {
        assert!(
            file.size > 0 && content_at(&file.name, 0, 1)[0] != BUSY_LINE[0],
            "{}: pick a file that cannot be mistaken for the busy line",
            file.name
        );
        let first = loop {
            match self.reader.fill_buf() {
                Ok([]) => panic!("{}: EOF instead of a reply", file.name),
                Ok(buf) => break buf[0],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("{}: {e} instead of a reply", file.name),
            }
        };
        if first == BUSY_LINE[0] {
            self.expect_line(BUSY_LINE);
            true
        } else {
            self.expect_file(file);
            false
        }
    }
}
