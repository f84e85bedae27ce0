//! What the models' file services share: the confined open, the reply to a request and the
//! zero-copy send, with the error lines of `ringport serve`.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use ringport_servers::files::lines::Request;
use ringport_servers::files::reply::Refusal;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::ModelConfig;

/// Bytes one `sendfile` call may send: large enough that a transfer takes few calls, small
/// enough that one client's transfer does not hold a reactor thread for long.
pub(crate) const SEND_CHUNK: u64 = 1 << 20;

/// The served folder and the limits of the file service.
#[derive(Debug)]
pub(crate) struct FilesCtx {
    root: ringport::Dir,
    /// Longest name accepted.
    pub(crate) max_name: usize,
    /// A connection with no request and no progress for this long is closed.
    pub(crate) idle_timeout: Duration,
}

/// The answer to one request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The file, open, and its size.
    File(File, u64),
    /// An error line.
    Line(Vec<u8>),
}

impl FilesCtx {
    /// Opens the served folder.
    pub(crate) fn new(root: &Path, cfg: &ModelConfig) -> io::Result<Self> {
        Ok(FilesCtx {
            root: ringport_servers::files::open_root(root)?,
            max_name: cfg.max_name,
            idle_timeout: cfg.idle_timeout,
        })
    }

    /// The reply to `request`: the file opened beneath the served folder (`openat2` with
    /// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, the flags of ringport's own open), or the
    /// line saying why not.
    pub(crate) fn answer(&self, request: Request) -> Reply {
        let name = match request {
            Request::Name(name) => name,
            Request::TooLong => return Reply::Line(Refusal::NameTooLong.line(b"")),
            Request::Empty => return Reply::Line(Refusal::NoName.line(b"")),
        };
        match self.open(&name) {
            Ok((file, size)) => Reply::File(file, size),
            Err(refusal) => {
                tracing::debug!(name = %name.escape_ascii(), "refused: {}", refusal.reason());
                Reply::Line(refusal.line(&name))
            }
        }
    }

    fn open(&self, name: &[u8]) -> Result<(File, u64), Refusal> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let fd = rustix::fs::openat2(&self.root, name, flags, Mode::empty(), resolve)
            .map_err(|e| Refusal::from_open_error(&e.into()))?;
        let file = File::from(fd);
        match file.metadata() {
            Ok(meta) if meta.is_file() => Ok((file, meta.len())),
            Ok(_) => Err(Refusal::NotRegular),
            Err(e) => Err(Refusal::from_open_error(&e)),
        }
    }
}

/// The line told to a client over the connection limit.
pub(crate) fn busy_line() -> Vec<u8> {
    Refusal::Busy.line(b"")
}

/// Sends the bytes of `file` from `*offset` up to `end` (at most [`SEND_CHUNK`]) to
/// `socket` with `sendfile(2)` (the article's TransmitFile), advancing `*offset`; the bytes
/// sent. A file that ends early is [`io::ErrorKind::UnexpectedEof`].
pub(crate) fn send_chunk(
    socket: impl AsFd,
    file: &File,
    offset: &mut u64,
    end: u64,
) -> io::Result<usize> {
    let count = end.saturating_sub(*offset).min(SEND_CHUNK) as usize;
    match rustix::fs::sendfile(socket, file, Some(offset), count)? {
        0 if count > 0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ended before its size",
        )),
        n => Ok(n),
    }
}
