//! The file download server of the second article, for `nc`: the client sends a file name
//! ended by LF, the server sends the whole file zero-copy (TransmitFile), then waits for the
//! next name on the same connection. On failure the client gets one line saying why, and the
//! connection stays usable.
//!
//! Nothing outside the served folder is ever opened: names are resolved by the kernel beneath
//! it (`openat2` with `RESOLVE_BENEATH`), not by string checks.
//!
//! The same port speaks HTTP/1.1 ([`crate::http`]): [`dispatch`] tells the protocols apart by
//! the first request line.

mod conn;
pub mod dispatch;
pub mod lines;
pub mod reply;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use ringport::{Dir, Port};

use crate::PortSettings;

use crate::http::log::AccessLog;
use crate::http::{HttpConfig, HttpServer, HttpShared};
pub use conn::FileServer;
pub use dispatch::Server;

/// Settings of a file server.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Where it listens and how its port runs.
    pub port: PortSettings,
    /// The served folder.
    pub root: PathBuf,
    /// Longest accepted file name, in bytes.
    pub max_name: usize,
    /// A connection with no request in progress and no transfer for this long is closed
    /// (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Once part of a name has arrived, the rest must arrive within this time (`None`: no
    /// limit): a client that trickles a byte at a time cannot keep its slot.
    pub request_timeout: Option<Duration>,
    /// Connections served at once (across workers); more are told "server busy" and closed.
    pub max_connections: usize,
    /// The HTTP side.
    pub http: HttpConfig,
}

impl FilesConfig {
    /// Defaults for serving `root` on `listen`.
    pub fn new(root: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        FilesConfig {
            port: PortSettings::new(listen),
            root: root.into(),
            max_name: 4096,
            idle_timeout: Some(Duration::from_secs(300)),
            request_timeout: Some(Duration::from_secs(60)),
            max_connections: 10_000,
            http: HttpConfig::default(),
        }
    }
}

/// What every worker of a file server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) root: Arc<Dir>,
    pub(crate) cfg: FilesConfig,
    pub(crate) connections: AtomicUsize,
    /// `cfg.max_connections`, lowered to what the descriptor limit can serve.
    pub(crate) max_connections: usize,
}

/// Descriptors kept for the process itself: standard streams, and per worker its ring or epoll,
/// eventfd and listener, with room to spare.
fn reserved_fds(workers: usize) -> u64 {
    16 + 4 * workers as u64
}

/// Connections that `fd_limit` descriptors can serve: each may hold its socket and one open file,
/// so that a file is never refused for want of a descriptor.
pub fn connections_within(fd_limit: u64, workers: usize) -> usize {
    (fd_limit.saturating_sub(reserved_fds(workers)) / 2).max(1) as usize
}

/// Opens the served folder (see [`Dir`] for how names stay beneath it).
///
/// # Errors
/// When it is missing or not a directory.
pub fn open_root(root: &Path) -> io::Result<Dir> {
    Dir::open(root).map_err(|e| io::Error::new(e.kind(), format!("serving: {e}")))
}

/// Starts a file server (nc and HTTP on the same port).
///
/// # Errors
/// When the folder cannot be opened, the access log cannot be opened, or the port cannot
/// start.
pub fn start(cfg: &FilesConfig) -> io::Result<Port> {
    let fds = ringport::fd_limit()?;
    let max_connections = cfg
        .max_connections
        .min(connections_within(fds, cfg.port.workers));
    if max_connections < cfg.max_connections {
        tracing::info!(
            "serving at most {max_connections} connections at once: the descriptor limit is {fds} \
             and each connection may need two (raise it with `ulimit -n`)"
        );
    }
    let root = Arc::new(open_root(&cfg.root)?);
    let shared = Arc::new(Shared {
        root: root.clone(),
        cfg: cfg.clone(),
        connections: AtomicUsize::new(0),
        max_connections,
    });
    let log = cfg
        .http
        .access_log
        .as_ref()
        .map(AccessLog::open)
        .transpose()?;
    let http = Arc::new(HttpShared {
        root,
        cfg: cfg.http.clone(),
        log,
        workers: cfg.port.workers,
    });
    let sniff_limit = cfg.http.max_header_bytes;
    let header_timeout = cfg.http.header_timeout;
    let request_timeout = cfg.request_timeout;
    cfg.port.builder().start(move |_| {
        Server::new(
            FileServer::new(shared.clone()),
            HttpServer::new(http.clone()),
            sniff_limit,
            header_timeout,
            request_timeout,
            http.log.is_some(),
        )
    })
}
