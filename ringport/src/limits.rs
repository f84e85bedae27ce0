//! The open-descriptor limit: every connection, listener and open file is one descriptor
//! (a handle on Windows).

use std::io;

use crate::sys;

/// The soft limit on open descriptors (on Windows, the per-process handle limit, 2^24).
///
/// # Errors
/// When the limit cannot be read.
pub fn fd_limit() -> io::Result<u64> {
    sys::fd_limit()
}

/// Raises the soft limit on open descriptors to the hard limit, as servers usually do at start
/// (Go's runtime, nginx's `worker_rlimit_nofile`), and returns the limit in force (on
/// Windows there is nothing to raise).
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_fd_limit() -> io::Result<u64> {
    sys::raise_fd_limit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_limit_in_force() {
        let raised = raise_fd_limit().unwrap();
        assert_eq!(fd_limit().unwrap(), raised);
        assert!(raised >= 64, "{raised}");
    }
}
