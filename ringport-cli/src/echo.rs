//! `ringport echo`.

use std::net::SocketAddr;

use ringport_servers::echo::{self, EchoConfig};

use crate::port_args::PortArgs;

/// Flags of `ringport echo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    #[command(flatten)]
    port: PortArgs,
}

/// Runs the echo server until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = EchoConfig {
        port: args.port.settings(args.listen),
    };
    let port = crate::serving::start("echo", cfg.port.listen, || echo::start(&cfg))?;
    println!(
        "ringport echo listening on {} ({} backend, {} workers)",
        port.local_addr().unwrap_or(cfg.port.listen),
        port.backend(),
        port.workers()
    );
    crate::serving::wait(port)
}
