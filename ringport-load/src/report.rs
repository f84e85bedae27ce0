//! The result of a run: one flat record, printed as a few aligned lines or as one JSON object.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::server::ServerUse;
use crate::stats::Stats;
use crate::summary::{Latency, Outcome};

/// What an echo run measured. Rates and CPU costs are over the measured window only (the
/// warmup is not counted); error counts cover the whole run, warmup included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Backend of the load generator's own port (`io_uring` or `epoll`).
    pub backend: String,
    /// Connections asked for.
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Worker threads of the load generator.
    pub threads: usize,
    /// Warmup before the measured window, in seconds.
    pub warmup_s: f64,
    /// Length of the measured window as it ran, in seconds.
    pub duration_s: f64,
    /// Round trips completed in the window (each: `size` bytes out, all `size` bytes back
    /// and verified).
    pub round_trips: u64,
    /// Round trips per second.
    pub round_trips_per_sec: f64,
    /// Payload bytes received back (echoed) per second, in millions (1e6): one direction
    /// only.
    pub mb_per_sec: f64,
    /// Round-trip latencies.
    #[serde(flatten)]
    pub latency: Latency,
    /// How the connections fared (echoed bytes that differ from the bytes sent are
    /// verification errors).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// CPU (user + system) the server used in the window, in seconds (`null` without a
    /// server pid, or when the server could not be read at the end).
    pub server_cpu_s: Option<f64>,
    /// Server CPU per round trip, in nanoseconds.
    pub server_cpu_ns_per_rt: Option<f64>,
    /// CPU the load generator used in the window, in seconds.
    pub client_cpu_s: Option<f64>,
    /// Load generator CPU per round trip, in nanoseconds.
    pub client_cpu_ns_per_rt: Option<f64>,
    /// The server's context switches in the window, threads and peak memory.
    #[serde(flatten)]
    pub server: ServerUse,
}

/// The settings and readings a [`Report`] is computed from.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub(crate) backend: String,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) threads: usize,
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
    pub(crate) server_cpu: Option<Duration>,
    pub(crate) client_cpu: Option<Duration>,
    pub(crate) server: ServerUse,
}

impl Report {
    pub(crate) fn new(inputs: Inputs, stats: &Stats) -> Self {
        let secs = inputs.window.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let per_rt = |cpu: Option<Duration>| {
            cpu.filter(|_| stats.round_trips > 0)
                .map(|c| c.as_nanos() as f64 / stats.round_trips as f64)
        };
        Report {
            backend: inputs.backend,
            conns: inputs.conns,
            size: inputs.size,
            threads: inputs.threads,
            warmup_s: inputs.warmup.as_secs_f64(),
            duration_s: secs,
            round_trips: stats.round_trips,
            round_trips_per_sec: per_sec(stats.round_trips),
            mb_per_sec: per_sec(stats.bytes_received) / 1e6,
            latency: Latency::of(stats),
            outcome: Outcome::of(stats),
            server_cpu_s: inputs.server_cpu.map(|c| c.as_secs_f64()),
            server_cpu_ns_per_rt: per_rt(inputs.server_cpu),
            client_cpu_s: inputs.client_cpu.map(|c| c.as_secs_f64()),
            client_cpu_ns_per_rt: per_rt(inputs.client_cpu),
            server: inputs.server,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

/// A duration in µs.
struct Us(Option<f64>);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(us) => write!(f, "{us:.1} µs"),
            None => f.write_str("–"),
        }
    }
}

struct Cpu(Option<f64>, Option<f64>);

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cpu(Some(s), Some(ns)) => write!(f, "{s:.2} s ({ns:.0} ns per round trip)"),
            Cpu(Some(s), None) => write!(f, "{s:.2} s"),
            _ => f.write_str("–"),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "echo: {} conns × {} B for {:.2} s ({} thread(s), {})",
            self.conns, self.size, self.duration_s, self.threads, self.backend
        )?;
        writeln!(
            f,
            "  round trips  {} ({:.0}/s, {:.2} MB/s echoed)",
            self.round_trips, self.round_trips_per_sec, self.mb_per_sec
        )?;
        self.latency.write_line(f, Us)?;
        self.outcome.write_lines(f, self.conns)?;
        writeln!(
            f,
            "  server CPU   {}",
            Cpu(self.server_cpu_s, self.server_cpu_ns_per_rt)
        )?;
        self.server.write_line(f, self.round_trips)?;
        write!(
            f,
            "  client CPU   {}",
            Cpu(self.client_cpu_s, self.client_cpu_ns_per_rt)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(server_cpu: Option<Duration>) -> Report {
        let mut stats = Stats::default();
        for _ in 0..1000 {
            stats.record(Duration::from_micros(20), 64);
        }
        stats.connected = 10;
        stats.verify_errors = 1;
        let inputs = Inputs {
            backend: "io_uring".into(),
            conns: 10,
            size: 64,
            threads: 1,
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(2),
            server_cpu,
            client_cpu: Some(Duration::from_millis(10)),
            server: ServerUse::default(),
        };
        Report::new(inputs, &stats)
    }

    #[test]
    fn rates_and_costs() {
        let r = sample(Some(Duration::from_millis(20)));
        assert_eq!(r.round_trips, 1000);
        assert_eq!(r.round_trips_per_sec, 500.0);
        assert_eq!(r.mb_per_sec, 500.0 * 64.0 / 1e6);
        assert_eq!(r.server_cpu_ns_per_rt, Some(20_000.0));
        assert_eq!(r.client_cpu_ns_per_rt, Some(10_000.0));
        assert_eq!(r.outcome.errors, 1);
    }

    #[test]
    fn json_shape() {
        let r = sample(None);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let obj = v.as_object().unwrap();
        for key in [
            "conns",
            "size",
            "duration_s",
            "round_trips",
            "round_trips_per_sec",
            "mb_per_sec",
            "p50_us",
            "p99_us",
            "p999_us",
            "max_us",
            "errors",
            "verify_errors",
            "connected",
            "server_cpu_s",
            "server_cpu_ns_per_rt",
            "client_cpu_ns_per_rt",
            "backend",
        ] {
            assert!(obj.contains_key(key), "missing {key}");
        }
        assert!(v["server_cpu_s"].is_null());
        assert!(v["server_cpu_ns_per_rt"].is_null());
        assert_eq!(v["conns"], 10);
        assert_eq!(v["backend"], "io_uring");
        assert!(v["p99_us"].as_f64().unwrap() > 19.0);
        assert!(!r.to_json().contains('\n'), "one line");
    }

    #[test]
    fn no_round_trips_gives_nulls() {
        let inputs = Inputs {
            backend: "io_uring".into(),
            conns: 1,
            size: 1,
            threads: 1,
            warmup: Duration::ZERO,
            window: Duration::from_secs(1),
            server_cpu: Some(Duration::from_millis(1)),
            client_cpu: Some(Duration::from_millis(1)),
            server: ServerUse::default(),
        };
        let r = Report::new(inputs, &Stats::default());
        assert_eq!(r.latency.p50_us, None);
        assert_eq!(r.server_cpu_ns_per_rt, None);
        assert_eq!(r.round_trips_per_sec, 0.0);
        assert!(r.to_string().contains("p50 –"));
    }
}
