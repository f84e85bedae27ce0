//! `ringport echo`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use ringport::Backend;
use ringport_servers::echo::{self, EchoConfig};

use crate::info::default_workers;

/// Flags of `ringport echo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    /// Worker threads (default: available CPUs).
    #[arg(long, default_value_t = default_workers())]
    threads: usize,
    /// Backend: auto, uring or epoll.
    #[arg(long, env = Backend::ENV, default_value = "auto")]
    backend: Backend,
    /// Seconds that shutdown (SIGINT/SIGTERM) lets clients finish before closing them.
    #[arg(long, default_value_t = 5.0)]
    shutdown_timeout: f64,
}

/// Runs the echo server until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = EchoConfig {
        listen: args.listen,
        workers: args.threads,
        backend: args.backend,
        shutdown_timeout: Duration::try_from_secs_f64(args.shutdown_timeout)
            .context("--shutdown-timeout")?,
    };
    // Every connection is a descriptor: take all the process may have.
    if let Err(e) = ringport::raise_fd_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let port =
        echo::start(&cfg).with_context(|| format!("starting the echo server on {}", cfg.listen))?;
    // Handle SIGINT/SIGTERM before saying we are ready: whoever waits for that line may stop us.
    ringport::shutdown_on_signals(port.handle())?;
    let addr = port.local_addr().unwrap_or(cfg.listen);
    println!(
        "ringport echo listening on {addr} ({} backend, {} workers)",
        port.backend(),
        port.workers()
    );
    port.join()?;
    Ok(())
}
