//! `index.html`: the charts and the table on one page that needs nothing but the folder it
//! is in (no script or style from elsewhere), so it reads offline.
//!
//! A small inline script marks the page once it has loaded: `data-charts-visible="N/M"` on
//! the body tells how many of the M charts loaded and have a size on screen, which is what
//! the headless-browser test reads.

use std::fmt::Write;
use std::path::Path;

use crate::charts::Chart;
use crate::results::Results;
use crate::table::rows;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
figure{display:inline-block;margin:0.2em}img.chart{width:720px;max-width:100%;height:auto}\
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}\
td.n{text-align:right}tr.warn td{background:#fff3e0}tr.fail td{background:#fde0e0}";

const SCRIPT: &str = "window.addEventListener('load',function(){\
var imgs=Array.prototype.slice.call(document.querySelectorAll('img.chart'));\
var ok=imgs.filter(function(i){var r=i.getBoundingClientRect();\
return i.complete&&i.naturalWidth>0&&r.width>0&&r.height>0;}).length;\
document.body.setAttribute('data-charts-visible',ok+'/'+imgs.length);});";

/// The page for `results` and `charts` (their files relative to the page's folder `dir`).
pub fn page(results: &Results, charts: &[Chart], dir: &Path) -> String {
    let m = &results.machine;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>ringport compare: server models side by side</title><style>{STYLE}</style></head>\n\
         <body>\n<h1>Server models side by side</h1>\n<p>{} CPUs, {}, servers {}; \
         each server may use {} CPU(s); descriptor limit {}. Warmup {:.2} s and {:.2} s \
         measured per point, each point the median of {} round(s); pool of {} threads.</p>\n",
        m.cpus,
        escape(&m.kernel),
        if m.pinned {
            "pinned to CPU 0 and the load generator to CPU 1"
        } else {
            "not pinned"
        },
        m.server_cpus,
        m.fd_limit,
        results.plan.warmup.as_secs_f64(),
        results.plan.duration.as_secs_f64(),
        results.plan.rounds,
        results.pool_threads,
    );
    for note in &m.notes {
        let _ = writeln!(out, "<p><strong>Note:</strong> {}</p>", escape(note));
    }
    for &workload in &results.plan.workloads {
        let _ = writeln!(out, "<h2>{}</h2>\n<div>", escape(workload.name()));
        for chart in charts.iter().filter(|c| c.workload == workload) {
            let file = chart.file.strip_prefix(dir).unwrap_or(&chart.file);
            let _ = writeln!(
                out,
                "<figure><img class=\"chart\" src=\"{}\" alt=\"{}\"></figure>",
                escape(&file.to_string_lossy()),
                escape(&chart.title)
            );
        }
        let _ = writeln!(out, "</div>");
    }
    let (head, rows) = rows(results);
    let _ = writeln!(out, "<h2>Every point</h2>\n<table>\n<tr>");
    for h in &head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    let _ = writeln!(out, "</tr>");
    for row in rows {
        let class = match row[3].chars().next() {
            Some('⚠') => " class=\"warn\"",
            Some('✗') => " class=\"fail\"",
            _ => "",
        };
        let _ = write!(out, "<tr{class}>");
        for (i, cell) in row.iter().enumerate() {
            let n = if i >= 4 { " class=\"n\"" } else { "" };
            let _ = write!(out, "<td{n}>{}</td>", escape(cell));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</table>\n<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}
