//! Flags every server subcommand shares: how its port runs, and how time flags are read.

use std::time::Duration;

use ringport::{Backend, PortBuilder};
use ringport_servers::PortSettings;

use crate::info::default_workers;

/// The `--backend` help: the backends of this platform.
#[cfg(target_os = "linux")]
pub const BACKENDS: &str = "Backend: auto (io_uring, else epoll), uring or epoll";
/// The `--backend` help: the backends of this platform.
#[cfg(windows)]
pub const BACKENDS: &str = "Backend: auto or iocp (I/O completion ports, the only one here)";

/// How a server's port runs (flattened into `serve` and `echo`).
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// Worker threads (default: available CPUs).
    #[arg(long, default_value_t = default_workers())]
    threads: usize,
    // The help text is the platform's (`BACKENDS`).
    #[arg(long, env = Backend::ENV, default_value = "auto", help = BACKENDS)]
    backend: Backend,
    /// Submission queue entries per worker ring: a tuning knob (any size works, a full queue
    /// is submitted early; larger ones save system calls under bursts). Linux only: IOCP has
    /// no submission queue.
    #[cfg_attr(not(target_os = "linux"), arg(hide = true))]
    #[arg(long, default_value_t = PortBuilder::DEFAULT_ENTRIES, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=32768))]
    ring_entries: u32,
    /// Seconds that shutdown (SIGINT/SIGTERM; on Windows Ctrl+C, Ctrl+Break, console close)
    /// lets connections finish before resetting them (0: reset at once). A second one resets
    /// them at once.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = timeout)]
    shutdown_timeout: Timeout,
    /// Seconds a send or file transfer may make no progress (the client reads nothing) before
    /// the connection is reset (0: never).
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = timeout)]
    send_timeout: Timeout,
}

impl PortArgs {
    /// The port settings for listening on `listen`.
    pub fn settings(&self, listen: std::net::SocketAddr) -> PortSettings {
        PortSettings {
            listen,
            workers: self.threads,
            backend: self.backend,
            ring_entries: self.ring_entries,
            shutdown_timeout: self.shutdown_timeout.0.unwrap_or(Duration::ZERO),
            send_timeout: self.send_timeout.0,
        }
    }
}

/// A time flag: `None` when 0 (off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

/// Reads a time flag in seconds, the same way for every flag: a decimal number of seconds from
/// 0.001 to 1,000,000,000, or 0 for "off". Anything else (negative, NaN, infinite, a tiny
/// positive value that would round to nothing) is refused with a message saying so.
pub fn timeout(text: &str) -> Result<Timeout, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs == 0.0 {
        return Ok(Timeout(None));
    }
    if !secs.is_finite() || !(0.001..=1e9).contains(&secs) {
        return Err(format!(
            "{text:?}: give 0 (off) or between 0.001 and 1000000000 seconds"
        ));
    }
    Ok(Timeout(Some(Duration::from_secs_f64(secs))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_flags_are_read_the_same_everywhere() {
        assert_eq!(timeout("0"), Ok(Timeout(None)));
        assert_eq!(timeout("0.0"), Ok(Timeout(None)));
        assert_eq!(
            timeout("1.5"),
            Ok(Timeout(Some(Duration::from_millis(1500))))
        );
        assert_eq!(
            timeout("0.001"),
            Ok(Timeout(Some(Duration::from_millis(1))))
        );
        for bad in ["1e-300", "-1", "NaN", "inf", "1e10", "", "ten", "0.0001"] {
            assert!(timeout(bad).is_err(), "{bad:?} is refused");
        }
    }
}
