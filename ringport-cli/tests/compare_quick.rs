//! `ringport compare --quick` end to end: the Markdown table on stdout, JSON that parses with
//! every field of the schema, SVG charts that parse as XML with one series per model, and an
//! `index.html` that headless Chromium renders with every chart loaded and visible.
//!
//! Chromium (Debian's `chromium`, installed by `.ci/run`) is required: without it the test
//! fails, unless `RINGPORT_SKIP_BROWSER=1` says on purpose that this machine has none.
// Linux only: `ringport compare` exists only on Linux (it measures with /proc and CPU pinning),
// and the report is rendered by headless Chromium.
#![cfg(target_os = "linux")]

mod util;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::files::TempDir;

const MODELS: [&str; 6] = [
    "threads",
    "port-uring",
    "pool",
    "reactor",
    "port-epoll",
    "port-rule",
];
/// How long the quick comparison may take before the test calls it a hang (it is meant to
/// take under a minute; CI machines are shared).
const RUN_BOUND: Duration = Duration::from_secs(240);

/// Runs `ringport compare ARGS`, bounded in time; its stdout.
fn compare(args: &[&str]) -> String {
    let mut child = util::ringport(&[&["compare"], args].concat())
        .env("CI", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let status = util::wait_child(&mut child, RUN_BOUND);
    assert!(status.success(), "ringport compare {args:?}: {status}");
    reader.join().unwrap()
}

#[test]
fn quick_comparison_writes_table_json_charts_and_page() {
    let out = TempDir::new("compare");
    let out_dir = out.path().join("out");
    let started = Instant::now();
    let table = compare(&["--quick", "--out", out_dir.to_str().unwrap()]);
    eprintln!("quick comparison took {:?}", started.elapsed());

    // The table: a row per model, workload and connection count.
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 1 + 6 * 2 * 2, "{table}");
    for model in MODELS {
        let of_model = rows[1..]
            .iter()
            .filter(|r| r.contains(&format!("| {model} |")))
            .count();
        assert_eq!(of_model, 4, "{model} in\n{table}");
    }

    // The same results as JSON.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], "ringport-compare/1");
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    for p in points {
        for key in [
            "model",
            "workload",
            "connections",
            "status",
            "ops_per_s",
            "p50_us",
            "p99_us",
            "cpu_us_per_op",
            "ctx_switches_per_op",
            "peak_rss_bytes",
            "threads",
            "errors",
            "unserved",
        ] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
        // On loopback at 10 and 100 connections every model serves every client.
        assert_eq!(p["status"], "ok", "{p}");
        assert!(p["ops_per_s"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["cpu_us_per_op"].as_f64().unwrap() > 0.0, "{p}");
        let ctx = &p["ctx_switches_per_op"];
        assert!(
            ctx["total"].as_f64().unwrap() >= ctx["voluntary"].as_f64().unwrap(),
            "{p}"
        );
        assert!(p["threads"].as_u64().unwrap() >= 2, "{p}");
    }

    // The charts: XML, one series (a legend entry and a line) per model.
    let charts = svgs(&out_dir);
    assert_eq!(charts.len(), 2 * 4, "{charts:?}");
    for chart in &charts {
        let text = std::fs::read_to_string(chart).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", chart.display()));
        let labels: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for model in MODELS {
            let n = labels.iter().filter(|&&l| l == model).count();
            assert_eq!(
                n,
                1,
                "{}: legend entries of {model}: {labels:?}",
                chart.display()
            );
        }
        let lines = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count();
        assert!(
            lines >= 2 * MODELS.len(),
            "{}: {lines} polylines",
            chart.display()
        );
    }

    // The same table and charts again from the saved results, without measuring.
    let again_dir = out.path().join("again");
    let results = out_dir.join("results.json");
    let again = compare(&[
        "--replot",
        results.to_str().unwrap(),
        "--out",
        again_dir.to_str().unwrap(),
    ]);
    assert_eq!(again, table);
    assert_eq!(svgs(&again_dir).len(), charts.len());

    // The page, in a real browser: every chart loaded and on screen.
    let page = out_dir.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<img class=\"chart\"").count(), charts.len());
    match chromium() {
        Some(browser) => {
            let dom = dump_dom(&browser, &page);
            let visible = format!("data-charts-visible=\"{0}/{0}\"", charts.len());
            assert!(
                dom.contains(&visible),
                "{visible} not in the rendered page:\n{dom}"
            );
        }
        None if std::env::var_os("RINGPORT_SKIP_BROWSER").is_some() => {
            eprintln!("RINGPORT_SKIP_BROWSER: the page was not rendered");
        }
        None => panic!(
            "headless Chromium is needed to check index.html: `apt-get install chromium` \
             (or set RINGPORT_SKIP_BROWSER=1 on a machine that cannot have it)"
        ),
    }
}

/// `--json` prints the results on stdout (one small point, to keep it fast).
#[test]
fn json_on_stdout() {
    let out = TempDir::new("compare-json");
    let stdout = compare(&[
        "--json",
        "--models",
        "reactor",
        "--workloads",
        "echo-64B",
        "--conns",
        "2",
        "--warmup",
        "0s",
        "--duration",
        "200ms",
        "--out",
        out.path().join("out").to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["model"], "reactor");
    assert_eq!(points[0]["connections"], 2);
    assert_eq!(json["plan"]["models"][0], "reactor");
}

/// Bad flags are refused with a clear error, before anything runs.
#[test]
fn refuses_bad_flags() {
    for args in [
        &["--models", "iocp"][..],
        &["--conns", "0"],
        &["--workloads", "http"],
        &["--pool-threads", "0"],
        &["--rounds", "0"],
    ] {
        let out = util::ringport(&[&["compare"], args].concat())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
}

fn svgs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    files.sort();
    files
}

/// Debian's Chromium, if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The page's DOM after Chromium loaded it (headless, no network, a fresh profile).
fn dump_dom(browser: &Path, page: &Path) -> String {
    let profile = TempDir::new("chromium-profile");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let status = util::wait_child(&mut child, Duration::from_secs(90));
    assert!(status.success(), "chromium: {status}");
    reader.join().unwrap()
}
