//! Linux: `statat` relative to the served folder's descriptor, `getdents64` through the
//! descriptor of an opened folder, `pread` and `TCP_CORK`.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use ringport::{BorrowedSocket, Dir};
use rustix::fs::{AtFlags, FileType};

use super::Found;
use crate::http::cache::Identity;
use crate::http::listing::Item;

/// What identifies an opened file's bytes, from its `fstat`.
pub(crate) fn identity(_file: &File, meta: &Metadata) -> Identity {
    Identity {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: (meta.mtime(), meta.mtime_nsec() as u32),
        ctime: (meta.ctime(), meta.ctime_nsec() as u32),
    }
}

/// What identifies the file at `path` beneath `root` (`statat`, following links), if it is a
/// regular file.
pub(crate) fn stat_beneath(root: &Dir, path: &[u8]) -> Option<Identity> {
    let st = rustix::fs::statat(root, path, AtFlags::empty()).ok()?;
    if !FileType::from_raw_mode(st.st_mode).is_file() {
        return None;
    }
    Some(Identity {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).ok()?,
        mtime: (st.st_mtime, st.st_mtime_nsec as u32),
        ctime: (st.st_ctime, st.st_ctime_nsec as u32),
    })
}

/// A folder opened beneath the served folder: its descriptor, read with `getdents64`.
#[derive(Debug)]
pub(crate) struct Folder(File);

/// What an open found: `openat2` opens folders too (`root` and `path` are not needed here).
pub(crate) fn found(file: io::Result<File>, _root: &Dir, _path: &[u8]) -> io::Result<Found> {
    let file = file?;
    let meta = file.metadata()?;
    Ok(if meta.is_dir() {
        Found::Folder(Folder(file))
    } else {
        Found::File(file, meta)
    })
}

/// The entries of `folder` (taken and closed), without `.` and `..`; `root` and `rel` (the
/// folder's path beneath `root`) are not needed here, the descriptor is read.
pub(crate) fn entries(folder: Folder, _root: &Dir, _rel: &[u8]) -> io::Result<Entries> {
    let dir = rustix::fs::Dir::new(folder.0)?;
    let fd = dir.fd()?.try_clone_to_owned()?;
    Ok(Entries { dir, fd })
}

/// An iterator over a folder's entries.
#[derive(Debug)]
pub(crate) struct Entries {
    dir: rustix::fs::Dir,
    fd: std::os::fd::OwnedFd,
}

impl Iterator for Entries {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<io::Result<Entry>> {
        loop {
            let entry = match self.dir.read()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e.into())),
            };
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Some(Ok(Entry {
                    name: entry.file_name().to_owned(),
                }));
            }
        }
    }
}

impl Entries {
    /// The listing line of `entry`, from `fstatat` without following links (a link's own
    /// size and date); `None` if it vanished meanwhile.
    pub(crate) fn item(&self, entry: Entry) -> Option<Item> {
        let st = rustix::fs::statat(&self.fd, &entry.name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        let kind = FileType::from_raw_mode(st.st_mode);
        Some(Item {
            name: entry.name.into_bytes(),
            dir: kind.is_dir(),
            link: kind.is_symlink(),
            size: u64::try_from(st.st_size).unwrap_or(0),
            modified: st.st_mtime,
        })
    }
}

/// One entry of a folder being listed.
#[derive(Debug)]
pub(crate) struct Entry {
    name: std::ffi::CString,
}

impl Entry {
    /// Its name, as on disk.
    pub(crate) fn name(&self) -> &[u8] {
        self.name.to_bytes()
    }
}

/// Fills `buf` from `file` at `offset` (`pread`).
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Sets `TCP_CORK` (nginx's `tcp_nopush`); whether it is now set as asked.
pub(crate) fn set_cork(socket: BorrowedSocket<'_>, on: bool) -> bool {
    rustix::net::sockopt::set_tcp_cork(socket, on).is_ok()
}

/// System error codes, for tests of error mapping.
#[cfg(test)]
pub(crate) mod code {
    pub(crate) const NOT_FOUND: i32 = libc::ENOENT;
    pub(crate) const OUTSIDE: i32 = libc::EXDEV;
    pub(crate) const LINK_LOOP: i32 = libc::ELOOP;
    pub(crate) const TOO_MANY: i32 = libc::EMFILE;
}
