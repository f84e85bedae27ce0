//! A raw HTTP/1.1 client for the HTTP tests: sends exactly the bytes a test gives, and reads
//! responses exactly (head with `httparse`, body by `Content-Length`), so that framing errors
//! of the server show up as wrong bytes, not as a lenient client's guess.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use ringport_testutil::connect;

/// One response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD and 304).
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (any case), if present once or more (the first).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection to the HTTP server.
#[derive(Debug)]
pub struct Http {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Http {
    /// Connects (with the tests' timeouts).
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = connect(addr);
        Http {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::with_capacity(256 * 1024, stream),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("sending to the server");
    }

    /// Sends `GET path` with `headers` (lines without CRLF).
    pub fn get(&mut self, path: &str, headers: &[&str]) -> Response {
        self.send(&request("GET", path, headers));
        self.response(false)
    }

    /// Sends `HEAD path` with `headers`.
    pub fn head(&mut self, path: &str, headers: &[&str]) -> Response {
        self.send(&request("HEAD", path, headers));
        self.response(true)
    }

    /// Reads one response; `head_only` for the answer to HEAD (no body whatever the length).
    pub fn response(&mut self, head_only: bool) -> Response {
        let mut head = Vec::new();
        loop {
            let n = self
                .reader
                .read_until(b'\n', &mut head)
                .expect("reading a response head");
            assert!(
                n > 0,
                "EOF in a response head after {:?}",
                head.escape_ascii().to_string()
            );
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
            assert!(head.len() < 64 * 1024, "response head too long");
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        let status = parsed.parse(&head).expect("a well-formed response head");
        assert!(status.is_complete());
        let status = parsed.code.unwrap();
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        assert!(response.header("transfer-encoding").is_none());
        if head_only || status == 304 {
            return response;
        }
        let len: usize = response
            .header("content-length")
            .expect("a Content-Length")
            .parse()
            .unwrap();
        response.body = vec![0; len];
        self.reader
            .read_exact(&mut response.body)
            .expect("reading a response body");
        response
    }

    /// Reads until the server closes (EOF or reset); what came first.
    pub fn until_closed(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0; 64 * 1024];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("waiting for the close after {} bytes: {e}", got.len()),
            }
        }
    }
}

/// A request: `METHOD path HTTP/1.1`, `Host`, the given lines, blank line.
pub fn request(method: &str, path: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}
