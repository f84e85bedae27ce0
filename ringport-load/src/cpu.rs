//! CPU time of a process, from `/proc/PID/stat` (user + system, all threads).
//!
//! The kernel counts it in clock ticks (`sysconf(_SC_CLK_TCK)`, usually 100 per second), so
//! a reading is exact to 10 ms: measure windows of seconds.

use std::io;
use std::time::Duration;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The calling process.
    Current,
    /// Another process, by id.
    Pid(u32),
}

impl Process {
    fn stat_path(self) -> String {
        match self {
            Process::Current => "/proc/self/stat".to_owned(),
            Process::Pid(pid) => format!("/proc/{pid}/stat"),
        }
    }

    /// The CPU time the process has used so far.
    ///
    /// # Errors
    /// When the process does not exist (any more) or its stat line cannot be parsed.
    pub fn cpu_time(self) -> io::Result<Duration> {
        let path = self.stat_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
        let ticks = parse_stat(&text).map_err(|why| {
            io::Error::new(io::ErrorKind::InvalidData, format!("parsing {path}: {why}"))
        })?;
        Ok(ticks_to_duration(ticks.total(), clock_ticks_per_sec()))
    }
}

/// The CPU fields of a stat line, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// Field 14: time in user mode.
    pub utime: u64,
    /// Field 15: time in kernel mode.
    pub stime: u64,
}

impl CpuTicks {
    /// User plus system time.
    pub fn total(self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses `utime` and `stime` (fields 14 and 15) out of a `/proc/PID/stat` line.
///
/// Field 2, the command name, is in parentheses and may itself hold spaces and parentheses,
/// so the fields are counted from after the *last* `)`.
///
/// # Errors
/// A short description of what is missing.
pub fn parse_stat(line: &str) -> Result<CpuTicks, &'static str> {
    let close = line.rfind(')').ok_or("no ')' closing the command name")?;
    // Fields after the command name start with field 3 (state).
    let mut fields = line[close + 1..].split_ascii_whitespace().skip(14 - 3);
    let mut next = |name| -> Result<u64, &'static str> {
        fields.next().ok_or(name)?.parse().map_err(|_| name)
    };
    let utime = next("field 14 (utime) missing or not a number")?;
    let stime = next("field 15 (stime) missing or not a number")?;
    Ok(CpuTicks { utime, stime })
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&hz| hz > 0).unwrap_or(100)
}

fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_line() {
        let line = "1234 (ringport) S 1 1234 1234 0 -1 4194560 500 0 0 0 \
                    250 75 0 0 20 0 3 0 100 1000000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Ok(CpuTicks {
                utime: 250,
                stime: 75
            })
        );
    }

    #[test]
    fn command_name_with_spaces_and_parentheses() {
        let line = "77 (a b) c) (d)) R 1 77 77 0 -1 0 0 0 0 0 9 4 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(line), Ok(CpuTicks { utime: 9, stime: 4 }));
    }

    #[test]
    fn rejects_short_or_garbled_lines() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("1 (x) S 1 2 3").is_err());
        assert!(parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 nine 4").is_err());
    }

    #[test]
    fn converts_ticks() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn reads_own_process() {
        let before = Process::Current.cpu_time().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(0);
        }
        assert!(Process::Current.cpu_time().unwrap() >= before);
        let me = Process::Pid(std::process::id()).cpu_time().unwrap();
        assert!(me >= before);
        assert!(Process::Pid(u32::MAX).cpu_time().is_err());
    }
}
