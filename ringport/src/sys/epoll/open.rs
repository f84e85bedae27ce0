//! [`Sub::OpenBeneath`](crate::sys::Sub::OpenBeneath) on the worker thread.
//!
//! `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, as io_uring's `OPENAT2` does.
//! Where the kernel (before 5.6) or a seccomp profile refuses `openat2` itself, the path is
//! walked one component at a time with `openat(O_NOFOLLOW)`: stricter (no symlink is followed
//! at all, no `..`), never looser.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::op::neg;
use crate::sys::OpenHow;

/// Opens `path` beneath `dir` as `how` says; the new descriptor, or `-errno`. `openat2` is
/// remembered as missing once it is, so that the walk is used from then on.
pub(super) fn beneath(dir: i32, path: &CStr, how: &OpenHow, no_openat2: &mut bool) -> i32 {
    if !*no_openat2 {
        match openat2(dir, path, how) {
            r if r == -libc::ENOSYS || r == -libc::EPERM => {
                tracing::debug!("openat2 unavailable ({r}); opening by walking the path");
                *no_openat2 = true;
            }
            r => return r,
        }
    }
    walk(dir, path.to_bytes(), how.flags as i32)
}

fn openat2(dir: i32, path: &CStr, how: &OpenHow) -> i32 {
    let size = std::mem::size_of::<OpenHow>();
    loop {
        let (nr, p) = (libc::SYS_openat2, path.as_ptr());
        // SAFETY: `path` is NUL-terminated and `how` a live open_how of `size` bytes.
        match syscall!(syscall(nr, dir, p, how as *const OpenHow, size)) {
            Ok(fd) => return fd as i32,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return neg(&e),
        }
    }
}

/// The component walk: every directory opened `O_PATH | O_DIRECTORY | O_NOFOLLOW`, the file
/// with `flags` and `O_NOFOLLOW`. Absolute paths and `..` fail with `EXDEV` (as
/// `RESOLVE_BENEATH` reports escapes), symlinks with `ELOOP` or `ENOTDIR`.
pub(super) fn walk(dir: i32, path: &[u8], flags: i32) -> i32 {
    if path.first() == Some(&b'/') {
        return -libc::EXDEV;
    }
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    if parts.contains(&&b".."[..]) {
        return -libc::EXDEV;
    }
    let Some((last, dirs)) = parts.split_last() else {
        return match path.is_empty() {
            true => -libc::ENOENT,
            false => open_at(dir, b".", flags).unwrap_or_else(|e| e),
        };
    };
    let mut held: Option<OwnedFd> = None;
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    for part in dirs {
        let at = held.as_ref().map_or(dir, |fd| fd.as_raw_fd());
        match open_at(at, part, dir_flags) {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            Ok(fd) => held = Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) => return e,
        }
    }
    let at = held.as_ref().map_or(dir, |fd| fd.as_raw_fd());
    open_at(at, last, flags | libc::O_NOFOLLOW).unwrap_or_else(|e| e)
}

fn open_at(dir: i32, name: &[u8], flags: i32) -> Result<i32, i32> {
    let mut c = name.to_vec();
    c.push(0);
    loop {
        // SAFETY: `c` is a NUL-terminated name (split at '/', NUL-free as it came from a CStr).
        match syscall!(openat(dir, c.as_ptr().cast(), flags)) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(neg(&e)),
        }
    }
}
