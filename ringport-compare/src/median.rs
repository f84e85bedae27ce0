//! Rounds: the matrix run several times (each round in another model order), each point
//! reported as the median of its rounds, field by field, so that one disturbed round on a
//! shared machine does not decide a ranking.

use crate::point::{CtxPerOp, Point, Status};

/// The lower median of `values` (`None` when empty).
fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().saturating_sub(1) / 2).copied()
}

fn median_by(rounds: &[&Point], f: impl Fn(&Point) -> Option<f64>) -> Option<f64> {
    median_of(rounds.iter().filter_map(|p| f(p)).collect())
}

fn median_u64(rounds: &[&Point], f: impl Fn(&Point) -> Option<u64>) -> Option<u64> {
    median_by(rounds, |p| f(p).map(|v| v as f64)).map(|v| v as u64)
}

/// One point from its rounds (all of the same model, workload and connection count): the
/// median of every measured field; the status from the median counts; the first note.
///
/// # Panics
/// If `rounds` is empty.
pub fn median(rounds: &[&Point]) -> Point {
    let first = rounds[0];
    let count = |f: fn(&Point) -> u64| median_u64(rounds, |p| Some(f(p))).unwrap_or(0);
    let ctx =
        |f: fn(&CtxPerOp) -> f64| median_by(rounds, |p| p.ctx_switches_per_op.as_ref().map(f));
    let ctx = match (
        ctx(|c| c.voluntary),
        ctx(|c| c.involuntary),
        ctx(|c| c.total),
    ) {
        (Some(voluntary), Some(involuntary), Some(total)) => Some(CtxPerOp {
            voluntary,
            involuntary,
            total,
        }),
        _ => None,
    };
    let ops_per_s = median_by(rounds, |p| Some(p.ops_per_s)).unwrap_or(0.0);
    let (errors, unserved) = (count(|p| p.errors), count(|p| p.unserved));
    let status = if ops_per_s <= 0.0 {
        Status::Failed
    } else if errors > 0 || unserved > 0 {
        Status::Partial
    } else {
        Status::Ok
    };
    Point {
        status,
        note: rounds.iter().find_map(|p| p.note.clone()),
        ops_per_s,
        mb_per_s: median_by(rounds, |p| Some(p.mb_per_s)).unwrap_or(0.0),
        p50_us: median_by(rounds, |p| p.p50_us),
        p99_us: median_by(rounds, |p| p.p99_us),
        cpu_us_per_op: median_by(rounds, |p| p.cpu_us_per_op),
        ctx_switches_per_op: ctx,
        peak_rss_bytes: median_u64(rounds, |p| p.peak_rss_bytes),
        threads: median_u64(rounds, |p| p.threads),
        errors,
        connect_errors: count(|p| p.connect_errors),
        io_errors: count(|p| p.io_errors),
        verify_errors: count(|p| p.verify_errors),
        connected: count(|p| p.connected),
        unserved,
        load_cpu_us_per_op: median_by(rounds, |p| p.load_cpu_us_per_op),
        window_s: median_by(rounds, |p| Some(p.window_s)).unwrap_or(0.0),
        rounds: rounds.len(),
        ..first.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Workload;
    use ringport_models::Model;

    fn point(ops: f64, cpu: Option<f64>, unserved: u64) -> Point {
        let mut p = Point::failed(Model::Reactor, Workload::Echo64, 10, String::new());
        p.note = None;
        p.status = Status::Ok;
        p.ops_per_s = ops;
        p.cpu_us_per_op = cpu;
        p.unserved = unserved;
        p
    }

    #[test]
    fn field_by_field() {
        let rounds = [
            point(100.0, Some(3.0), 0),
            point(300.0, None, 5),
            point(200.0, Some(1.0), 0),
        ];
        let refs: Vec<&Point> = rounds.iter().collect();
        let m = median(&refs);
        assert_eq!(m.ops_per_s, 200.0);
        // Lower median of the two readings.
        assert_eq!(m.cpu_us_per_op, Some(1.0));
        assert_eq!((m.unserved, m.status), (0, Status::Ok));
        assert_eq!(m.rounds, 3);
        assert_eq!(median_of(vec![]), None);
        assert_eq!(median_of(vec![4.0, 1.0, 3.0, 2.0]), Some(2.0));
    }
}
