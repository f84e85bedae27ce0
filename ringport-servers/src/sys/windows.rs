//! Windows: file identity from the handle (`GetFileInformationByHandle`,
//! `GetFileInformationByHandleEx(FileBasicInfo)`), folders listed by path with `read_dir`,
//! positioned reads with `seek_read`, and no `TCP_CORK`.
//!
//! # Paths beneath the served folder
//! The core opens client-named files one component at a time relative to handles
//! ([`ringport::Dir`]); a *stat* or a *listing* has no such call in std, so here they go by
//! path, `root.path()` joined with the relative path. Only paths that already passed the
//! server's routing (no `..`, NUL or backslash) come here, and each is checked again as text
//! ([`plain`]): no drive, stream (`:`), device name or other name Windows would rewrite, so
//! the joined path names an entry beneath the folder.
//!
//! - [`stat_beneath`] follows links, as Linux `statat` without `AT_SYMLINK_NOFOLLOW` does. It
//!   only decides whether cached bytes, read from a file opened *confined*, are still that
//!   file's (a link pointing elsewhere has another volume or file index: a miss, and a miss
//!   opens the file confined again), or whether a precompressed side file is worth a confined
//!   open. It never serves anything by itself.
//! - [`entries`] lists a folder the confined open reached ([`found`]: it opens folders as
//!   `openat2` does), again by path: the folder must not be a reparse point and its canonical
//!   path must lie under the served folder's (as the core's final-path check, which also catches Wine's Unix
//!   symlinks); entries that are reparse points (symlinks, junctions, mount points) are left
//!   out, as the core never opens them.

use std::fs::{File, Metadata};
use std::io;
use std::os::windows::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use ringport::{BorrowedSocket, Dir};
use windows_sys::Win32::Storage::FileSystem as fs;

use super::Found;
use crate::http::cache::Identity;
use crate::http::listing::Item;

/// Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01.
const FILETIME_TO_UNIX: i64 = 11_644_473_600;
/// FILETIME ticks (100 ns) per second.
const TICKS: i64 = 10_000_000;

/// A FILETIME (100 ns ticks since 1601) as seconds and nanoseconds since 1970.
fn unix_time(ticks: i64) -> (i64, u32) {
    (
        ticks.div_euclid(TICKS) - FILETIME_TO_UNIX,
        (ticks.rem_euclid(TICKS) * 100) as u32,
    )
}

/// The identity of an open file, and whether it is a folder.
fn by_handle(file: &File) -> io::Result<(Identity, bool)> {
    let handle = file.as_raw_handle();
    let mut info = fs::BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `handle` is open for the duration of the call (borrowed from `file`) and
    // `info` is a writable BY_HANDLE_FILE_INFORMATION.
    if unsafe { fs::GetFileInformationByHandle(handle, &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut basic = fs::FILE_BASIC_INFO::default();
    // SAFETY: as above; `basic` is a writable FILE_BASIC_INFO of the size passed, the buffer
    // FileBasicInfo asks for.
    let ok = unsafe {
        fs::GetFileInformationByHandleEx(
            handle,
            fs::FileBasicInfo,
            (&mut basic as *mut fs::FILE_BASIC_INFO).cast(),
            std::mem::size_of::<fs::FILE_BASIC_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let identity = Identity {
        dev: u64::from(info.dwVolumeSerialNumber),
        ino: u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
        size: u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow),
        mtime: unix_time(basic.LastWriteTime),
        // ChangeTime moves on every write and attribute change, and no user can set it back:
        // the counterpart of Unix `ctime`.
        ctime: unix_time(basic.ChangeTime),
    };
    let folder = info.dwFileAttributes & fs::FILE_ATTRIBUTE_DIRECTORY != 0;
    Ok((identity, folder))
}

/// What identifies an opened file's bytes: volume serial number, file index, size, last write
/// and change times, read from its handle.
pub(crate) fn identity(file: &File, meta: &Metadata) -> Identity {
    by_handle(file).map(|(id, _)| id).unwrap_or_else(|_| {
        // Unreadable identity: volume and index 0 never match a later stat (which reads the
        // real ones, or fails), so such an entry is never a cache hit.
        let mtime = unix_time(meta.last_write_time() as i64);
        Identity {
            dev: 0,
            ino: 0,
            size: meta.len(),
            mtime,
            ctime: mtime,
        }
    })
}

/// Whether `path` (relative, `/`-separated, already routed) is a plain name Windows takes as
/// written, and names an entry beneath the folder when joined to it: no `..`, no
/// separators other than `/`, no drive or stream (`:`), no characters Windows refuses, no
/// component ending in a dot or space (Win32 strips them), no DOS device name (`CON`,
/// `nul.txt`, `COM1`…). Stricter than needed, never looser than the core's confined open.
fn plain(path: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(path).ok()?;
    let ok = text.split('/').all(|c| {
        !c.is_empty()
            && (c == "." || !c.ends_with(['.', ' ']))
            && !c
                .chars()
                .any(|ch| ch < ' ' || matches!(ch, '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*'))
            && !is_device(c)
    });
    (ok && !text.starts_with('/')).then_some(text)
}

/// Whether `name` is a reserved DOS device name, with or without an extension.
fn is_device(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = base.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" | "CLOCK$" => true,
        _ => upper
            .strip_prefix("COM")
            .or_else(|| upper.strip_prefix("LPT"))
            .is_some_and(|n| {
                matches!(n, "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9")
                    || matches!(n, "\u{b9}" | "\u{b2}" | "\u{b3}")
            }),
    }
}

/// `root`'s path joined with `rel` (`.` is the folder itself), if `rel` is [`plain`].
fn beneath(root: &Dir, rel: &[u8]) -> Option<PathBuf> {
    let text = plain(rel)?;
    let mut path = root.path().to_path_buf();
    path.extend(text.split('/').filter(|c| *c != "."));
    Some(path)
}

/// What identifies the file at `path` beneath `root`, if it is a file (not a folder). It
/// follows links, as on Linux (see the module's documentation).
pub(crate) fn stat_beneath(root: &Dir, path: &[u8]) -> Option<Identity> {
    let path = beneath(root, path)?;
    let file = File::options()
        .access_mode(fs::FILE_READ_ATTRIBUTES)
        .share_mode(fs::FILE_SHARE_READ | fs::FILE_SHARE_WRITE | fs::FILE_SHARE_DELETE)
        // Needed to open a folder at all (it is then refused below).
        .custom_flags(fs::FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
        .ok()?;
    match by_handle(&file) {
        Ok((identity, false)) => Some(identity),
        _ => None,
    }
}

/// A folder the confined open reached. Listed by path: see [`entries`].
#[derive(Debug)]
pub(crate) struct Folder(());

/// What an open of `path` beneath `root` found: a file, or a folder (the confined open
/// opens either, as `openat2` does on Linux).
pub(crate) fn found(file: io::Result<File>, _root: &Dir, _path: &[u8]) -> io::Result<Found> {
    let file = file?;
    let meta = file.metadata()?;
    Ok(if meta.is_dir() {
        Found::Folder(Folder(()))
    } else {
        Found::File(file, meta)
    })
}

/// Refuses a folder that may not be listed.
fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why)
}

/// The entries of the folder `rel` beneath `root` (see the module's documentation).
pub(crate) fn entries(_folder: Folder, root: &Dir, rel: &[u8]) -> io::Result<Entries> {
    let path = beneath(root, rel).ok_or_else(|| refused("not a plain name"))?;
    let meta = std::fs::symlink_metadata(&path)?;
    if meta.file_attributes() & fs::FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(refused("a reparse point"));
    }
    if !std::fs::canonicalize(&path)?.starts_with(std::fs::canonicalize(root.path())?) {
        return Err(refused("outside the served folder"));
    }
    Ok(Entries(std::fs::read_dir(path)?))
}

/// An iterator over a folder's entries.
#[derive(Debug)]
pub(crate) struct Entries(std::fs::ReadDir);

impl Iterator for Entries {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<io::Result<Entry>> {
        loop {
            let entry = match self.0.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            // A name that is not Unicode (unpaired surrogates) could not be linked to.
            if let Ok(name) = entry.file_name().into_string() {
                return Some(Ok(Entry { name, entry }));
            }
        }
    }
}

impl Entries {
    /// The listing line of `entry`, from the folder read itself (not following links);
    /// `None` for a reparse point (never served) or an entry that vanished.
    pub(crate) fn item(&self, entry: Entry) -> Option<Item> {
        let meta = entry.entry.metadata().ok()?;
        if meta.file_attributes() & fs::FILE_ATTRIBUTE_REPARSE_POINT != 0
            || meta.file_type().is_symlink()
        {
            return None;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Some(Item {
            name: entry.name.into_bytes(),
            dir: meta.is_dir(),
            link: false,
            size: meta.len(),
            modified,
        })
    }
}

/// One entry of a folder being listed.
#[derive(Debug)]
pub(crate) struct Entry {
    name: String,
    entry: std::fs::DirEntry,
}

impl Entry {
    /// Its name (UTF-8).
    pub(crate) fn name(&self) -> &[u8] {
        self.name.as_bytes()
    }
}

/// Fills `buf` from `file` at `offset`. Files opened beneath a [`Dir`] are asynchronous
/// handles: std's `Read` fails on them, `seek_read` works (it waits for the read).
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Windows has no `TCP_CORK` (and `TransmitFile` sends a file's range in full segments by
/// itself): nothing to set, so never corked.
pub(crate) fn set_cork(_socket: BorrowedSocket<'_>, _on: bool) -> bool {
    false
}

/// System error codes, for tests of error mapping.
#[cfg(test)]
pub(crate) mod code {
    use windows_sys::Win32::Foundation as found;

    pub(crate) const NOT_FOUND: i32 = found::ERROR_FILE_NOT_FOUND as i32;
    pub(crate) const OUTSIDE: i32 = found::ERROR_NOT_SAME_DEVICE as i32;
    pub(crate) const LINK_LOOP: i32 = found::ERROR_CANT_RESOLVE_FILENAME as i32;
    pub(crate) const TOO_MANY: i32 = found::ERROR_TOO_MANY_OPEN_FILES as i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_joined() {
        for ok in [".", "a", "a/b.txt", "dir/index.html", "caf\u{e9}", "a b"] {
            assert!(plain(ok.as_bytes()).is_some(), "{ok:?}");
        }
        for bad in [
            "",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "C:",
            "C:/x",
            "a:s",
            "a\\b",
            "con",
            "a/NUL.txt",
            "COM1",
            "lpt9.log",
            "a.",
            "a ",
            "a/b.",
            "x?",
            "x*",
            "a\u{1}",
        ] {
            assert!(plain(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(plain(b"\xff").is_none());
        assert!(!is_device("console") && !is_device("com10") && !is_device("nully"));
    }

    #[test]
    fn filetime_to_unix() {
        assert_eq!(unix_time(FILETIME_TO_UNIX * TICKS), (0, 0));
        assert_eq!(unix_time(FILETIME_TO_UNIX * TICKS + 15), (0, 1500));
        assert_eq!(unix_time(FILETIME_TO_UNIX * TICKS - 1), (-1, 999_999_900));
    }
}
