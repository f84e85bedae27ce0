//! The request head, parsed with `httparse`, and the framing rules that keep one request from
//! hiding another (no request smuggling): `Transfer-Encoding` is refused, `Content-Length` must
//! be one number, HTTP/1.1 needs exactly one `Host`.

use super::response::Status;

/// Most header lines ever parsed (the array `httparse` fills lives on the stack).
pub const MAX_HEADERS: usize = 128;

/// The request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// Any other token (answered with 405).
    Other(String),
}

impl Method {
    fn from_token(token: &str) -> Self {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Other(m) => m,
        }
    }
}

/// What the server keeps of a request head.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The method (`None` only in a default value).
    pub method: Option<Method>,
    /// The request target, as sent.
    pub target: Vec<u8>,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// Body bytes that follow the head (to be read and discarded).
    pub content_length: u64,
    /// `If-Match` (several lines joined by commas).
    pub if_match: Option<String>,
    /// `If-None-Match` (several lines joined by commas).
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<String>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<String>,
    /// `If-Range`.
    pub if_range: Option<String>,
    /// `Range`, if sent exactly once.
    pub range: Option<String>,
    /// `Accept-Encoding` (several lines joined by commas).
    pub accept_encoding: Option<String>,
    /// `Referer`, kept for the access log.
    pub referer: Option<Vec<u8>>,
    /// `User-Agent`, kept for the access log.
    pub user_agent: Option<Vec<u8>>,
}

impl Request {
    /// The method (GET for a default value).
    pub fn method(&self) -> &Method {
        self.method.as_ref().unwrap_or(&Method::Get)
    }

    /// Whether the response carries no body (HEAD).
    pub fn is_head(&self) -> bool {
        self.method() == &Method::Head
    }
}

/// Limits of a request head.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest head in bytes.
    pub max_bytes: usize,
    /// Most header lines (at most [`MAX_HEADERS`]).
    pub max_headers: usize,
    /// Keep `Referer` and `User-Agent` (for the access log).
    pub keep_log_fields: bool,
}

/// The result of parsing the start of a connection's input.
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole head of this many bytes.
    Complete(Box<Request>, usize),
    /// A bad request: answer with this status, then close.
    Invalid(Status),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8], limits: Limits) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers[..limits.max_headers.clamp(1, MAX_HEADERS)]);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > limits.max_bytes => {
            Parsed::Invalid(too_large(buf, limits.max_bytes))
        }
        Ok(httparse::Status::Complete(len)) => match from_parts(&req, limits) {
            Ok(request) => Parsed::Complete(Box::new(request), len),
            Err(status) => Parsed::Invalid(status),
        },
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_bytes => {
            Parsed::Invalid(too_large(buf, limits.max_bytes))
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Invalid(Status::HeadersTooLarge),
        Err(httparse::Error::Version) => Parsed::Invalid(Status::VersionNotSupported),
        Err(_) => Parsed::Invalid(Status::BadRequest),
    }
}

/// 414 when the request line alone is over the limit, else 431.
fn too_large(buf: &[u8], max: usize) -> Status {
    if buf[..buf.len().min(max)].contains(&b'\n') {
        Status::HeadersTooLarge
    } else {
        Status::UriTooLong
    }
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// Appends a list header's value to what earlier lines gave (`a, b`).
fn join(slot: &mut Option<String>, value: &[u8]) {
    match slot {
        Some(s) => {
            s.push_str(", ");
            s.push_str(&String::from_utf8_lossy(value));
        }
        None => *slot = Some(text(value)),
    }
}

fn from_parts(req: &httparse::Request<'_, '_>, limits: Limits) -> Result<Request, Status> {
    let minor = req.version.ok_or(Status::BadRequest)?;
    let mut out = Request {
        method: Some(Method::from_token(req.method.ok_or(Status::BadRequest)?)),
        target: req.path.ok_or(Status::BadRequest)?.as_bytes().to_vec(),
        minor,
        ..Request::default()
    };
    let (mut hosts, mut ranges) = (0, 0);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let (mut close, mut keep_alive) = (false, false);
    for h in req.headers.iter() {
        let name = h.name;
        let eq = |n: &str| name.eq_ignore_ascii_case(n);
        if eq("host") {
            hosts += 1;
        } else if eq("content-length") {
            // One value, digits only; repeated lines must agree.
            let v = std::str::from_utf8(h.value).map_err(|_| Status::BadRequest)?;
            let v = v.trim_matches([' ', '\t']);
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Status::BadRequest);
            }
            let n: u64 = v.parse().map_err(|_| Status::PayloadTooLarge)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(Status::BadRequest);
            }
            content_length = Some(n);
        } else if eq("transfer-encoding") {
            transfer_encoding = true;
        } else if eq("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if eq("if-match") {
            join(&mut out.if_match, h.value);
        } else if eq("if-none-match") {
            join(&mut out.if_none_match, h.value);
        } else if eq("if-modified-since") {
            out.if_modified_since = Some(text(h.value));
        } else if eq("if-unmodified-since") {
            out.if_unmodified_since = Some(text(h.value));
        } else if eq("if-range") {
            out.if_range = Some(text(h.value));
        } else if eq("range") {
            ranges += 1;
            out.range = Some(text(h.value));
        } else if eq("accept-encoding") {
            join(&mut out.accept_encoding, h.value);
        } else if limits.keep_log_fields && eq("referer") {
            out.referer = Some(h.value.to_vec());
        } else if limits.keep_log_fields && eq("user-agent") {
            out.user_agent = Some(h.value.to_vec());
        }
    }
    if transfer_encoding {
        // Both framings at once is the smuggling case; chunked bodies alone are not read.
        return Err(if content_length.is_some() {
            Status::BadRequest
        } else {
            Status::NotImplemented
        });
    }
    if minor == 1 && hosts != 1 || hosts > 1 {
        return Err(Status::BadRequest);
    }
    if ranges > 1 {
        out.range = None;
    }
    out.content_length = content_length.unwrap_or(0);
    out.keep_alive = if minor == 0 {
        keep_alive && !close
    } else {
        !close
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        max_bytes: 16 * 1024,
        max_headers: 100,
        keep_log_fields: true,
    };

    fn status(raw: &[u8]) -> Status {
        match parse(raw, LIMITS) {
            Parsed::Invalid(s) => s,
            other => panic!("{}: {other:?}", raw.escape_ascii()),
        }
    }

    fn complete(raw: &[u8]) -> Request {
        match parse(raw, LIMITS) {
            Parsed::Complete(r, len) => {
                assert_eq!(len, raw.len());
                *r
            }
            other => panic!("{}: {other:?}", raw.escape_ascii()),
        }
    }

    #[test]
    fn a_plain_get() {
        let r = complete(
            b"GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\nUser-Agent: t\r\n\r\n",
        );
        assert_eq!(r.method(), &Method::Get);
        assert_eq!(r.target, b"/a%20b?x=1");
        assert!(r.keep_alive);
        assert_eq!(r.range.as_deref(), Some("bytes=1-2"));
        assert_eq!(r.user_agent.as_deref(), Some(&b"t"[..]));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x, close\r\n\r\n").keep_alive);
        // A bare LF ends lines too (RFC 9112 §2.2 allows it).
        assert!(complete(b"GET / HTTP/1.1\nHost: h\n\n").keep_alive);
    }

    #[test]
    fn framing_is_strict() {
        let s = |h: &str| status(format!("GET / HTTP/1.1\r\nHost: h\r\n{h}\r\n\r\n").as_bytes());
        assert_eq!(s("Transfer-Encoding: chunked"), Status::NotImplemented);
        assert_eq!(
            s("Transfer-Encoding: chunked\r\nContent-Length: 3"),
            Status::BadRequest
        );
        assert_eq!(
            s("Content-Length: 1\r\nContent-Length: 2"),
            Status::BadRequest
        );
        assert_eq!(s("Content-Length: -1"), Status::BadRequest);
        assert_eq!(s("Content-Length: 1,1"), Status::BadRequest);
        assert_eq!(
            s("Content-Length: 99999999999999999999999"),
            Status::PayloadTooLarge
        );
        assert_eq!(s("Host: again"), Status::BadRequest);
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), Status::BadRequest);
        assert_eq!(
            status(b"GET / HTTP/2.0\r\n\r\n"),
            Status::VersionNotSupported
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(status(b"G(T / HTTP/1.1\r\n\r\n"), Status::BadRequest);
        let r = complete(
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
        );
        assert_eq!(r.content_length, 7);
    }

    #[test]
    fn limits() {
        let long_line = [&b"GET /"[..], &[b'a'; 20_000], b" HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(status(&long_line), Status::UriTooLong);
        let long_header = [&b"GET / HTTP/1.1\r\nX: "[..], &[b'a'; 20_000]].concat();
        assert_eq!(status(&long_header), Status::HeadersTooLarge);
        let many: Vec<u8> = [b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec()]
            .into_iter()
            .chain((0..200).map(|i| format!("X{i}: y\r\n").into_bytes()))
            .chain([b"\r\n".to_vec()])
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(status(&many), Status::HeadersTooLarge);
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost", LIMITS),
            Parsed::Partial
        ));
    }

    proptest! {
        /// A head split anywhere parses as it does whole: partial before the end.
        #[test]
        fn any_prefix_is_partial_or_the_same(cut in 0usize..200) {
            let raw = b"GET /x?y HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nIf-None-Match: \"a\", \"b\"\r\n\r\n";
            let cut = cut.min(raw.len());
            match parse(&raw[..cut], LIMITS) {
                Parsed::Partial => prop_assert!(cut < raw.len()),
                Parsed::Complete(r, len) => {
                    prop_assert_eq!(len, raw.len());
                    prop_assert_eq!(r.if_none_match.as_deref(), Some("\"a\", \"b\""));
                }
                Parsed::Invalid(s) => prop_assert!(false, "{:?}", s),
            }
        }

        /// Arbitrary bytes never panic, and a complete head never claims more than it read.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Parsed::Complete(_, len) = parse(&bytes, LIMITS) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}
