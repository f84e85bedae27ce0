//! Response heads and the small bodies of errors.

use std::fmt::Write as _;

use super::date;
use super::negotiate::Coding;

/// The statuses this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 206.
    PartialContent,
    /// 301.
    MovedPermanently,
    /// 304.
    NotModified,
    /// 400.
    BadRequest,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408.
    RequestTimeout,
    /// 412.
    PreconditionFailed,
    /// 413.
    PayloadTooLarge,
    /// 414.
    UriTooLong,
    /// 416.
    RangeNotSatisfiable,
    /// 431.
    HeadersTooLarge,
    /// 500.
    InternalError,
    /// 501.
    NotImplemented,
    /// 503.
    Unavailable,
    /// 505.
    VersionNotSupported,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::PartialContent => 206,
            Status::MovedPermanently => 301,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::PreconditionFailed => 412,
            Status::PayloadTooLarge => 413,
            Status::UriTooLong => 414,
            Status::RangeNotSatisfiable => 416,
            Status::HeadersTooLarge => 431,
            Status::InternalError => 500,
            Status::NotImplemented => 501,
            Status::Unavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::PartialContent => "Partial Content",
            Status::MovedPermanently => "Moved Permanently",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::PreconditionFailed => "Precondition Failed",
            Status::PayloadTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::RangeNotSatisfiable => "Range Not Satisfiable",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
            Status::NotImplemented => "Not Implemented",
            Status::Unavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// Whether the connection must close after this answer: the request's framing cannot be
    /// trusted, or the client broke a limit.
    pub fn closes(self) -> bool {
        matches!(
            self,
            Status::BadRequest
                | Status::RequestTimeout
                | Status::PayloadTooLarge
                | Status::UriTooLong
                | Status::HeadersTooLarge
                | Status::NotImplemented
                | Status::VersionNotSupported
        )
    }
}

/// How the connection goes on after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// HTTP/1.1 default: nothing to say.
    Default,
    /// HTTP/1.0 keep-alive: say `Connection: keep-alive`.
    KeepAlive,
    /// Say `Connection: close`, then close.
    Close,
}

/// Starts a head: status line, `Server`, `Date`.
pub fn start(out: &mut Vec<u8>, status: Status) {
    let _ = write!(
        Buf(out),
        "HTTP/1.1 {} {}\r\nServer: ringport\r\n",
        status.code(),
        status.reason()
    );
    date::with_http_date(|d| {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(d.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Ends a head: `Connection` as `persist` says, and the blank line.
pub fn finish(out: &mut Vec<u8>, persist: Persist) {
    out.extend_from_slice(match persist {
        Persist::Default => &b"\r\n"[..],
        Persist::KeepAlive => b"Connection: keep-alive\r\n\r\n",
        Persist::Close => b"Connection: close\r\n\r\n",
    });
}

/// One header line.
pub fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A `Content-Length` line.
pub fn content_length(out: &mut Vec<u8>, len: u64) {
    let _ = write!(Buf(out), "Content-Length: {len}\r\n");
}

/// `fmt::Write` into a byte vector.
#[derive(Debug)]
pub struct Buf<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Extra lines of an error response.
#[derive(Debug, Default, Clone)]
pub struct ErrorExtras<'a> {
    /// `Allow` (405).
    pub allow: bool,
    /// `Location` (301).
    pub location: Option<&'a str>,
    /// The file's size, for `Content-Range: bytes */size` (416).
    pub unsatisfied_size: Option<u64>,
    /// `Vary: Accept-Encoding`.
    pub vary: bool,
}

/// A complete error (or redirect) response with a short text body (none for HEAD), and the
/// length of the body sent.
pub fn error(
    status: Status,
    head_only: bool,
    persist: Persist,
    extras: &ErrorExtras<'_>,
) -> (Vec<u8>, u64) {
    let body = format!("{} {}\n", status.code(), status.reason());
    let mut out = Vec::with_capacity(256);
    start(&mut out, status);
    header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    content_length(&mut out, body.len() as u64);
    if extras.allow {
        header(&mut out, "Allow", "GET, HEAD");
    }
    if let Some(location) = extras.location {
        header(&mut out, "Location", location);
    }
    if let Some(size) = extras.unsatisfied_size {
        let _ = write!(Buf(&mut out), "Content-Range: bytes */{size}\r\n");
    }
    if extras.vary {
        header(&mut out, "Vary", "Accept-Encoding");
    }
    finish(&mut out, persist);
    if head_only {
        return (out, 0);
    }
    out.extend_from_slice(body.as_bytes());
    (out, body.len() as u64)
}

/// The media type of a file by its name's extension (`mime_guess`), with `charset=utf-8` for
/// text; `application/octet-stream` when unknown.
pub fn content_type(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let mime = mime_guess::from_path(&*name)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let texty = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if texty {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

/// The header lines a file's responses share (everything but status, date, length, range and
/// connection), computed once per file.
#[derive(Debug, Clone)]
pub struct FileHead {
    /// `Content-Type`, `Content-Encoding`, `Last-Modified`, `ETag`, `Accept-Ranges`,
    /// `Cache-Control` and `Vary` lines.
    pub lines: String,
    /// The same without `Content-Type` and `Content-Encoding` (a 304 carries no content
    /// headers).
    pub validators: String,
    /// The entity tag, with its quotes.
    pub etag: String,
    /// Last modification, in whole seconds since the epoch.
    pub modified_secs: u64,
}

/// What a file's responses say about it.
#[derive(Debug, Clone, Copy)]
pub struct FileFacts<'a> {
    /// The name whose extension gives the type (the original, not the side file).
    pub name: &'a [u8],
    /// Size of the bytes sent (the side file's, when one is sent).
    pub size: u64,
    /// Modification time of those bytes: seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// The content coding (a side file), if any.
    pub coding: Option<Coding>,
    /// `Cache-Control`, if configured.
    pub cache_control: Option<&'a str>,
    /// Whether a side file could have been chosen (`Vary: Accept-Encoding`).
    pub vary: bool,
}

impl FileHead {
    /// The lines for `facts`.
    pub fn new(facts: &FileFacts<'_>) -> Self {
        let (secs, nanos) = facts.mtime;
        let modified_secs = u64::try_from(secs).unwrap_or(0);
        // Strong: it changes whenever the bytes can have (size or modification time), and a
        // side file's differs from its original's (its own metadata, its coding's name).
        let etag = match facts.coding {
            Some(c) => format!("\"{secs:x}.{nanos:x}-{:x}-{}\"", facts.size, c.token()),
            None => format!("\"{secs:x}.{nanos:x}-{:x}\"", facts.size),
        };
        let modified = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(modified_secs),
        );
        let mut validators = String::with_capacity(160);
        let _ = write!(
            validators,
            "Last-Modified: {modified}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n"
        );
        if let Some(cc) = facts.cache_control {
            let _ = write!(validators, "Cache-Control: {cc}\r\n");
        }
        if facts.vary {
            validators.push_str("Vary: Accept-Encoding\r\n");
        }
        let mut lines = format!("Content-Type: {}\r\n", content_type(facts.name));
        if let Some(c) = facts.coding {
            let _ = write!(lines, "Content-Encoding: {}\r\n", c.token());
        }
        lines.push_str(&validators);
        FileHead {
            lines,
            validators,
            etag,
            modified_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(content_type(b"a.html"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type(b"a.png"), "image/png");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
        assert_eq!(content_type(b"a.json"), "application/json; charset=utf-8");
    }

    #[test]
    fn error_responses() {
        let extras = ErrorExtras {
            allow: true,
            ..ErrorExtras::default()
        };
        let (r, len) = error(Status::MethodNotAllowed, false, Persist::Default, &extras);
        assert_eq!(len, 23);
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\nServer: ringport\r\nDate: "));
        assert!(r.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(r.ends_with("\r\n\r\n405 Method Not Allowed\n"));
        assert!(r.contains("Content-Length: 23\r\n"));
        let (head, _) = error(
            Status::NotFound,
            true,
            Persist::Close,
            &ErrorExtras::default(),
        );
        assert!(head.ends_with(b"Connection: close\r\n\r\n"));
    }

    #[test]
    fn file_heads() {
        let facts = FileFacts {
            name: b"a.txt",
            size: 10,
            mtime: (1_000_000_000, 5),
            coding: Some(Coding::Gzip),
            cache_control: Some("max-age=60"),
            vary: true,
        };
        let h = FileHead::new(&facts);
        assert_eq!(h.etag, "\"3b9aca00.5-a-gzip\"");
        assert!(h.lines.starts_with(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Encoding: gzip\r\nLast-Modified: Sun, 09 Sep 2001 01:46:40 GMT\r\n"
        ));
        assert!(h
            .validators
            .ends_with("Cache-Control: max-age=60\r\nVary: Accept-Encoding\r\n"));
        let plain = FileHead::new(&FileFacts {
            coding: None,
            ..facts
        });
        assert_ne!(plain.etag, h.etag);
    }
}
