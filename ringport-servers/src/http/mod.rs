//! HTTP/1.1 static file server, on the same port as the nc protocol of [`crate::files`].
//!
//! The first request line tells the protocols apart ([`sniff`]): `METHOD SP target SP HTTP/…`
//! is HTTP, anything else is an nc file name. An HTTP connection then serves `GET` and `HEAD`
//! of the files beneath the served folder, the way users of nginx or Caddy's `file_server`
//! expect:
//!
//! | module | what it holds |
//! |---|---|
//! | [`request`] | the request head, parsed with `httparse`; framing rules (no smuggling) |
//! | [`path`] | request target → confined relative path; redirects that stay on this host |
//! | [`conditional`] | `ETag`, `If-None-Match`, `If-Modified-Since`, `If-Match`, `If-Unmodified-Since`, `If-Range` |
//! | [`range`] | `Range: bytes=…` (one range → 206; several → the whole file) |
//! | [`negotiate`] | `Accept-Encoding` with q-values → precompressed side files (`.br`, `.zst`, `.gz`) |
//! | [`response`] | response heads and small error bodies, `Content-Type` by extension |
//! | [`listing`] | the HTML listing of a folder (`--list`) |
//! | [`cache`] | small files' bytes and metadata per worker, revalidated on every request |
//! | [`log`] | the access log (combined format), written by its own thread |
//! | [`conn`] | the per-connection state machine |
//!
//! Files are opened with [`ringport::Io::open_beneath`] (the same confinement as nc) and bodies
//! go out with [`ringport::Io::send_file`]; a cached small file leaves with its head in one send.
//! Every resource a client can make a connection hold is bounded: head bytes and count, the time
//! a request may take to arrive, keep-alive idle time, discarded body bytes, pipelined input
//! (receiving stops while a full head waits) and queued output (no new request is served while
//! a response is still queued past [`conn::UNSENT_LIMIT`] or a file is being sent).

pub mod cache;
pub mod conditional;
pub mod conn;
pub mod date;
pub mod listing;
pub mod log;
pub mod negotiate;
pub mod path;
pub mod range;
pub mod request;
pub mod response;
pub mod sniff;

use std::time::Duration;

pub(crate) use conn::HttpShared;
pub use conn::{HttpConn, HttpServer};

/// Settings of the HTTP side of the file server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// A folder without `index.html` gets an HTML listing (else 404).
    pub list: bool,
    /// Names starting with `.` (files and folders) are served and listed (else 404).
    pub hidden: bool,
    /// Send precompressed side files (`name.br`, `name.zst`, `name.gz`) to clients that accept
    /// their coding.
    pub precompressed: bool,
    /// The `Cache-Control` value sent with files, if any.
    pub cache_control: Option<String>,
    /// Where to write the access log, if anywhere.
    pub access_log: Option<log::Target>,
    /// Longest request head (request line and headers), in bytes: past it 414 (request line)
    /// or 431 (headers).
    pub max_header_bytes: usize,
    /// Most header lines in a request: past it 431. At most [`request::MAX_HEADERS`].
    pub max_headers: usize,
    /// A request's head, and any body it carries, must arrive within this time of its first
    /// byte: past it 408 and the connection closes.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub keepalive_timeout: Duration,
    /// Longest request body read (and discarded); past it 413 and the connection closes.
    pub max_body: u64,
    /// Bytes of small files kept in memory, across all workers (0: no cache).
    pub cache_size: u64,
    /// Largest file kept in the cache, in bytes.
    pub cache_max_file: u64,
    /// A file changed less than this long ago is not cached (its timestamps could hide a
    /// change made in the same clock tick; see [`cache`]).
    pub cache_settle: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            list: false,
            hidden: false,
            precompressed: true,
            cache_control: None,
            access_log: None,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            max_body: 1024 * 1024,
            cache_size: 64 * 1024 * 1024,
            cache_max_file: 16 * 1024,
            cache_settle: cache::SETTLE,
        }
    }
}
