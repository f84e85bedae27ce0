//! `ringport model-server` (hidden): one server model of `ringport compare`, in a process of
//! its own so that its CPU time, context switches, memory and threads can be read from
//! `/proc/PID`. It prints `listening on ADDR` once ready and exits when its standard input
//! closes (so it never outlives the comparison that started it).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use ringport_models::{start, Model, ModelConfig, Service};

/// Flags of `ringport model-server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model: threads, pool, reactor, port-uring, port-epoll or port-rule.
    #[arg(long)]
    model: Model,
    /// What to serve: echo or files.
    #[arg(long)]
    service: String,
    /// The folder the file service serves.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Pin the server to this CPU (its "CPUs" are then one).
    #[arg(long)]
    cpu: Option<usize>,
    /// Threads of the pool model.
    #[arg(long, default_value_t = 256)]
    pool_threads: usize,
}

/// Runs the model until standard input closes.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(cpu) = args.cpu {
        ringport_compare::pin_to(cpu).with_context(|| format!("pinning to CPU {cpu}"))?;
    }
    let service = match args.service.as_str() {
        "echo" => Service::Echo,
        "files" => Service::Files(args.root.clone()),
        other => bail!("unknown service {other:?} (expected echo or files)"),
    };
    if let Err(e) = ringport::raise_fd_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let mut cfg = ModelConfig::new(args.listen);
    cfg.pool_threads = args.pool_threads;
    let server = start(args.model, &service, &cfg)
        .with_context(|| format!("starting model {}", args.model))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", server.local_addr())?;
    out.flush()?;
    drop(out);
    // Block until whoever started us closes our standard input (or dies).
    let mut sink = [0u8; 64];
    while let Ok(n) = std::io::stdin().read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    // Exit at once: the OS closes every connection, which is all a measured server needs.
    std::process::exit(0);
}
