//! This process's descriptors: raising the limit, counting and listing them.
//!
//! A count means something only while no other test of the binary opens descriptors: tests
//! that count take turns with [`fd_counting`].

use std::fmt::Display;
use std::sync::{Mutex, MutexGuard};

use crate::backends::backends;

/// Raises the soft descriptor limit to the hard one.
///
/// # Panics
/// If the limit cannot be read or set.
pub fn raise_fd_limit() {
    ringport::raise_fd_limit().expect("raising the descriptor limit");
}

/// Number of open descriptors of this process (on Windows: handles, `GetProcessHandleCount`).
#[cfg(unix)]
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
        // read_dir's own descriptor is listed too.
        .saturating_sub(1)
}

/// Number of open descriptors of this process (on Windows: handles, `GetProcessHandleCount`).
#[cfg(windows)]
pub fn fd_count() -> usize {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};
    let mut count = 0u32;
    // SAFETY: the pseudo handle of this process needs no closing; `count` is a valid out
    // parameter.
    let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) };
    assert_ne!(
        ok,
        0,
        "GetProcessHandleCount: {}",
        std::io::Error::last_os_error()
    );
    count as usize
}

/// The descriptors of this process, with what they point to, for failure messages (Windows
/// cannot list them: only the count).
#[cfg(windows)]
pub fn fd_list() -> Vec<String> {
    vec![format!("{} handles (Windows cannot list them)", fd_count())]
}

/// The descriptors of this process, with what they point to, for failure messages.
#[cfg(unix)]
pub fn fd_list() -> Vec<String> {
    let mut list: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    list.sort();
    list
}

/// A turn for a test that counts this process's descriptors: the tests of one binary that
/// count take turns. The backends are probed first (probing opens and closes ports).
pub fn fd_counting() -> MutexGuard<'static, ()> {
    static COUNTING: Mutex<()> = Mutex::new(());
    backends();
    COUNTING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asserts that this process has `baseline` descriptors open, listing them if not.
#[track_caller]
pub fn assert_fd_count(baseline: usize, what: impl Display) {
    assert_eq!(
        fd_count(),
        baseline,
        "{what}: descriptors left open: {:#?}",
        fd_list()
    );
}
