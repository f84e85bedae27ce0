//! What one worker measured: a latency histogram and counters, merged across workers at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly (60 s); longer ones are recorded as 60 s.
const MAX_TRACKED_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept by the histogram.
const SIGFIG: u8 = 3;

/// What went wrong with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It could not be established.
    Connect,
    /// It failed once established: reset, unexpected EOF, send or receive error.
    Io,
    /// An echoed byte differed from the one sent.
    Verify,
}

/// Measurements of one worker (or, merged, of all).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Round-trip latencies in nanoseconds, measured window only.
    pub latency_ns: Histogram<u64>,
    /// Round trips completed in the measured window.
    pub round_trips: u64,
    /// Payload bytes received back (verified) in the measured window.
    pub bytes_received: u64,
    /// Connections established.
    pub connected: u64,
    /// Connections that received data in the measured window (set once per run, not per
    /// worker: see the ramp).
    pub served: u64,
    /// Connections that could not be established (socket creation or connect failed).
    pub connect_errors: u64,
    /// Established connections that failed: reset, unexpected EOF, send or receive error.
    pub io_errors: u64,
    /// Connections closed because an echoed byte differed from the one sent.
    pub verify_errors: u64,
    /// The first error, in words.
    pub first_error: Option<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency_ns: Histogram::new_with_bounds(1, MAX_TRACKED_NS, SIGFIG)
                .expect("valid histogram bounds"),
            round_trips: 0,
            bytes_received: 0,
            connected: 0,
            served: 0,
            connect_errors: 0,
            io_errors: 0,
            verify_errors: 0,
            first_error: None,
        }
    }
}

impl Stats {
    /// Records one round trip of `bytes` payload bytes that took `latency`.
    pub fn record(&mut self, latency: Duration, bytes: usize) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_ns.saturating_record(ns.max(1));
        self.round_trips += 1;
        self.bytes_received += bytes as u64;
    }

    /// Counts one failure; `why` is kept if it is the first.
    pub fn count(&mut self, failure: Failure, why: String) {
        *match failure {
            Failure::Connect => &mut self.connect_errors,
            Failure::Io => &mut self.io_errors,
            Failure::Verify => &mut self.verify_errors,
        } += 1;
        self.first_error.get_or_insert(why);
    }

    /// All errors: connect, I/O and verification.
    pub fn errors(&self) -> u64 {
        self.connect_errors + self.io_errors + self.verify_errors
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms with the same bounds merge");
        self.round_trips += other.round_trips;
        self.bytes_received += other.bytes_received;
        self.connected += other.connected;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.verify_errors += other.verify_errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// The latency at `quantile` (0..=1) in microseconds, or `None` with no sample.
    pub fn quantile_us(&self, quantile: f64) -> Option<f64> {
        (!self.latency_ns.is_empty())
            .then(|| self.latency_ns.value_at_quantile(quantile) as f64 / 1e3)
    }

    /// The highest latency in microseconds, or `None` with no sample.
    pub fn max_us(&self) -> Option<f64> {
        (!self.latency_ns.is_empty()).then(|| self.latency_ns.max() as f64 / 1e3)
    }

    /// The mean latency in microseconds, or `None` with no sample.
    pub fn mean_us(&self) -> Option<f64> {
        (!self.latency_ns.is_empty()).then(|| self.latency_ns.mean() / 1e3)
    }
}

/// A counter one worker bumps and another thread reads (for the progress bar), alone on its
/// cache line so that readers do not slow the worker down.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LiveCounter(AtomicU64);

impl LiveCounter {
    /// Adds one.
    #[inline]
    pub fn bump(&self) {
        // Only the owning worker writes: a load and a store avoid a locked instruction.
        let n = self.0.load(Ordering::Relaxed);
        self.0.store(n + 1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for us in 1..=100 {
            a.record(Duration::from_micros(us), 10);
        }
        b.record(Duration::from_millis(5), 10);
        b.count(Failure::Verify, "first".into());
        b.count(Failure::Connect, "second".into());
        b.count(Failure::Connect, "third".into());
        a.merge(&b);
        assert_eq!(a.round_trips, 101);
        assert_eq!(a.bytes_received, 1010);
        assert_eq!(a.errors(), 3);
        assert_eq!((a.connect_errors, a.verify_errors), (2, 1));
        assert_eq!(a.first_error.as_deref(), Some("first"));
        let p50 = a.quantile_us(0.5).unwrap();
        assert!((50.0..=52.0).contains(&p50), "{p50}");
        let max = a.max_us().unwrap();
        assert!((4990.0..=5010.0).contains(&max), "{max}");
    }

    #[test]
    fn empty_has_no_percentiles() {
        let s = Stats::default();
        assert_eq!(s.quantile_us(0.99), None);
        assert_eq!(s.max_us(), None);
        assert_eq!(s.mean_us(), None);
    }

    #[test]
    fn huge_latency_saturates() {
        let mut s = Stats::default();
        s.record(Duration::from_secs(3600), 1);
        assert_eq!(s.round_trips, 1);
        assert!(s.max_us().unwrap() >= 59e6);
    }

    #[test]
    fn live_counter() {
        let c = LiveCounter::default();
        c.bump();
        c.bump();
        assert_eq!(c.get(), 2);
        assert_eq!(std::mem::align_of::<LiveCounter>(), 128);
    }
}
