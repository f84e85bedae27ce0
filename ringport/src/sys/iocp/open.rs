//! Opening a client-named file *beneath* a served folder, read-only: the Windows
//! counterpart of Linux `openat2(dir, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
//!
//! Windows has no `RESOLVE_BENEATH`, so confinement is built here in two layers.
//!
//! # 1. The name, checked as text ([`check_name`], no system calls, every platform)
//!
//! The client's bytes must be UTF-8 without NUL, relative, and are split on both `/` and
//! `\`. Empty and `.` components are dropped (`a//b`, `./a` are `a/b`, `a`; a trailing
//! separator is dropped too, so `a.txt/` opens `a.txt`). Refused, with the [`Refusal`]
//! that says why:
//!
//! * every `..` component, even one that would stay inside (`a/../b`): simplest, and no
//!   client needs it;
//! * absolute paths (`/x`, `\x`), drive paths (`C:x`, `C:\x`, `c:/x`), UNC and device
//!   namespace paths (`\\server\share`, `\\?\C:\x`, `\\.\NUL`, `//?/C:/x`, `\??\C:\x`);
//! * any `:` in a component: alternate data streams (`a.txt:s`, `a.txt::$DATA`);
//! * characters Windows does not allow in names: `< > " | ? *` and controls 1–31;
//! * reserved DOS device names as any component, ASCII case-insensitive, with or
//!   without an extension and trailing dots or spaces: `CON`, `PRN`, `AUX`, `NUL`,
//!   `COM0`–`COM9`, `LPT0`–`LPT9`, `COM¹ COM² COM³ LPT¹ LPT² LPT³`, `CONIN$`, `CONOUT$`,
//!   `CLOCK$` (so `nul.txt`, `a/aux.c`, `COM1 `, `lpt9.log` are refused);
//! * components ending in a dot or a space (`a.txt.`, `a.txt `): Win32 strips them, so
//!   the name the client sent would not be the name opened.
//!
//! # 2. The open, walked one component at a time (Windows only)
//!
//! Each component is opened with `NtCreateFile` whose `RootDirectory` is the handle of
//! its parent (the served folder's handle for the first one) and whose name is that
//! single component, with `FILE_OPEN_REPARSE_POINT`. NT never interprets `..`, drive
//! letters or DOS device names in a name relative to a handle, and with
//! `FILE_OPEN_REPARSE_POINT` a symbolic link, junction or mount point is opened *itself*
//! rather than followed. Its attributes are then read from the handle
//! (`GetFileInformationByHandleEx(FileAttributeTagInfo)`), and **every reparse point is
//! refused**, also one whose target stays inside the folder (simplest; serving through
//! links is not needed). Intermediate components must be directories
//! (`FILE_DIRECTORY_FILE`); the last one is a disk file or directory (`GetFileType ==
//! FILE_TYPE_DISK`), as `openat2` opens either: the caller tells them apart by the handle's
//! metadata, and the name `.` is a new handle to the folder itself. Because each step is
//! relative to a handle already held, renaming or replacing a parent directory while the
//! walk runs cannot redirect it outside the folder.
//!
//! Last, as a second line of defence, the opened file's final path
//! (`GetFinalPathNameByHandleW`, normalized, NT volume name) must lie under the served
//! folder's final path, else [`Refusal::Outside`]. On Windows the reparse-point check
//! already guarantees this; under Wine it is the check that matters, because Wine 8
//! shows a Unix symbolic link as the plain file or directory it points to (attributes
//! `0x20`/`0x10`, no `FILE_ATTRIBUTE_REPARSE_POINT`) and follows it, but reports the
//! resolved path as the final path.
//!
//! The file is opened with `FILE_GENERIC_READ`, sharing read and delete (not write), and
//! *without* `FILE_SYNCHRONOUS_IO_*`: it is an asynchronous handle, the NT form of
//! `FILE_FLAG_OVERLAPPED`, ready for a completion port, `ReadFile` with an `OVERLAPPED`,
//! or `TransmitFile`. An asynchronous handle has no file position: std's `Read` on the
//! returned `File` fails (`ERROR_INVALID_PARAMETER`, seen under Wine); std's
//! `FileExt::seek_read` works (it waits for the completion).
//!
//! Cost per open: one `NtCreateFile` and one attribute query per component, plus two
//! `GetFinalPathNameByHandleW` calls (the file's and the folder's).
//!
//! # Errors
//!
//! | case | `io::ErrorKind` | payload / raw code |
//! | --- | --- | --- |
//! | name refused by layer 1, a reparse point met in layer 2, or a final path outside | `PermissionDenied` | a [`Refusal`]; [`is_escape`] is true, [`refusal`] says which |
//! | a component does not exist | `NotFound` | raw 2 or 3 (`ERROR_FILE_NOT_FOUND` / `ERROR_PATH_NOT_FOUND`) |
//! | the last component is not a disk file | `InvalidInput` | message "not a regular file: ..." |
//! | an intermediate component is a file | `NotADirectory` | raw 267 (`ERROR_DIRECTORY`) |
//! | anything else | as Windows gives it | raw Win32 code from `RtlNtStatusToDosError` (e.g. 32 sharing violation, 5 access denied) |
//!
//! Only a [`Refusal`] means "outside the served folder / forbidden name": a plain
//! `ERROR_ACCESS_DENIED` from the file system (an ACL) is `PermissionDenied` too but
//! [`is_escape`] is false for it. On Linux `openat2` reports an escape as `EXDEV`; map
//! `is_escape(&e)` to the same "outside the served folder" line.
//!
//! # What differs from `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//!
//! * `..` is refused even where it stays inside (`openat2` allows `a/../b`).
//! * Every symbolic link is refused, even one that stays inside (`openat2` with only
//!   `RESOLVE_BENEATH` follows links that stay beneath). The served folder itself (the
//!   handle from [`open_dir`]) may be reached through links: it is the operator's choice.
//! * Names are stricter: device names, `:`, `<>"|?*`, control characters and trailing
//!   dots/spaces are refused; these are all legal on Linux.
//! * A trailing separator is ignored (`a.txt/` opens the file; Linux gives `ENOTDIR`).
//! * Like `openat2`, hard links are not detected: a hard link inside the folder to a file
//!   elsewhere on the same volume is served. So are 8.3 short names (`LONGNA~1.TXT`),
//!   which always name an entry of the same directory, and NTFS metafiles such as `$MFT`
//!   if the served folder is a volume root (the file system denies those to non-admins).
//! * Lookups are case-insensitive (`OBJ_CASE_INSENSITIVE`), as with `CreateFileW`.
//! * Under Wine (8.0) Unix symbolic links are not reparse points: one whose target
//!   stays inside the folder is followed and served; one that leaves is refused by the
//!   final-path check ([`Refusal::Outside`]). Wine 8's `CreateSymbolicLinkW` reports
//!   success and creates nothing, and `FSCTL_SET_REPARSE_POINT` fails (error 50), so the
//!   Windows reparse-point refusal itself is only exercised on real Windows.

use std::error::Error;
use std::fmt;
use std::io;

/// Why a client's name was refused: the payload of a confinement error.
///
/// Carried inside an [`io::Error`] of kind [`io::ErrorKind::PermissionDenied`]; test for it
/// with [`is_escape`] and read it with [`refusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The name is empty.
    Empty,
    /// The name contains a NUL byte.
    NulByte,
    /// The name is not valid UTF-8.
    NotUtf8,
    /// The name starts with a separator (`/x`, `\x`).
    Absolute,
    /// The name is a UNC or device-namespace path (`\\server\share`, `\\?\`, `\\.\`, `\??\`).
    Unc,
    /// The name starts with a drive letter (`C:x`, `C:\x`).
    Drive,
    /// The name has a `..` component.
    ParentDir,
    /// A component has a `:`: an alternate data stream (`name:stream`, `name::$DATA`).
    Stream,
    /// A component has a character Windows does not allow in names (`<>"|?*`, 1–31).
    BadChar,
    /// A component is a reserved DOS device name (`CON`, `nul.txt`, `COM1`, ...).
    Device,
    /// A component ends in a dot or a space, which Win32 would strip.
    TrailingDotOrSpace,
    /// A component is a symbolic link, junction, mount point or other reparse point.
    ReparsePoint,
    /// The opened file's final path is not under the served folder's final path (a link
    /// that the file system does not report as a reparse point, e.g. a Unix symlink
    /// under Wine).
    Outside,
}

impl Refusal {
    /// Whether no file can have such a name on Windows (bad characters, trailing dots or
    /// spaces, empty, NUL, not UTF-8), as opposed to a name that points somewhere it must not
    /// (`..`, absolute, drive, UNC, device, stream, reparse point, outside): the servers
    /// answer the first "no such file", as Linux does, and the second "outside the served
    /// folder".
    pub(crate) fn cannot_exist(self) -> bool {
        matches!(
            self,
            Self::Empty | Self::NulByte | Self::NotUtf8 | Self::BadChar | Self::TrailingDotOrSpace
        )
    }

    /// A short human-readable reason, e.g. "a device name".
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Empty => "an empty name",
            Self::NulByte => "a NUL byte in the name",
            Self::NotUtf8 => "a name that is not UTF-8",
            Self::Absolute => "an absolute path",
            Self::Unc => "a UNC or device-namespace path",
            Self::Drive => "a drive path",
            Self::ParentDir => "leaves the folder (`..`)",
            Self::Stream => "an alternate data stream (`:`)",
            Self::BadChar => "a character not allowed in Windows names",
            Self::Device => "a device name",
            Self::TrailingDotOrSpace => "a name ending in a dot or space",
            Self::ReparsePoint => "a symbolic link, junction or other reparse point",
            Self::Outside => "resolves outside the folder",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused, outside the served folder or forbidden: {}",
            self.reason()
        )
    }
}

impl Error for Refusal {}

impl From<Refusal> for io::Error {
    fn from(refusal: Refusal) -> Self {
        io::Error::new(io::ErrorKind::PermissionDenied, refusal)
    }
}

/// The [`Refusal`] inside `err`, if `err` is a confinement error from this module.
pub(crate) fn refusal(err: &io::Error) -> Option<Refusal> {
    if err.kind() != io::ErrorKind::PermissionDenied {
        return None;
    }
    err.get_ref()?.downcast_ref::<Refusal>().copied()
}

/// Whether `err` is a confinement error: the name leaves the served folder or is forbidden.
///
/// This is what Linux reports as `EXDEV` from `openat2(RESOLVE_BENEATH)`. A
/// `PermissionDenied` from the file system itself (an ACL) is *not* an escape.
pub(crate) fn is_escape(err: &io::Error) -> bool {
    refusal(err).is_some()
}

/// Whether `b` separates components: `/` or `\`.
fn is_sep(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Checks a client's name as text and splits it into its components.
///
/// Pure (no system calls), so it runs on every platform. Returns the components to open
/// one after the other, with empty and `.` components dropped; an empty list means the
/// folder itself (the name was `.` or `./`). See the module documentation for what is
/// refused.
pub(crate) fn check_name(path: &[u8]) -> Result<Vec<&str>, Refusal> {
    if path.contains(&0) {
        return Err(Refusal::NulByte);
    }
    let text = std::str::from_utf8(path).map_err(|_| Refusal::NotUtf8)?;
    let bytes = text.as_bytes();
    match bytes {
        [] => return Err(Refusal::Empty),
        // `\\server`, `\\?\`, `\\.\`, `//?/`.
        [a, b, ..] if is_sep(*a) && is_sep(*b) => return Err(Refusal::Unc),
        // `\??\C:\x`: the NT object namespace.
        [a, b'?', b'?', d, ..] if is_sep(*a) && is_sep(*d) => return Err(Refusal::Unc),
        [a, ..] if is_sep(*a) => return Err(Refusal::Absolute),
        [letter, b':', ..] if letter.is_ascii_alphabetic() => return Err(Refusal::Drive),
        _ => {}
    }
    let mut names = Vec::new();
    for name in text.split(['/', '\\']) {
        match name {
            "" | "." => {}
            ".." => return Err(Refusal::ParentDir),
            _ => {
                check_component(name)?;
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Checks one component (not empty, not `.` or `..`, without separators).
fn check_component(name: &str) -> Result<(), Refusal> {
    if name.contains(':') {
        return Err(Refusal::Stream);
    }
    if name
        .chars()
        .any(|c| c < ' ' || matches!(c, '<' | '>' | '"' | '|' | '?' | '*'))
    {
        return Err(Refusal::BadChar);
    }
    if is_device_name(name) {
        return Err(Refusal::Device);
    }
    if name.ends_with(['.', ' ']) {
        return Err(Refusal::TrailingDotOrSpace);
    }
    Ok(())
}

/// Whether Win32 would take the component `name` for a DOS device.
///
/// The part before the first dot, with trailing spaces removed, is compared ASCII
/// case-insensitively with the reserved names (Microsoft's "Naming Files, Paths, and
/// Namespaces": `CON PRN AUX NUL COM0-9 COM¹²³ LPT0-9 LPT¹²³`, plus the console names
/// `CONIN$ CONOUT$` and the old `CLOCK$`).
fn is_device_name(name: &str) -> bool {
    const WHOLE: [&str; 7] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"];
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    if WHOLE.iter().any(|d| stem.eq_ignore_ascii_case(d)) {
        return true;
    }
    let (Some(head), Some(digit)) = (stem.get(..3), stem.get(3..)) else {
        return false;
    };
    (head.eq_ignore_ascii_case("COM") || head.eq_ignore_ascii_case("LPT"))
        && (matches!(digit.as_bytes(), [b'0'..=b'9']) || matches!(digit, "¹" | "²" | "³"))
}

/// Whether the path `inner` lies strictly under the directory path `outer`
/// (both final paths of open handles, so spelled the same way). Pure, every platform.
fn is_under(inner: &[u16], outer: &[u16]) -> bool {
    const SEP: u16 = b'\\' as u16;
    let Some(rest) = inner.strip_prefix(outer) else {
        return false;
    };
    // A volume root's path ends in a separator; any other needs one next.
    !rest.is_empty() && (outer.last() == Some(&SEP) || rest[0] == SEP)
}

#[cfg(windows)]
pub(crate) use imp::{open_beneath, open_dir};

/// The Windows system calls: the component-by-component walk.
#[cfg(windows)]
mod imp {
    use super::{check_name, is_under, Refusal};
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::fs::OpenOptionsExt;
    use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
    use std::path::Path;
    use std::ptr;

    use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
    use windows_sys::Wdk::Storage::FileSystem::{
        NtCreateFile, FILE_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_REPARSE_POINT,
        FILE_SYNCHRONOUS_IO_NONALERT,
    };
    use windows_sys::Win32::Foundation::{
        RtlNtStatusToDosError, NTSTATUS, OBJ_CASE_INSENSITIVE, STATUS_REPARSE_POINT_ENCOUNTERED,
        STATUS_STOPPED_ON_SYMLINK, UNICODE_STRING,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        FileAttributeTagInfo, GetFileInformationByHandleEx, GetFileType, GetFinalPathNameByHandleW,
        FILE_ATTRIBUTE_REPARSE_POINT, FILE_ATTRIBUTE_TAG_INFO, FILE_FLAG_BACKUP_SEMANTICS,
        FILE_GENERIC_READ, FILE_NAME_NORMALIZED, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE,
        FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_TRAVERSE, FILE_TYPE_DISK, SYNCHRONIZE,
        VOLUME_NAME_NT,
    };
    use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

    /// Opens a directory to serve (`FILE_FLAG_BACKUP_SEMANTICS`), for [`open_beneath`].
    ///
    /// `path` is the operator's, not a client's: it is opened as given, following links.
    /// Fails with `NotADirectory` if it names something other than a directory.
    pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedHandle> {
        let dir = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "the folder to serve is not a directory",
            ));
        }
        Ok(dir.into())
    }

    /// Opens `path` (UTF-8, relative, `/` or `\` separated, as a client sent it) beneath
    /// `dir` (a directory handle from [`open_dir`]), read-only, for overlapped I/O, sharing
    /// read and delete.
    ///
    /// Refuses, with a [`Refusal`] (see [`super::is_escape`]), every name that could leave
    /// the folder or that Windows would not open as sent, and every reparse point on the
    /// way. The last component is a regular file or a directory (as `openat2` opens either:
    /// the caller tells them apart by the handle's metadata); the name `.` is the served
    /// folder itself (a new handle to it). See the module documentation for the whole error
    /// mapping.
    pub(crate) fn open_beneath(dir: BorrowedHandle<'_>, path: &[u8]) -> io::Result<File> {
        let names = check_name(path)?;
        let Some((last, parents)) = names.split_last() else {
            return Ok(File::from(dir.try_clone_to_owned()?));
        };
        let mut parent: Option<OwnedHandle> = None;
        for name in parents {
            let at = parent.as_ref().map_or(dir, AsHandle::as_handle);
            let next = nt_open(
                at,
                name,
                FILE_TRAVERSE | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                FILE_DIRECTORY_FILE | FILE_OPEN_REPARSE_POINT | FILE_SYNCHRONOUS_IO_NONALERT,
            )?;
            if attributes(next.as_handle())? & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                return Err(Refusal::ReparsePoint.into());
            }
            parent = Some(next);
        }
        let at = parent.as_ref().map_or(dir, AsHandle::as_handle);
        // No FILE_SYNCHRONOUS_IO_*: an asynchronous (overlapped) handle. Neither
        // FILE_DIRECTORY_FILE nor FILE_NON_DIRECTORY_FILE: a file or a folder.
        let file = nt_open(
            at,
            last,
            FILE_GENERIC_READ,
            FILE_SHARE_READ | FILE_SHARE_DELETE,
            FILE_OPEN_REPARSE_POINT,
        )?;
        if attributes(file.as_handle())? & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(Refusal::ReparsePoint.into());
        }
        // SAFETY: `file` is an open handle owned by this function for the whole call.
        if unsafe { GetFileType(file.as_raw_handle()) } != FILE_TYPE_DISK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file: not a disk file",
            ));
        }
        if !is_under(&final_path(file.as_handle())?, &final_path(dir)?) {
            return Err(Refusal::Outside.into());
        }
        Ok(File::from(file))
    }

    /// The normalized final path of an open handle, with the NT volume name
    /// (`\Device\HarddiskVolume3\...`), which exists even for a volume without a
    /// drive letter.
    fn final_path(handle: BorrowedHandle<'_>) -> io::Result<Vec<u16>> {
        let mut buf = vec![0u16; 512];
        loop {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            // SAFETY: `handle` is open for the call; `buf` is writable for `len` u16s.
            let n = unsafe {
                GetFinalPathNameByHandleW(
                    handle.as_raw_handle(),
                    buf.as_mut_ptr(),
                    len,
                    FILE_NAME_NORMALIZED | VOLUME_NAME_NT,
                )
            } as usize;
            if n == 0 {
                return Err(io::Error::last_os_error());
            }
            if n < buf.len() {
                // Success: `n` characters, without the terminating NUL.
                buf.truncate(n);
                return Ok(buf);
            }
            // Too small: `n` is the size needed, NUL included.
            buf.resize(n, 0);
        }
    }

    /// `NtCreateFile(FILE_OPEN)` of the single component `name` relative to the directory
    /// handle `at`, case-insensitively, with the given access, sharing and options.
    fn nt_open(
        at: BorrowedHandle<'_>,
        name: &str,
        access: u32,
        share: u32,
        options: u32,
    ) -> io::Result<OwnedHandle> {
        let wide: Vec<u16> = name.encode_utf16().collect();
        let Ok(len) = u16::try_from(wide.len() * 2) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
        };
        let object_name = UNICODE_STRING {
            Length: len,
            MaximumLength: len,
            // NtCreateFile only reads the name.
            Buffer: wide.as_ptr().cast_mut(),
        };
        let attributes = OBJECT_ATTRIBUTES {
            Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: at.as_raw_handle(),
            ObjectName: &object_name,
            Attributes: OBJ_CASE_INSENSITIVE,
            SecurityDescriptor: ptr::null(),
            SecurityQualityOfService: ptr::null(),
        };
        let mut handle = ptr::null_mut();
        let mut io_status = IO_STATUS_BLOCK::default();
        // SAFETY: `handle` and `io_status` are writable locals; `attributes` and the
        // `object_name`/`wide` it points to live until the call returns, `Length` is the
        // byte length of `wide`, and `RootDirectory` is an open handle borrowed for the
        // call; allocation size and EA buffer are null with length 0, as allowed for
        // FILE_OPEN.
        let status = unsafe {
            NtCreateFile(
                &mut handle,
                access,
                &attributes,
                &mut io_status,
                ptr::null(),
                0,
                share,
                FILE_OPEN,
                options,
                ptr::null(),
                0,
            )
        };
        if status < 0 {
            return Err(status_error(status));
        }
        // SAFETY: NtCreateFile succeeded, so `handle` is a new open handle that nothing
        // else owns or closes.
        Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
    }

    /// The `io::Error` for a failed `NtCreateFile` status.
    fn status_error(status: NTSTATUS) -> io::Error {
        match status {
            STATUS_REPARSE_POINT_ENCOUNTERED | STATUS_STOPPED_ON_SYMLINK => {
                Refusal::ReparsePoint.into()
            }
            _ => {
                // SAFETY: a pure lookup from one status value to a Win32 code; no pointers.
                let code = unsafe { RtlNtStatusToDosError(status) };
                io::Error::from_raw_os_error(code as i32)
            }
        }
    }

    /// The `FILE_ATTRIBUTE_*` bits of an open handle (which has `FILE_READ_ATTRIBUTES`).
    fn attributes(handle: BorrowedHandle<'_>) -> io::Result<u32> {
        let mut info = FILE_ATTRIBUTE_TAG_INFO::default();
        // SAFETY: `handle` is open for the call; `info` is a writable
        // FILE_ATTRIBUTE_TAG_INFO and the size passed is its size, as
        // FileAttributeTagInfo requires.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                handle.as_raw_handle(),
                FileAttributeTagInfo,
                (&raw mut info).cast(),
                size_of::<FILE_ATTRIBUTE_TAG_INFO>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info.FileAttributes)
    }
}

#[cfg(test)]
mod tests;
