//! The result of a download run: one flat record, printed as a few aligned lines or as one
//! JSON object.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::Protocol;
use crate::server::ServerUse;
use crate::stats::Stats;
use crate::summary::{Latency, Outcome};

/// What a download run measured. Rates and CPU costs are over the measured window only (the
/// warmup is not counted); error counts cover the whole run, warmup included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesReport {
    /// Backend of the load generator's own port (`io_uring` or `epoll`).
    pub backend: String,
    /// `nc` or `http`.
    pub protocol: String,
    /// The file asked for.
    pub name: String,
    /// Bytes in every download.
    pub size: u64,
    /// Whether every byte was compared with a local copy (else only lengths are checked).
    pub verified: bool,
    /// Connections asked for.
    pub conns: usize,
    /// Worker threads of the load generator.
    pub threads: usize,
    /// Warmup before the measured window, in seconds.
    pub warmup_s: f64,
    /// Length of the measured window as it ran, in seconds.
    pub duration_s: f64,
    /// Downloads completed in the window (whole, checked).
    pub downloads: u64,
    /// Downloads per second.
    pub downloads_per_sec: f64,
    /// Body bytes received (and checked) in the window, downloads not yet complete included.
    pub bytes: u64,
    /// Body bytes per second, in millions (1e6).
    pub mb_per_sec: f64,
    /// Download times, request sent to last byte.
    #[serde(flatten)]
    pub latency: Latency,
    /// How the connections fared (a stall is an I/O error; a reply that is not the file, a
    /// verification error).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// CPU (user + system) the server used in the window, in seconds (`null` without a
    /// server pid, or when the server could not be read at the end).
    pub server_cpu_s: Option<f64>,
    /// Server CPU per download, in nanoseconds.
    pub server_cpu_ns_per_download: Option<f64>,
    /// Server CPU per 1e9 body bytes, in seconds.
    pub server_cpu_s_per_gb: Option<f64>,
    /// CPU the load generator used in the window, in seconds.
    pub client_cpu_s: Option<f64>,
    /// Load generator CPU per download, in nanoseconds.
    pub client_cpu_ns_per_download: Option<f64>,
    /// Load generator CPU per 1e9 body bytes, in seconds.
    pub client_cpu_s_per_gb: Option<f64>,
    /// The server's context switches in the window, threads and peak memory.
    #[serde(flatten)]
    pub server: ServerUse,
}

/// The settings and readings a [`FilesReport`] is computed from.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub(crate) backend: String,
    pub(crate) protocol: Protocol,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) verified: bool,
    pub(crate) conns: usize,
    pub(crate) threads: usize,
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
    pub(crate) server_cpu: Option<Duration>,
    pub(crate) client_cpu: Option<Duration>,
    pub(crate) server: ServerUse,
}

impl FilesReport {
    pub(crate) fn new(inputs: Inputs, stats: &Stats) -> Self {
        let secs = inputs.window.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let downloads = stats.round_trips;
        let bytes = stats.bytes_received;
        let per_download = |cpu: Option<Duration>| {
            cpu.filter(|_| downloads > 0)
                .map(|c| c.as_nanos() as f64 / downloads as f64)
        };
        let per_gb = |cpu: Option<Duration>| {
            cpu.filter(|_| bytes > 0)
                .map(|c| c.as_secs_f64() / (bytes as f64 / 1e9))
        };
        FilesReport {
            backend: inputs.backend,
            protocol: inputs.protocol.to_string(),
            name: inputs.name,
            size: inputs.size,
            verified: inputs.verified,
            conns: inputs.conns,
            threads: inputs.threads,
            warmup_s: inputs.warmup.as_secs_f64(),
            duration_s: secs,
            downloads,
            downloads_per_sec: per_sec(downloads),
            bytes,
            mb_per_sec: per_sec(bytes) / 1e6,
            latency: Latency::of(stats),
            outcome: Outcome::of(stats),
            server_cpu_s: inputs.server_cpu.map(|c| c.as_secs_f64()),
            server_cpu_ns_per_download: per_download(inputs.server_cpu),
            server_cpu_s_per_gb: per_gb(inputs.server_cpu),
            client_cpu_s: inputs.client_cpu.map(|c| c.as_secs_f64()),
            client_cpu_ns_per_download: per_download(inputs.client_cpu),
            client_cpu_s_per_gb: per_gb(inputs.client_cpu),
            server: inputs.server,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

/// A duration given in µs, shown in ms.
struct Ms(Option<f64>);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(us) => write!(f, "{:.3} ms", us / 1e3),
            None => f.write_str("–"),
        }
    }
}

/// CPU seconds, per download (ns) and per GB (s).
struct Cpu(Option<f64>, Option<f64>, Option<f64>);

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cpu(Some(s), Some(ns), Some(per_gb)) => write!(
                f,
                "{s:.2} s ({:.1} µs per download, {per_gb:.3} s per GB)",
                ns / 1e3
            ),
            Cpu(Some(s), ..) => write!(f, "{s:.2} s"),
            _ => f.write_str("–"),
        }
    }
}

impl fmt::Display for FilesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let check = if self.verified {
            "every byte checked"
        } else {
            "lengths checked"
        };
        writeln!(
            f,
            "files: {} conns × {} ({} B, {}, {check}) for {:.2} s ({} thread(s), {})",
            self.conns,
            self.name,
            self.size,
            self.protocol,
            self.duration_s,
            self.threads,
            self.backend
        )?;
        writeln!(
            f,
            "  downloads    {} ({:.1}/s, {:.1} MB/s)",
            self.downloads, self.downloads_per_sec, self.mb_per_sec
        )?;
        self.latency.write_line(f, Ms)?;
        self.outcome.write_lines(f, self.conns)?;
        writeln!(
            f,
            "  server CPU   {}",
            Cpu(
                self.server_cpu_s,
                self.server_cpu_ns_per_download,
                self.server_cpu_s_per_gb
            )
        )?;
        self.server.write_line(f, self.downloads)?;
        write!(
            f,
            "  client CPU   {}",
            Cpu(
                self.client_cpu_s,
                self.client_cpu_ns_per_download,
                self.client_cpu_s_per_gb
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(server_cpu: Option<Duration>) -> Inputs {
        Inputs {
            backend: "io_uring".into(),
            protocol: Protocol::Http,
            name: "big.bin".into(),
            size: 1 << 20,
            verified: true,
            conns: 4,
            threads: 1,
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(2),
            server_cpu,
            client_cpu: Some(Duration::from_millis(500)),
            server: ServerUse::default(),
        }
    }

    #[test]
    fn rates_and_costs() {
        let mut stats = Stats::default();
        for _ in 0..1000 {
            stats.record(Duration::from_millis(2), 0);
        }
        stats.bytes_received = 1000 << 20;
        let r = FilesReport::new(inputs(Some(Duration::from_secs(1))), &stats);
        assert_eq!(r.downloads, 1000);
        assert_eq!(r.downloads_per_sec, 500.0);
        assert_eq!(r.mb_per_sec, (1000 << 20) as f64 / 2.0 / 1e6);
        assert_eq!(r.server_cpu_ns_per_download, Some(1e6));
        let per_gb = r.server_cpu_s_per_gb.unwrap();
        assert!(
            (per_gb - 1e9 / (1000 << 20) as f64).abs() < 1e-9,
            "{per_gb}"
        );
        let text = r.to_string();
        assert!(text.contains("p99 2.00"), "{text}");
        assert!(text.contains("1000.0 µs per download"), "{text}");
    }

    #[test]
    fn json_shape() {
        let r = FilesReport::new(inputs(None), &Stats::default());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "protocol",
            "size",
            "verified",
            "downloads",
            "downloads_per_sec",
            "mb_per_sec",
            "p50_us",
            "p99_us",
            "p999_us",
            "max_us",
            "errors",
            "first_error",
            "server_cpu_s",
            "server_cpu_ns_per_download",
            "server_cpu_s_per_gb",
            "client_cpu_s_per_gb",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["protocol"], "http");
        assert!(v["p99_us"].is_null());
        assert!(v["server_cpu_s_per_gb"].is_null());
        assert!(
            v["client_cpu_s_per_gb"].is_null(),
            "no bytes, no cost per GB"
        );
        assert!(!r.to_json().contains('\n'));
    }
}
