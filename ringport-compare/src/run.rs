//! Running the matrix: a fresh server process per point, pinned away from the load
//! generator, driven by ringport's load generator, measured through `/proc`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ringport::Backend;
use ringport_load::{run_echo, run_files, EchoConfig, Expect, FilesConfig};
use ringport_models::Model;

use crate::plan::{Plan, Workload};
use crate::point::Point;
use crate::results::{Results, SCHEMA};
use crate::server::{Launch, ModelServer};
use crate::system::{self, Machine, LOAD_CPU, SERVER_CPU};

/// Descriptors kept for everything but connections (per process).
const SPARE_FDS: u64 = 1024;
/// Longest wait for the previous point's connections to be closed.
const DRAIN: Duration = Duration::from_secs(15);

/// Settings of a comparison.
#[derive(Debug, Clone)]
pub struct Compare {
    /// What to run.
    pub plan: Plan,
    /// The `ringport` binary, re-executed as `ringport model-server` for each point.
    pub exe: PathBuf,
    /// Threads of the pool model.
    pub pool_threads: usize,
    /// Pin servers to CPU 0 and the load generator to CPU 1 (where there are two CPUs).
    pub pin: bool,
    /// Show the progress bar on stderr.
    pub progress: bool,
}

/// The files the download workloads fetch, in a folder removed afterwards.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn create() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ringport-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let files = Files { dir };
        for w in Workload::ALL {
            if let Some(size) = w.file_size() {
                std::fs::write(files.path(w), content(size as usize, size))?;
            }
        }
        Ok(files)
    }

    fn name(w: Workload) -> String {
        format!("{}.bin", w.name())
    }

    fn path(&self, w: Workload) -> PathBuf {
        self.dir.join(Files::name(w))
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `len` bytes that differ at every position and from one file to the next (xorshift), so
/// that a misplaced chunk is caught by the byte-for-byte check.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Descriptors this process holds.
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The progress bar: model, workload, connections, point number and time left.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(shown: bool, total: Duration) -> Self {
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total.as_millis() as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    fn point(
        &self,
        i: usize,
        n: usize,
        model: Model,
        workload: Workload,
        conns: usize,
        left: Duration,
    ) {
        self.bar.set_message(format!(
            "{model} · {workload} · {conns} conns (point {}/{n}, about {} s left)",
            i + 1,
            left.as_secs()
        ));
    }
}

/// Runs every point of `cfg.plan`.
///
/// # Errors
/// When the files to download cannot be written. A model that cannot start, or a load run
/// that fails, makes a failed point instead.
pub fn run(cfg: &Compare) -> io::Result<Results> {
    let plan = &cfg.plan;
    let mut notes = Vec::new();
    let cpus = system::cpus();
    let pinned = cfg.pin && cpus >= 2;
    if cfg.pin && !pinned {
        notes.push(format!(
            "only {cpus} CPU: the servers and the load generator share it (not pinned)"
        ));
    }
    if pinned {
        if let Err(e) = system::pin_to(LOAD_CPU) {
            notes.push(format!(
                "could not pin the load generator to CPU {LOAD_CPU}: {e}"
            ));
        }
    }
    let want = 2 * plan.max_connections() as u64 + SPARE_FDS;
    let (fd_limit, fd_note) = system::raise_fd_limit(want);
    notes.extend(fd_note);
    for note in &notes {
        tracing::warn!("{note}");
    }
    let files = Files::create()?;
    let launch = Launch {
        exe: &cfg.exe,
        root: &files.dir,
        cpu: pinned.then_some(SERVER_CPU),
        pool_threads: cfg.pool_threads,
    };

    let rounds = plan.rounds.max(1);
    let total = plan.points().len() * rounds;
    let progress = Progress::new(cfg.progress, plan.expected());
    let mut left = plan.expected();
    let baseline_fds = fd_count();
    let mut measured = Vec::with_capacity(total);
    for round in 0..rounds {
        for (workload, conns, model) in plan.round(round) {
            let i = measured.len();
            progress.point(i, total, model, workload, conns, left);
            measured.push(measure(&launch, &files, plan, model, workload, conns));
            // The load generator's connections of this point close in the background: wait
            // for them, so that the next point starts on a quiet machine.
            let drained = Instant::now() + DRAIN;
            while fd_count() > baseline_fds + 64 && Instant::now() < drained {
                std::thread::sleep(Duration::from_millis(20));
            }
            let planned = plan.point_time(conns);
            left = left.saturating_sub(planned);
            progress.bar.inc(planned.as_millis() as u64);
        }
    }
    // Each point as the median of its rounds, in the order of the first round.
    let results = plan
        .points()
        .into_iter()
        .map(|(workload, conns, model)| {
            let of_point: Vec<&Point> = measured
                .iter()
                .filter(|p| {
                    p.model == model.name()
                        && p.workload == workload.name()
                        && p.connections == conns
                })
                .collect();
            crate::median::median(&of_point)
        })
        .collect();
    progress.bar.finish_and_clear();

    Ok(Results {
        schema: SCHEMA.to_owned(),
        machine: Machine {
            cpus,
            kernel: system::kernel(),
            pinned,
            server_cpus: if pinned { 1 } else { cpus },
            fd_limit,
            notes,
        },
        plan: plan.clone(),
        pool_threads: cfg.pool_threads,
        points: results,
    })
}

/// One point: a fresh server, the load, the readings.
fn measure(
    launch: &Launch<'_>,
    files: &Files,
    plan: &Plan,
    model: Model,
    workload: Workload,
    conns: usize,
) -> Point {
    let service = if workload == Workload::Echo64 {
        "echo"
    } else {
        "files"
    };
    let server = match ModelServer::start(launch, model, service) {
        Ok(server) => server,
        Err(e) => return Point::failed(model, workload, conns, e.to_string()),
    };
    let point = load(&server, files, plan, model, workload, conns);
    server.stop();
    point
}

fn load(
    server: &ModelServer,
    files: &Files,
    plan: &Plan,
    model: Model,
    workload: Workload,
    conns: usize,
) -> Point {
    let failed = |e: &dyn std::fmt::Display| Point::failed(model, workload, conns, e.to_string());
    if workload == Workload::Echo64 {
        let cfg = EchoConfig {
            addr: server.addr(),
            conns,
            size: 64,
            warmup: plan.warmup,
            duration: plan.duration,
            threads: 1,
            backend: Backend::Auto,
            server_pid: Some(server.pid()),
            progress: false,
        };
        return match run_echo(&cfg) {
            Ok(report) => Point::of_echo(model, conns, &report),
            Err(e) => failed(&e),
        };
    }
    let mut cfg = FilesConfig::new(
        server.addr(),
        Files::name(workload),
        Expect::File(files.path(workload)),
    );
    cfg.conns = conns;
    cfg.warmup = plan.warmup;
    cfg.duration = plan.duration;
    cfg.server_pid = Some(server.pid());
    // No byte for this long is a failed download: generous (a loopback transfer that moves
    // nothing for seconds is broken), yet within the point (5 s in the full matrix).
    cfg.stall_timeout =
        (plan.warmup + plan.duration).clamp(Duration::from_secs(2), Duration::from_secs(5));
    match run_files(&cfg) {
        Ok(report) => Point::of_files(model, workload, conns, &report),
        Err(e) => failed(&e),
    }
}

/// Writes the charts, `index.html` and `results.json` into `dir` (created if need be); the
/// charts written.
///
/// # Errors
/// When a file cannot be written.
pub fn write_outputs(results: &Results, dir: &Path) -> io::Result<Vec<crate::charts::Chart>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
    let charts = crate::charts::draw_all(results, dir)?;
    std::fs::write(
        dir.join("index.html"),
        crate::html::page(results, &charts, dir),
    )?;
    std::fs::write(dir.join("results.json"), results.to_json())?;
    std::fs::write(dir.join("results.md"), crate::table::markdown(results))?;
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_varies() {
        let a = content(4096, 1);
        assert_eq!(a.len(), 4096);
        assert_ne!(a, content(4096, 2));
        assert!(a.windows(2).filter(|w| w[0] == w[1]).count() < 100);
    }
}
