//! The results as a Markdown table: one row per point, grouped by workload and connection
//! count, the models in the article's order.

use std::fmt::Write;

use ringport_models::Model;

use crate::point::{Point, Status};
use crate::results::Results;

/// A number with a sensible number of digits; `–` for none.
pub(crate) fn num(v: Option<f64>) -> String {
    match v {
        None => "–".to_owned(),
        Some(0.0) => "0".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 0.1 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// What the status column shows.
pub(crate) fn status(p: &Point) -> String {
    match p.status {
        Status::Ok => "ok".to_owned(),
        Status::Partial if p.unserved > 0 && p.errors == 0 => {
            format!("⚠ {} unserved", p.unserved)
        }
        Status::Partial if p.unserved > 0 => {
            format!("⚠ {} errors, {} unserved", p.errors, p.unserved)
        }
        Status::Partial => format!("⚠ {} errors", p.errors),
        Status::Failed => "✗ failed".to_owned(),
    }
}

/// The column titles and each point's cells.
pub(crate) fn rows(results: &Results) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let head = vec![
        "workload",
        "conns",
        "model",
        "status",
        "ops/s",
        "MB/s",
        "p50 µs",
        "p99 µs",
        "CPU µs/op",
        "ctx/op vol",
        "ctx/op invol",
        "threads",
        "peak RSS MiB",
    ];
    let mut points: Vec<&Point> = results.points.iter().collect();
    let order = |p: &Point| {
        let workload = results
            .plan
            .workloads
            .iter()
            .position(|w| w.name() == p.workload);
        let model = Model::ALL.iter().position(|m| m.name() == p.model);
        (workload, p.connections, model)
    };
    points.sort_by_key(|p| order(p));
    let rows = points
        .into_iter()
        .map(|p| {
            vec![
                p.workload.clone(),
                p.connections.to_string(),
                p.model.clone(),
                status(p),
                num(Some(p.ops_per_s)),
                num(Some(p.mb_per_s)),
                num(p.p50_us),
                num(p.p99_us),
                num(p.cpu_us_per_op),
                num(p.ctx_switches_per_op.map(|c| c.voluntary)),
                num(p.ctx_switches_per_op.map(|c| c.involuntary)),
                p.threads.map_or("–".to_owned(), |t| t.to_string()),
                num(p.peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64)),
            ]
        })
        .collect();
    (head, rows)
}

/// The Markdown table, followed by the notes of the points that did not go well.
pub fn markdown(results: &Results) -> String {
    let (head, rows) = rows(results);
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let align: Vec<&str> = head
        .iter()
        .enumerate()
        .map(|(i, _)| if i < 4 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    let notes: Vec<&Point> = results.points.iter().filter(|p| p.note.is_some()).collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nPoints that did not go well:");
        for p in notes {
            let _ = writeln!(
                out,
                "- {} {} × {}: {}",
                p.model,
                p.workload,
                p.connections,
                p.note.as_deref().unwrap_or_default()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(None), "–");
        assert_eq!(num(Some(123456.7)), "123457");
        assert_eq!(num(Some(12.34)), "12.3");
        assert_eq!(num(Some(1.234)), "1.23");
        assert_eq!(num(Some(0.01234)), "0.012");
        assert_eq!(num(Some(0.0)), "0");
    }
}
