//! What the server process spent besides CPU time, read from `/proc`: context switches of
//! its threads in the measured window, its thread count and its peak resident memory.
//!
//! `/proc/PID/status` gives the context switches of the main thread only, so the counts are
//! summed over every thread's `/proc/PID/task/TID/status`. A thread that ends within the
//! window takes its counts with it (the kernel folds them into the process's `getrusage`,
//! which other processes cannot read): in a load run the server's threads live through the
//! window, so this loses nothing there.

use std::fs;
use std::io;

use serde::Serialize;

/// The server's context switches in the measured window, its threads and its peak memory;
/// each `null` without a server pid or when `/proc` could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerUse {
    /// Voluntary context switches of all the server's threads in the window: a thread gave
    /// up the CPU because it had to wait (for data, for a lock, for work).
    pub server_voluntary_ctx_switches: Option<u64>,
    /// Involuntary context switches in the window: a runnable thread was preempted (its
    /// time slice ran out, or another thread had to run).
    pub server_involuntary_ctx_switches: Option<u64>,
    /// The server's threads at the end of the window.
    pub server_threads: Option<u64>,
    /// The server's peak resident memory (`VmHWM`) at the end of the window, in bytes.
    pub server_peak_rss_bytes: Option<u64>,
}

impl ServerUse {
    /// The use between two snapshots (the counts are `null` unless both were read).
    pub(crate) fn between(start: Option<&Snapshot>, end: Option<&Snapshot>) -> Self {
        let delta =
            |f: fn(&Snapshot) -> u64| start.zip(end).map(|(s, e)| f(e).saturating_sub(f(s)));
        ServerUse {
            server_voluntary_ctx_switches: delta(|s| s.voluntary),
            server_involuntary_ctx_switches: delta(|s| s.involuntary),
            server_threads: end.map(|e| e.threads),
            server_peak_rss_bytes: end.map(|e| e.peak_rss_bytes),
        }
    }

    /// Writes a report's line on the server's context switches (per operation, of `ops` in
    /// the window), threads and peak memory; nothing without readings.
    pub(crate) fn write_line(&self, f: &mut std::fmt::Formatter<'_>, ops: u64) -> std::fmt::Result {
        let (Some(vol), Some(invol)) = (
            self.server_voluntary_ctx_switches,
            self.server_involuntary_ctx_switches,
        ) else {
            return Ok(());
        };
        let per_op = |n: u64| n as f64 / ops.max(1) as f64;
        write!(
            f,
            "  server ctx   {vol} voluntary ({:.3}/op), {invol} involuntary ({:.3}/op)",
            per_op(vol),
            per_op(invol)
        )?;
        if let (Some(threads), Some(rss)) = (self.server_threads, self.server_peak_rss_bytes) {
            write!(
                f,
                "; {threads} threads, peak RSS {:.1} MiB",
                rss as f64 / (1 << 20) as f64
            )?;
        }
        writeln!(f)
    }

    /// All context switches in the window, or `None`.
    pub fn ctx_switches(&self) -> Option<u64> {
        Some(self.server_voluntary_ctx_switches? + self.server_involuntary_ctx_switches?)
    }
}

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Voluntary context switches, summed over the live threads.
    pub voluntary: u64,
    /// Involuntary context switches, summed over the live threads.
    pub involuntary: u64,
    /// Threads.
    pub threads: u64,
    /// Peak resident memory in bytes.
    pub peak_rss_bytes: u64,
}

impl Snapshot {
    /// Reads process `pid`.
    ///
    /// # Errors
    /// When the process does not exist (any more) or its status cannot be parsed.
    pub fn read(pid: u32) -> io::Result<Self> {
        let path = format!("/proc/{pid}/status");
        let status = read(&path)?;
        let field = |name| {
            status_field(&status, name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{path}: no {name}"))
            })
        };
        let (threads, hwm_kib) = (field("Threads")?, field("VmHWM")?);
        let (mut voluntary, mut involuntary) = (0, 0);
        for task in fs::read_dir(format!("/proc/{pid}/task"))? {
            // A thread that ended since the listing is simply not counted.
            let Ok(text) = fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            voluntary += status_field(&text, "voluntary_ctxt_switches").unwrap_or(0);
            involuntary += status_field(&text, "nonvoluntary_ctxt_switches").unwrap_or(0);
        }
        Ok(Snapshot {
            voluntary,
            involuntary,
            threads,
            peak_rss_bytes: hwm_kib * 1024,
        })
    }
}

fn read(path: &str) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))
}

/// The number in a `Name:  value [kB]` line of a `/proc` status file.
pub fn status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_ascii_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let status = "Name:\tringport\nThreads:\t7\nVmHWM:\t   18000 kB\n\
                      voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(status_field(status, "Threads"), Some(7));
        assert_eq!(status_field(status, "VmHWM"), Some(18000));
        assert_eq!(status_field(status, "voluntary_ctxt_switches"), Some(12));
        assert_eq!(status_field(status, "nonvoluntary_ctxt_switches"), Some(3));
        assert_eq!(status_field(status, "VmRSS"), None);
        assert_eq!(status_field("Threads:\tx\n", "Threads"), None);
    }

    #[test]
    fn reads_own_process_across_threads() {
        // A thread that sleeps switches voluntarily, and is counted while it lives. (Other
        // tests' threads come and go in this process: only what the sleeper adds is certain,
        // so the check is on the sum while it lives, not on a difference.)
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            for _ in 0..5 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            rx.recv().unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        let after = Snapshot::read(std::process::id()).unwrap();
        tx.send(()).unwrap();
        sleeper.join().unwrap();
        assert!(after.threads >= 2, "{after:?}");
        assert!(after.peak_rss_bytes > 0);
        assert!(after.voluntary >= 5, "{after:?}");
        let none = Snapshot {
            voluntary: 0,
            involuntary: 0,
            threads: 0,
            peak_rss_bytes: 0,
        };
        let used = ServerUse::between(Some(&none), Some(&after));
        assert!(used.ctx_switches().unwrap() >= 5, "{used:?}");
        assert!(Snapshot::read(u32::MAX).is_err());
        assert_eq!(ServerUse::between(None, Some(&after)).ctx_switches(), None);
    }
}
