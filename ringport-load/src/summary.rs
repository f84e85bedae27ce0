//! The parts both reports share: the latencies of the measured window and how the connections
//! fared, taken from the merged [`Stats`] and printed alike.

use std::fmt;

use serde::Serialize;

use crate::stats::Stats;

/// Latencies in µs, measured window only, each `null` without samples: of round trips (echo),
/// or of whole downloads from request sent to last byte (files).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// 99.9th percentile.
    pub p999_us: Option<f64>,
    /// Highest.
    pub max_us: Option<f64>,
    /// Mean.
    pub mean_us: Option<f64>,
}

impl Latency {
    pub(crate) fn of(stats: &Stats) -> Self {
        Latency {
            p50_us: stats.quantile_us(0.5),
            p99_us: stats.quantile_us(0.99),
            p999_us: stats.quantile_us(0.999),
            max_us: stats.max_us(),
            mean_us: stats.mean_us(),
        }
    }

    /// Writes a report's latency line, each value shown by `show`.
    pub(crate) fn write_line<T: fmt::Display>(
        &self,
        f: &mut fmt::Formatter<'_>,
        show: impl Fn(Option<f64>) -> T,
    ) -> fmt::Result {
        writeln!(
            f,
            "  latency      p50 {}  p99 {}  p99.9 {}  max {}",
            show(self.p50_us),
            show(self.p99_us),
            show(self.p999_us),
            show(self.max_us)
        )
    }
}

/// How the connections fared. Error counts cover the whole run, warmup included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// All errors: `connect_errors + io_errors + verify_errors`.
    pub errors: u64,
    /// Connections that could not be established.
    pub connect_errors: u64,
    /// Established connections that failed: reset, unexpected EOF, send or receive error, or
    /// (downloads) closed or stalled mid-download.
    pub io_errors: u64,
    /// Connections closed because what came back was wrong: echoed bytes that differ from the
    /// bytes sent, or a reply that is not the file (wrong bytes, wrong length, an error line or
    /// status).
    pub verify_errors: u64,
    /// The first error, in words (`null` without errors).
    pub first_error: Option<String>,
    /// Connections established.
    pub connected: u64,
    /// Connections that received data in the measured window: fewer than `connected` when
    /// the server left some established clients unanswered.
    pub served: u64,
}

impl Outcome {
    pub(crate) fn of(stats: &Stats) -> Self {
        Outcome {
            errors: stats.errors(),
            connect_errors: stats.connect_errors,
            io_errors: stats.io_errors,
            verify_errors: stats.verify_errors,
            first_error: stats.first_error.clone(),
            connected: stats.connected,
            served: stats.served,
        }
    }

    /// Writes a report's lines on connections (of `conns` asked for) and errors.
    pub(crate) fn write_lines(&self, f: &mut fmt::Formatter<'_>, conns: usize) -> fmt::Result {
        writeln!(
            f,
            "  connections  {} of {conns} established, {} served in the window",
            self.connected, self.served
        )?;
        writeln!(
            f,
            "  errors       {} (connect {}, io {}, verify {})",
            self.errors, self.connect_errors, self.io_errors, self.verify_errors
        )?;
        if let Some(first) = &self.first_error {
            writeln!(f, "  first error  {first}")?;
        }
        Ok(())
    }
}
