//! The charts: for each workload, throughput, p99 latency, server CPU per operation and
//! context switches per operation against the connection count, one line per model, drawn
//! as SVG with plotters (log–log axes: connections span four decades, and the models'
//! costs differ by factors, which a log axis shows as equal distances).
//!
//! Text is written as SVG `<text>`; plotters is built without its font loader (no `ttf`
//! feature), so drawing needs no system font and the viewer's own font shows the labels.
//!
//! A point that went wrong is never left blank: a partial point (errors, or clients left
//! unserved) gets a red cross on its value; a failed point (nothing served) a red cross on
//! the chart's floor.

use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use ringport_models::Model;

use crate::plan::Workload;
use crate::point::{Point, Status};
use crate::results::Results;

/// Size of a chart, in SVG pixels.
const SIZE: (u32, u32) = (760, 460);

/// What a chart plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Operations per second (echo) or MB/s (downloads).
    Throughput,
    /// 99th percentile latency.
    P99,
    /// Server CPU per operation.
    Cpu,
    /// Server context switches per operation.
    CtxSwitches,
}

impl Metric {
    /// Every chart of a workload.
    pub const ALL: [Metric; 4] = [
        Metric::Throughput,
        Metric::P99,
        Metric::Cpu,
        Metric::CtxSwitches,
    ];

    fn file_part(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::P99 => "p99",
            Metric::Cpu => "cpu-per-op",
            Metric::CtxSwitches => "ctx-switches-per-op",
        }
    }

    /// The axis title for `workload`.
    pub fn axis(self, workload: Workload) -> String {
        match (self, workload) {
            (Metric::Throughput, Workload::Echo64) => "round trips / s".to_owned(),
            (Metric::Throughput, _) => "MB/s received".to_owned(),
            (Metric::P99, _) => format!("p99 µs per {}", workload.op()),
            (Metric::Cpu, _) => format!("server CPU µs per {}", workload.op()),
            (Metric::CtxSwitches, _) => format!("server context switches per {}", workload.op()),
        }
    }

    fn value(self, p: &Point) -> Option<f64> {
        let v = match self {
            Metric::Throughput if p.workload == Workload::Echo64.name() => Some(p.ops_per_s),
            Metric::Throughput => Some(p.mb_per_s),
            Metric::P99 => p.p99_us,
            Metric::Cpu => p.cpu_us_per_op,
            Metric::CtxSwitches => p.ctx_switches_per_op.map(|c| c.total),
        };
        v.filter(|v| v.is_finite() && *v > 0.0 && p.status != Status::Failed)
    }
}

/// A chart written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// The file, in the output folder.
    pub file: PathBuf,
    /// Its title.
    pub title: String,
    /// Its workload.
    pub workload: Workload,
}

/// Draws every chart of `results` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn draw_all(results: &Results, dir: &Path) -> io::Result<Vec<Chart>> {
    let mut charts = Vec::new();
    for &workload in &results.plan.workloads {
        for metric in Metric::ALL {
            let file = dir.join(format!("{}-{}.svg", workload.name(), metric.file_part()));
            let title = format!("{}: {}", workload.name(), metric.axis(workload));
            draw(results, workload, metric, &title, &file)
                .map_err(|e| io::Error::other(format!("drawing {}: {e}", file.display())))?;
            charts.push(Chart {
                file,
                title,
                workload,
            });
        }
    }
    Ok(charts)
}

/// A colour per model that reads on white (Tableau 10), the same in every chart.
fn color(model: Model) -> RGBColor {
    match model {
        Model::Threads => RGBColor(214, 39, 40),
        Model::Pool => RGBColor(140, 86, 75),
        Model::Reactor => RGBColor(44, 160, 44),
        Model::PortUring => RGBColor(31, 119, 180),
        Model::PortEpoll => RGBColor(255, 127, 14),
        Model::PortRule => RGBColor(148, 103, 189),
    }
}

/// The models present in `results`, in the article's order.
fn models(results: &Results) -> Vec<Model> {
    Model::ALL
        .into_iter()
        .filter(|m| results.points.iter().any(|p| p.model == m.name()))
        .collect()
}

/// A log range around `values` (a decade when there is nothing to show).
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 1.0..10.0;
    }
    lo / 2.0..hi * 2.0
}

fn draw(
    results: &Results,
    workload: Workload,
    metric: Metric,
    title: &str,
    file: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let points: Vec<&Point> = results
        .points
        .iter()
        .filter(|p| p.workload == workload.name())
        .collect();
    let x = log_range(points.iter().map(|p| p.connections as f64));
    let x = x.start.max(0.5)..x.end;
    let y = log_range(points.iter().filter_map(|p| metric.value(p)));
    // Headroom above the data for the legend (a third of the height on the log axis).
    let y = y.start..y.end * (y.end / y.start).sqrt().max(4.0);

    let root = SVGBackend::new(file, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x.log_scale(), y.clone().log_scale())?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .y_desc(metric.axis(workload))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| crate::table::num(Some(*v)))
        .draw()?;

    let floor = y.start * 1.15;
    let mut marked = false;
    for model in models(results) {
        let color = color(model);
        let mut mine: Vec<&&Point> = points.iter().filter(|p| p.model == model.name()).collect();
        mine.sort_by_key(|p| p.connections);
        let line: Vec<(f64, f64)> = mine
            .iter()
            .filter_map(|p| Some((p.connections as f64, metric.value(p)?)))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
            .label(model.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
            });
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        let wrong = mine.iter().filter(|p| p.status != Status::Ok).map(|p| {
            let at = metric.value(p).unwrap_or(floor);
            Cross::new((p.connections as f64, at), 6, RED.stroke_width(2))
        });
        let wrong: Vec<_> = wrong.collect();
        marked |= !wrong.is_empty();
        chart.draw_series(wrong)?;
    }
    if marked {
        chart
            .draw_series(std::iter::empty::<Cross<(f64, f64), i32>>())?
            .label("✗ errors or unserved clients (on the floor: nothing served)")
            .legend(|(x, y)| Cross::new((x + 11, y), 5, RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}
