//! [`Dir`]: a folder whose files are opened beneath it, never outside
//! ([`crate::Io::open_beneath`]), and [`OpenFailure`]: why such an open failed, the same on
//! every platform.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::{self, DirHandle};

/// A folder opened for serving its files: [`crate::Io::open_beneath`] resolves names beneath
/// it and never leaves it.
///
/// How the confinement is enforced differs by platform:
/// - Linux: the kernel resolves the name (`openat2` with `RESOLVE_BENEATH |
///   RESOLVE_NO_MAGICLINKS`) relative to an `O_PATH` descriptor of the folder: `..` that
///   leaves it, absolute paths, symlinks that point outside and `/proc` magic links fail.
/// - Windows (no such flag there): the name is checked and then opened one component at a
///   time, each relative to the handle of its parent, so nothing is resolved from a path
///   string the client wrote. Refused: `..`, absolute, drive, UNC and device paths (`\\?\`,
///   `\\.\`), reserved device names (`CON`, `NUL`, `COM1`…, with any extension), alternate
///   data streams (`name:stream`), names Windows would silently change (trailing dots or
///   spaces), and every reparse point (symlinks, junctions, mount points), even one that
///   stays inside the folder.
#[derive(Debug)]
pub struct Dir {
    handle: DirHandle,
    path: PathBuf,
}

impl Dir {
    /// Opens the folder at `path`.
    ///
    /// # Errors
    /// When it cannot be opened or is not a folder.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Dir> {
        let path = path.as_ref();
        let handle = DirHandle::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
        Ok(Dir {
            handle,
            path: path.to_path_buf(),
        })
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn handle(&self) -> &DirHandle {
        &self.handle
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.handle.as_fd()
    }
}

/// Why an open beneath a [`Dir`] failed, in the same terms on every platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenFailure {
    /// No such file (or a folder on the way is missing).
    NotFound,
    /// The name leaves the folder, or is one that is never served (a device name, a
    /// stream, a reparse point on Windows).
    Outside,
    /// Not a regular file (a socket, a device, a folder where a file was asked for).
    NotRegular,
    /// Too many symbolic links, or a link where none may be.
    LinkLoop,
    /// The name is too long.
    NameTooLong,
    /// Permission denied.
    PermissionDenied,
    /// Out of descriptors or memory for now: try again later.
    Busy,
    /// Anything else.
    Other,
}

impl OpenFailure {
    /// Classifies the error an open beneath a [`Dir`] failed with.
    pub fn of(error: &io::Error) -> OpenFailure {
        sys::open_failure(error)
    }
}

impl fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenFailure::NotFound => "no such file",
            OpenFailure::Outside => "outside the served folder",
            OpenFailure::NotRegular => "not a regular file",
            OpenFailure::LinkLoop => "too many levels of symbolic links",
            OpenFailure::NameTooLong => "name too long",
            OpenFailure::PermissionDenied => "permission denied",
            OpenFailure::Busy => "busy, try again later",
            OpenFailure::Other => "cannot open",
        })
    }
}
