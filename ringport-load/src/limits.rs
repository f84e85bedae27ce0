//! Making room for many connections: the open-descriptor limit.

use std::io;

/// Raises the soft limit on open descriptors towards `wanted` (up to the hard limit) and
/// returns the soft limit in force afterwards.
///
/// # Errors
/// When the limit cannot be read or set.
pub(crate) fn raise_nofile(wanted: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= wanted {
        return Ok(lim.rlim_cur);
    }
    lim.rlim_cur = wanted.min(lim.rlim_max);
    // SAFETY: setrlimit reads one rlimit from the valid `lim`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_limit_that_is_high_enough() {
        let now = raise_nofile(0).unwrap();
        assert_eq!(raise_nofile(now).unwrap(), now);
    }
}
