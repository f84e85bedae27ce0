//! `ringport serve` (also what `ringport` does with no subcommand).

use std::net::SocketAddr;
use std::path::PathBuf;

use ringport_servers::files::{self, FilesConfig};

use crate::port_args::{timeout, PortArgs, Timeout};

/// Flags of `ringport serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to serve (default: the current folder).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8182")]
    listen: SocketAddr,
    /// Longest file name accepted, in bytes.
    #[arg(long, default_value_t = 4096)]
    max_name: usize,
    /// Seconds a connection may stay idle (no request in progress, no transfer) before it is
    /// closed (0: never).
    #[arg(long, default_value = "300", value_name = "SECS", value_parser = timeout)]
    idle_timeout: Timeout,
    /// Seconds within which a file name must arrive whole once its first byte has (0: no
    /// limit); a client that trickles bytes is told so and closed.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = timeout)]
    request_timeout: Timeout,
    /// Connections served at once; more are told "server busy" and closed.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    #[command(flatten)]
    port: PortArgs,
}

/// Serves files until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = FilesConfig::new(&args.dir, args.listen);
    cfg.port = args.port.settings(args.listen);
    cfg.max_name = args.max_name;
    cfg.idle_timeout = args.idle_timeout.0;
    cfg.request_timeout = args.request_timeout.0;
    cfg.max_connections = args.max_connections;
    let port = crate::serving::start("file", cfg.port.listen, || files::start(&cfg))?;
    let root = std::fs::canonicalize(&args.dir).unwrap_or(args.dir);
    println!(
        "ringport serve listening on {}, serving {} ({} backend, {} workers)",
        port.local_addr().unwrap_or(cfg.port.listen),
        root.display(),
        port.backend(),
        port.workers()
    );
    crate::serving::wait(port)
}
