//! Running a benchmark: start the port, warm up, measure, stop, collect ([`drive`]); and the
//! echo benchmark on it.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ringport::{Backend, Handler, Port};

use crate::control::{MEASURE, STOP};
use crate::cpu::Process;
use crate::echo::{EchoClient, Shared};
use crate::error::LoadError;
use crate::progress::Progress;
use crate::ramp::{Gate, Ramp, RAMP_LIMIT};
use crate::report::{Inputs, Report};
use crate::server::{ServerUse, Snapshot};
use crate::stats::{LiveCounter, Stats};

/// How long stopping may take (results handed back, workers joined) before the run gives up
/// waiting: the report is made either way, so a stuck server cannot hang the generator.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Largest message size accepted.
const MAX_SIZE: usize = 1 << 30;
/// Descriptors kept for everything but connections.
const SPARE_FDS: u64 = 64;

/// Settings of an echo ping-pong run.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// Connections, each with one message in flight.
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Worker threads of the generator's port (at most `conns` are used).
    pub threads: usize,
    /// Backend of the generator's port.
    pub backend: Backend,
    /// The server's process, to measure its CPU time in the window.
    pub server_pid: Option<u32>,
    /// Show a progress line on stderr.
    pub progress: bool,
}

impl EchoConfig {
    /// 50 connections × 64 bytes to `addr`, 1 s warmup, 5 s measured, one thread.
    pub fn new(addr: SocketAddr) -> Self {
        EchoConfig {
            addr,
            conns: 50,
            size: 64,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            threads: 1,
            backend: Backend::Auto,
            server_pid: None,
            progress: false,
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        let bad = |why: &str| Err(LoadError::Config(why.to_owned()));
        if self.conns == 0 {
            return bad("at least one connection is needed");
        }
        if self.size == 0 || self.size > MAX_SIZE {
            return bad("the message size must be between 1 byte and 1 GiB");
        }
        if self.threads == 0 {
            return bad("at least one thread is needed");
        }
        if self.duration.is_zero() {
            return bad("the measured duration must not be zero");
        }
        Ok(())
    }
}

/// CPU readings at the start of the window, and the server's other counters.
pub(crate) struct CpuStart {
    server: Option<(u32, Duration)>,
    server_counters: Option<Snapshot>,
    client: Option<Duration>,
}

impl CpuStart {
    pub(crate) fn read(server_pid: Option<u32>) -> Result<Self, LoadError> {
        // The slow reading (a file per server thread) first, the CPU times last: they frame
        // the window most closely.
        let server_counters = server_pid.and_then(|pid| Snapshot::read(pid).ok());
        let server = match server_pid {
            Some(pid) => Some((pid, read_server(pid)?)),
            None => None,
        };
        Ok(CpuStart {
            server,
            server_counters,
            client: Process::Current.cpu_time().ok(),
        })
    }

    /// CPU used since `self` by the server and the generator (`None` where a reading failed),
    /// and the server's context switches, threads and peak memory.
    pub(crate) fn elapsed(&self) -> (Option<Duration>, Option<Duration>, ServerUse) {
        let server = self.server.and_then(|(pid, start)| match read_server(pid) {
            Ok(end) => Some(end.saturating_sub(start)),
            Err(e) => {
                tracing::warn!("{e}: the server's CPU time is not reported");
                None
            }
        });
        let client = self
            .client
            .zip(Process::Current.cpu_time().ok())
            .map(|(start, end)| end.saturating_sub(start));
        let end = self.server.and_then(|(pid, _)| Snapshot::read(pid).ok());
        let used = ServerUse::between(self.server_counters.as_ref(), end.as_ref());
        (server, client, used)
    }
}

fn read_server(pid: u32) -> Result<Duration, LoadError> {
    Process::Pid(pid)
        .cpu_time()
        .map_err(|source| LoadError::ServerPid { pid, source })
}

/// Runs echo ping-pong as `cfg` says and reports what it measured.
///
/// Every connection sends a message, waits until all of it has come back (checking every byte
/// against what was sent), and sends the next. Round trips in the warmup are not measured.
/// After the window the generator stops by itself, within a short grace even if the server no
/// longer answers.
///
/// # Errors
/// Bad settings, an unreadable server pid, a port that does not start, or a worker that fails.
/// Connections that fail are counted in the report instead.
pub fn run_echo(cfg: &EchoConfig) -> Result<Report, LoadError> {
    cfg.validate()?;
    let plan = Plan {
        conns: cfg.conns,
        threads: cfg.threads.min(cfg.conns),
        warmup: cfg.warmup,
        duration: cfg.duration,
        backend: cfg.backend,
        server_pid: cfg.server_pid,
        progress: cfg.progress,
        unit: "round trips",
        buffers: None,
    };
    let shared = Arc::new(Shared {
        addr: cfg.addr,
        conns: cfg.conns,
        size: cfg.size,
        threads: plan.threads,
        round_trips: (0..plan.threads).map(|_| LiveCounter::default()).collect(),
    });
    let live = shared.clone();
    let measured = drive(
        &plan,
        &move || live.round_trips(),
        move |worker, results| EchoClient::new(worker, shared.clone(), results),
    )?;
    let inputs = Inputs {
        backend: measured.backend,
        conns: cfg.conns,
        size: cfg.size,
        threads: plan.threads,
        warmup: cfg.warmup,
        window: measured.window,
        server_cpu: measured.server_cpu,
        client_cpu: measured.client_cpu,
        server: measured.server,
    };
    Ok(Report::new(inputs, &measured.stats))
}

/// What every kind of run asks of the controller ([`drive`]).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Connections, for the descriptor limit.
    pub(crate) conns: usize,
    /// Worker threads of the generator's port (already at most `conns`).
    pub(crate) threads: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) backend: Backend,
    pub(crate) server_pid: Option<u32>,
    pub(crate) progress: bool,
    /// What the progress line counts.
    pub(crate) unit: &'static str,
    /// Provided receive buffers per worker (count, size); `None`: the port's default.
    pub(crate) buffers: Option<(u16, u32)>,
}

/// What the controller measured: the merged stats of every worker and the window's readings.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Backend of the generator's port.
    pub(crate) backend: String,
    /// The measured window as it ran.
    pub(crate) window: Duration,
    pub(crate) server_cpu: Option<Duration>,
    pub(crate) client_cpu: Option<Duration>,
    /// The server's context switches, threads and peak memory.
    pub(crate) server: ServerUse,
    pub(crate) stats: Stats,
}

/// Runs the generator's port as `plan` says: starts one handler per worker (`factory(worker,
/// results)`) behind the ramp's gate, waits until every connection is established (at most
/// [`RAMP_LIMIT`]), lets it warm up, posts [`MEASURE`], waits out the window, posts [`STOP`],
/// shuts the port down and collects each worker's [`Stats`] from `results`.
///
/// Handlers count only in the window, and hand their stats back at [`STOP`] (or when dropped).
/// Stopping is bounded by a grace: a server that no longer answers cannot hang the run.
pub(crate) fn drive<H, F>(
    plan: &Plan,
    done: &dyn Fn() -> u64,
    factory: F,
) -> Result<Measured, LoadError>
where
    H: Handler<Msg = u64>,
    F: Fn(usize, mpsc::Sender<Stats>) -> H + Send + Sync + 'static,
{
    let threads = plan.threads;
    if let Some(pid) = plan.server_pid {
        read_server(pid)?;
    }
    let wanted_fds = plan.conns as u64 + SPARE_FDS;
    match ringport::raise_fd_limit() {
        Ok(limit) if limit < wanted_fds => tracing::warn!(
            limit,
            "the open-descriptor limit is below {wanted_fds}: some connections will fail"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open-descriptor limit: {e}"),
    }

    let (results_tx, results_rx) = mpsc::channel();
    let ramp = Arc::new(Ramp::new(plan.conns, threads));
    let gate_ramp = ramp.clone();
    let port = {
        let mut builder = Port::builder()
            .workers(threads)
            .backend(plan.backend)
            .shutdown_timeout(Duration::from_millis(500));
        if let Some((count, size)) = plan.buffers {
            builder = builder.buffers(count, size);
        }
        builder
            .start(move |start| {
                Gate::new(
                    factory(start.worker(), results_tx.clone()),
                    gate_ramp.clone(),
                )
            })
            .map_err(LoadError::Start)?
    };
    ramp.wait_and_open(&port.handle(), RAMP_LIMIT);
    let start = Instant::now();
    let backend = port.backend().to_string();
    let handle = port.handle();
    let progress = Progress::new(plan.progress, plan.warmup + plan.duration, plan.unit);

    progress.wait_until(start + plan.warmup, start, "warmup", done);
    let cpu = CpuStart::read(plan.server_pid);
    let window_start = Instant::now();
    if let Err(e) = handle.post_all(MEASURE) {
        tracing::warn!("starting the measurement: {e}");
    }
    progress.wait_until(window_start + plan.duration, start, "measuring", done);
    if let Err(e) = handle.post_all(STOP) {
        tracing::warn!("stopping: {e}");
    }
    let window = window_start.elapsed();
    let (server_cpu, client_cpu, server) = match &cpu {
        Ok(cpu) => cpu.elapsed(),
        Err(_) => (None, None, ServerUse::default()),
    };
    handle.shutdown();
    progress.finish();
    let cpu_error = cpu.err();

    // Results first, then the workers: both bounded by the grace.
    let deadline = Instant::now() + STOP_GRACE;
    let mut stats = Stats::default();
    let mut reported = 0;
    while reported < threads {
        let left = deadline.saturating_duration_since(Instant::now());
        match results_rx.recv_timeout(left) {
            Ok(s) => {
                stats.merge(&s);
                reported += 1;
            }
            Err(_) => break,
        }
    }
    ramp.finish(&mut stats);
    let joined = join_within(port, deadline);
    if reported < threads {
        return Err(LoadError::Unresponsive(threads - reported));
    }
    match joined {
        Some(Err(e)) => return Err(LoadError::Worker(e)),
        Some(Ok(())) => {}
        None => tracing::warn!("the load generator's workers did not stop within {STOP_GRACE:?}"),
    }
    if let Some(e) = cpu_error {
        // The server was there at the start, and gone by the window: report without its CPU.
        tracing::warn!("{e}");
    }
    Ok(Measured {
        backend,
        window,
        server_cpu,
        client_cpu,
        server,
        stats,
    })
}

/// Joins the port's workers, waiting until `deadline` at most (`None`: still running; the
/// thread joining them is left behind).
fn join_within(port: Port<u64>, deadline: Instant) -> Option<std::io::Result<()>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("ringport-load-join".into())
        .spawn(move || {
            let _ = tx.send(port.join());
        })
        .ok()?;
    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()
}
