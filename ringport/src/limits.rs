//! The open-descriptor limit: every connection, listener and open file is one descriptor.

use std::io;

fn get() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// The soft limit on open descriptors.
///
/// # Errors
/// When the limit cannot be read.
pub fn fd_limit() -> io::Result<u64> {
    Ok(get()?.rlim_cur)
}

/// Raises the soft limit on open descriptors to the hard limit, as servers usually do at start
/// (Go's runtime, nginx's `worker_rlimit_nofile`), and returns the limit in force.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = get()?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one rlimit from the valid `lim`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let raised = raise_fd_limit().unwrap();
        assert_eq!(fd_limit().unwrap(), raised);
        assert_eq!(raised, get().unwrap().rlim_max);
    }
}
