//! `ringport serve` (also what `ringport` does with no subcommand).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ringport::Backend;
use ringport_servers::files::{self, FilesConfig};

use crate::info::default_workers;

/// Flags of `ringport serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to serve (default: the current folder).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8182")]
    listen: SocketAddr,
    /// Worker threads (default: available CPUs).
    #[arg(long, default_value_t = default_workers())]
    threads: usize,
    /// Backend: auto, uring or epoll.
    #[arg(long, env = Backend::ENV, default_value = "auto")]
    backend: Backend,
    /// Longest file name accepted, in bytes.
    #[arg(long, default_value_t = 4096)]
    max_name: usize,
    /// Seconds a connection may stay idle (no request, no transfer) before it is closed.
    #[arg(long, default_value_t = 300.0)]
    idle_timeout: f64,
    /// Connections served at once; more are told "server busy" and closed.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds that shutdown (SIGINT/SIGTERM) lets transfers in flight finish.
    #[arg(long, default_value_t = 10.0)]
    shutdown_timeout: f64,
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} {value}"))
}

/// Serves files until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = FilesConfig {
        root: args.dir.clone(),
        listen: args.listen,
        workers: args.threads,
        backend: args.backend,
        max_name: args.max_name,
        idle_timeout: seconds(args.idle_timeout, "--idle-timeout")?,
        max_connections: args.max_connections,
        shutdown_timeout: seconds(args.shutdown_timeout, "--shutdown-timeout")?,
    };
    // Every connection is a descriptor: take all the process may have.
    if let Err(e) = ringport::raise_fd_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    // Every connection is a descriptor: take all the process may have.
    if let Err(e) = ringport::raise_fd_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let port = files::start(&cfg)
        .with_context(|| format!("starting the file server on {}", cfg.listen))?;
    // Handle SIGINT/SIGTERM before saying we are ready: whoever waits for that line may stop us.
    ringport::shutdown_on_signals(port.handle())?;
    let addr = port.local_addr().unwrap_or(cfg.listen);
    let root = std::fs::canonicalize(&args.dir).unwrap_or(args.dir);
    println!(
        "ringport serve listening on {addr}, serving {} ({} backend, {} workers)",
        root.display(),
        port.backend(),
        port.workers()
    );
    port.join()?;
    Ok(())
}
