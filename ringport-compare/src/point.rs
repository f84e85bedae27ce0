//! One point of a comparison: one model under one workload at one connection count, and
//! what it cost the server.

use ringport_load::{FilesReport, Outcome, Report, ServerUse};
use ringport_models::Model;
use serde::{Deserialize, Serialize};

use crate::plan::Workload;

/// How a point went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every connection established and served, no error.
    Ok,
    /// Some work done, but some connections failed (refused, reset, timed out, wrong bytes)
    /// or were established and never served in the window.
    Partial,
    /// Nothing served: the server did not start, or no operation completed.
    Failed,
}

/// Context switches of the server per operation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CtxPerOp {
    /// Voluntary: a server thread waited (for data, for work, for a lock).
    pub voluntary: f64,
    /// Involuntary: a runnable server thread was preempted.
    pub involuntary: f64,
    /// Both.
    pub total: f64,
}

/// One measured point (the JSON schema of `ringport compare --json`, one object per point).
///
/// An operation is an echo round trip (64 bytes out, 64 back, verified) or a download (the
/// whole file, verified). For downloads, rates and costs count partial downloads as the
/// fraction of the file received, so that a window in which 10,000 clients each get part of
/// a 1 MiB file is not read as no work; latencies are those of whole downloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The model's name (`threads`, `pool`, `reactor`, `port-uring`, `port-epoll`,
    /// `port-rule`).
    pub model: String,
    /// The model in words.
    pub model_label: String,
    /// `echo-64B`, `download-64KiB` or `download-1MiB`.
    pub workload: String,
    /// Connections asked for.
    pub connections: usize,
    /// `ok`, `partial` or `failed`.
    pub status: Status,
    /// Why a point is partial or failed (the first error), else `null`.
    pub note: Option<String>,
    /// Operations per second in the measured window.
    pub ops_per_s: f64,
    /// Payload megabytes (1e6) received by the clients per second.
    pub mb_per_s: f64,
    /// Median latency of an operation, µs (`null` without a whole operation).
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<f64>,
    /// Server CPU time (user + system, all threads) per operation, µs.
    pub cpu_us_per_op: Option<f64>,
    /// Server context switches per operation (summed over all its threads).
    pub ctx_switches_per_op: Option<CtxPerOp>,
    /// The server's peak resident memory (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The server's threads at the end of the window.
    pub threads: Option<u64>,
    /// All errors: `connect_errors + io_errors + verify_errors`.
    pub errors: u64,
    /// Connections refused, failed, or not established by the end of the point.
    pub connect_errors: u64,
    /// Established connections that failed (reset, closed, stalled past the timeout).
    pub io_errors: u64,
    /// Replies that were not the bytes expected.
    pub verify_errors: u64,
    /// Connections established.
    pub connected: u64,
    /// Connections established but never sent a byte in the window (clients the server
    /// left waiting).
    pub unserved: u64,
    /// Load generator CPU per operation, µs.
    pub load_cpu_us_per_op: Option<f64>,
    /// The measured window, seconds.
    pub window_s: f64,
    /// Rounds this point is the median of (1: a single measurement).
    pub rounds: usize,
}

/// What the two kinds of load report have in common, as the point needs it.
struct Measured<'a> {
    ops: f64,
    window_s: f64,
    mb_per_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    server_cpu_s: Option<f64>,
    load_cpu_s: Option<f64>,
    outcome: &'a Outcome,
    server: &'a ServerUse,
}

impl Point {
    fn new(model: Model, workload: Workload, connections: usize) -> Self {
        Point {
            model: model.name().to_owned(),
            model_label: model.describe().to_owned(),
            workload: workload.name().to_owned(),
            connections,
            status: Status::Failed,
            note: None,
            ops_per_s: 0.0,
            mb_per_s: 0.0,
            p50_us: None,
            p99_us: None,
            cpu_us_per_op: None,
            ctx_switches_per_op: None,
            peak_rss_bytes: None,
            threads: None,
            errors: 0,
            connect_errors: 0,
            io_errors: 0,
            verify_errors: 0,
            connected: 0,
            unserved: 0,
            load_cpu_us_per_op: None,
            window_s: 0.0,
            rounds: 1,
        }
    }

    /// A point where nothing could be measured, and why.
    pub fn failed(model: Model, workload: Workload, connections: usize, why: String) -> Self {
        Point {
            note: Some(why),
            ..Point::new(model, workload, connections)
        }
    }

    /// The point of an echo run.
    pub fn of_echo(model: Model, connections: usize, r: &Report) -> Self {
        Point::of(
            model,
            Workload::Echo64,
            connections,
            &Measured {
                ops: r.round_trips as f64,
                window_s: r.duration_s,
                mb_per_s: r.mb_per_sec,
                p50_us: r.latency.p50_us,
                p99_us: r.latency.p99_us,
                server_cpu_s: r.server_cpu_s,
                load_cpu_s: r.client_cpu_s,
                outcome: &r.outcome,
                server: &r.server,
            },
        )
    }

    /// The point of a download run.
    pub fn of_files(model: Model, workload: Workload, connections: usize, r: &FilesReport) -> Self {
        Point::of(
            model,
            workload,
            connections,
            &Measured {
                ops: r.bytes as f64 / r.size.max(1) as f64,
                window_s: r.duration_s,
                mb_per_s: r.mb_per_sec,
                p50_us: r.latency.p50_us,
                p99_us: r.latency.p99_us,
                server_cpu_s: r.server_cpu_s,
                load_cpu_s: r.client_cpu_s,
                outcome: &r.outcome,
                server: &r.server,
            },
        )
    }

    fn of(model: Model, workload: Workload, connections: usize, m: &Measured<'_>) -> Self {
        let per_op = |total: Option<f64>| total.filter(|_| m.ops > 0.0).map(|t| t / m.ops);
        let o = m.outcome;
        let unserved = o.connected.saturating_sub(o.served);
        let ctx = match (
            m.server.server_voluntary_ctx_switches,
            m.server.server_involuntary_ctx_switches,
        ) {
            (Some(vol), Some(invol)) if m.ops > 0.0 => Some(CtxPerOp {
                voluntary: vol as f64 / m.ops,
                involuntary: invol as f64 / m.ops,
                total: (vol + invol) as f64 / m.ops,
            }),
            _ => None,
        };
        let status = if m.ops <= 0.0 {
            Status::Failed
        } else if o.errors > 0 || unserved > 0 {
            Status::Partial
        } else {
            Status::Ok
        };
        let note = o.first_error.clone().or_else(|| match status {
            Status::Ok => None,
            Status::Failed => Some("no operation completed in the window".to_owned()),
            Status::Partial => Some(format!(
                "{unserved} of {} connections established but not served in the window",
                o.connected
            )),
        });
        Point {
            status,
            note,
            ops_per_s: if m.window_s > 0.0 {
                m.ops / m.window_s
            } else {
                0.0
            },
            mb_per_s: m.mb_per_s,
            p50_us: m.p50_us,
            p99_us: m.p99_us,
            cpu_us_per_op: per_op(m.server_cpu_s.map(|s| s * 1e6)),
            ctx_switches_per_op: ctx,
            peak_rss_bytes: m.server.server_peak_rss_bytes,
            threads: m.server.server_threads,
            errors: o.errors,
            connect_errors: o.connect_errors,
            io_errors: o.io_errors,
            verify_errors: o.verify_errors,
            connected: o.connected,
            unserved,
            load_cpu_us_per_op: per_op(m.load_cpu_s.map(|s| s * 1e6)),
            window_s: m.window_s,
            ..Point::new(model, workload, connections)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(errors: u64, connected: u64, served: u64) -> Outcome {
        Outcome {
            errors,
            connect_errors: errors,
            io_errors: 0,
            verify_errors: 0,
            first_error: (errors > 0).then(|| "connect: refused".to_owned()),
            connected,
            served,
        }
    }

    fn measured<'a>(ops: f64, outcome: &'a Outcome, server: &'a ServerUse) -> Measured<'a> {
        Measured {
            ops,
            window_s: 2.0,
            mb_per_s: 1.0,
            p50_us: Some(10.0),
            p99_us: Some(20.0),
            server_cpu_s: Some(0.5),
            load_cpu_s: Some(1.0),
            outcome,
            server,
        }
    }

    #[test]
    fn costs_per_operation() {
        let server = ServerUse {
            server_voluntary_ctx_switches: Some(300),
            server_involuntary_ctx_switches: Some(100),
            server_threads: Some(3),
            server_peak_rss_bytes: Some(1 << 20),
        };
        let o = outcome(0, 10, 10);
        let p = Point::of(
            Model::Threads,
            Workload::Echo64,
            10,
            &measured(1000.0, &o, &server),
        );
        assert_eq!(p.status, Status::Ok);
        assert_eq!(p.ops_per_s, 500.0);
        assert_eq!(p.cpu_us_per_op, Some(500.0));
        assert_eq!(p.load_cpu_us_per_op, Some(1000.0));
        let ctx = p.ctx_switches_per_op.unwrap();
        assert_eq!((ctx.voluntary, ctx.involuntary, ctx.total), (0.3, 0.1, 0.4));
        assert_eq!(p.note, None);
    }

    #[test]
    fn failures_show() {
        let server = ServerUse::default();
        let unserved = outcome(0, 100, 30);
        let p = Point::of(
            Model::Pool,
            Workload::Echo64,
            100,
            &measured(10.0, &unserved, &server),
        );
        assert_eq!((p.status, p.unserved), (Status::Partial, 70));
        assert!(p.note.unwrap().contains("70 of 100"));
        let refused = outcome(5, 5, 5);
        let p = Point::of(
            Model::Pool,
            Workload::Echo64,
            10,
            &measured(10.0, &refused, &server),
        );
        assert_eq!((p.status, p.errors), (Status::Partial, 5));
        let nothing = outcome(10, 0, 0);
        let p = Point::of(
            Model::Pool,
            Workload::Echo64,
            10,
            &measured(0.0, &nothing, &server),
        );
        assert_eq!(p.status, Status::Failed);
        assert_eq!(p.cpu_us_per_op, None);
        let p = Point::failed(
            Model::PortUring,
            Workload::Download1M,
            1,
            "no io_uring".into(),
        );
        assert_eq!(
            (p.status, p.note.as_deref()),
            (Status::Failed, Some("no io_uring"))
        );
    }
}
