//! The HTTP/1.1 side of the download benchmark: the keep-alive `GET` request, and the response
//! head read with `httparse` and checked against the download expected.

use std::fmt::Write;

/// Most response headers read; more is an error.
const MAX_HEADERS: usize = 64;
/// Longest response head accepted, in bytes.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// The request for `/NAME` on a keep-alive connection (the default in HTTP/1.1).
pub(crate) fn request(name: &str) -> Vec<u8> {
    format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        escape_path(name)
    )
    .into_bytes()
}

/// Percent-encodes what may not stand in a path as it is (`/` stays a separator).
fn escape_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.trim_start_matches('/').as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A complete response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes the head takes, up to and including its blank line: the body starts there.
    pub(crate) len: usize,
    pub(crate) status: u16,
    pub(crate) reason: String,
    /// `None` without a Content-Length header.
    pub(crate) content_length: Option<u64>,
    /// A Transfer-Encoding header is present (the body is not Content-Length delimited).
    pub(crate) transfer_encoding: bool,
}

/// Parses the response head at the start of `buf`: `Ok(None)` while it is incomplete.
///
/// # Errors
/// A malformed head, in words.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let mut content_length = None;
    let mut transfer_encoding = false;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    format!("bad Content-Length {:?}", String::from_utf8_lossy(h.value))
                })?;
            if content_length.is_some_and(|c| c != value) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            content_length = Some(value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        }
    }
    Ok(Some(Head {
        len,
        status: response.code.unwrap_or(0),
        reason: response.reason.unwrap_or("").to_owned(),
        content_length,
        transfer_encoding,
    }))
}

impl Head {
    /// Checks that the response carries the whole file, `size` bytes, as its body.
    ///
    /// # Errors
    /// Why not, in words.
    pub(crate) fn expect(&self, size: u64) -> Result<(), String> {
        if self.status != 200 {
            return Err(format!("HTTP {} {}", self.status, self.reason));
        }
        if self.transfer_encoding {
            return Err("Transfer-Encoding is not supported (expected Content-Length)".to_owned());
        }
        match self.content_length {
            None => Err("no Content-Length".to_owned()),
            Some(len) if len != size => Err(format!("Content-Length {len}, expected {size} bytes")),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line() {
        assert_eq!(
            request("a/b c.bin"),
            b"GET /a/b%20c.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        assert!(request("/x").starts_with(b"GET /x "));
        assert!(request("%\r\n").starts_with(b"GET /%25%0D%0A "));
    }

    #[test]
    fn parses_a_head_in_pieces() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: t\r\ncontent-length: 5\r\n\r\nhello";
        for cut in 0..raw.len() - 5 {
            assert_eq!(parse_head(&raw[..cut]), Ok(None), "cut at {cut}");
        }
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.len, raw.len() - 5);
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.expect(5), Ok(()));
        assert!(head
            .expect(6)
            .unwrap_err()
            .contains("Content-Length 5, expected 6"));
    }

    #[test]
    fn refuses_what_is_not_the_file() {
        let head = |raw: &[u8]| parse_head(raw).unwrap().unwrap();
        let e = head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n").expect(5);
        assert_eq!(e.unwrap_err(), "HTTP 404 Not Found");
        let e = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").expect(5);
        assert!(e.unwrap_err().contains("Transfer-Encoding"));
        let e = head(b"HTTP/1.1 200 OK\r\n\r\n").expect(5);
        assert_eq!(e.unwrap_err(), "no Content-Length");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(b"error: no such file: x\r\n").is_err());
        let long = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'x'; MAX_HEAD]].concat();
        assert!(parse_head(&long).unwrap_err().contains("longer"));
    }
}
