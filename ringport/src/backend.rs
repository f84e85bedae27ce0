//! Which kernel interface a port runs on.

use std::fmt;
use std::str::FromStr;

/// The backend a port is asked to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// Linux: io_uring when it is usable here, else epoll (with one log line saying why).
    /// Windows: IOCP.
    #[default]
    Auto,
    /// io_uring, or an error if it is unavailable.
    Uring,
    /// epoll, emulating completions from readiness (Linux).
    Epoll,
    /// I/O completion ports (Windows).
    Iocp,
}

impl Backend {
    /// The name of the environment variable that overrides `Auto`.
    pub const ENV: &'static str = "RINGPORT_BACKEND";
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(Backend::Uring),
            "epoll" => Ok(Backend::Epoll),
            "iocp" => Ok(Backend::Iocp),
            _ => Err(format!(
                "unknown backend {s:?} (expected auto, uring, epoll or iocp)"
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Uring => "uring",
            Backend::Epoll => "epoll",
            Backend::Iocp => "iocp",
        })
    }
}

/// The backend a port actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// Linux io_uring.
    Uring,
    /// Linux epoll.
    Epoll,
    /// Windows I/O completion ports.
    Iocp,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Uring => "io_uring",
            BackendKind::Epoll => "epoll",
            BackendKind::Iocp => "iocp",
        })
    }
}

/// Decides which backend `requested` gives on this machine, and why.
///
/// # Errors
/// When a specific backend is requested and unavailable.
pub fn select(requested: Backend) -> std::io::Result<(BackendKind, String)> {
    crate::sys::select(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!("AUTO".parse::<Backend>(), Ok(Backend::Auto));
        assert_eq!("io_uring".parse::<Backend>(), Ok(Backend::Uring));
        assert_eq!("epoll".parse::<Backend>(), Ok(Backend::Epoll));
        assert!("kqueue".parse::<Backend>().is_err());
    }
}
