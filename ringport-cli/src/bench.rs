//! `ringport bench …`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use ringport::Backend;
use ringport_load::{parse_duration, run_echo, EchoConfig};

/// Load generator subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Echo ping-pong: each connection sends a message, waits until all of it is echoed back
    /// (every byte verified), then sends the next.
    ///
    /// Reports round trips per second, MB/s (payload bytes received back per second / 1e6,
    /// one direction), latency percentiles in µs, errors and, with --server-pid, the server's
    /// CPU per round trip. Rates and CPU cover the measured window; errors the whole run.
    Echo(EchoArgs),
}

/// Flags of `ringport bench echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// The echo server.
    #[arg(long, default_value = "127.0.0.1:7777")]
    addr: SocketAddr,
    /// Connections, each with one message in flight.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured window: 5, 5s, 500ms, 1m… (a bare number is seconds).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warmup before the window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Worker threads of the load generator's own port.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Backend of the load generator's own port: auto, uring or epoll.
    #[arg(long, env = Backend::ENV, default_value = "auto")]
    backend: Backend,
    /// The server's process id: report its CPU time (/proc/PID/stat) per round trip.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object on stdout instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Runs a benchmark.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Echo(args) => echo(args),
    }
}

fn echo(args: EchoArgs) -> anyhow::Result<()> {
    // Progress goes to a terminal only, never into a pipe, a log or CI.
    let progress = std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && (!args.json || std::io::stdout().is_terminal());
    let cfg = EchoConfig {
        addr: args.addr,
        conns: args.conns,
        size: args.size,
        warmup: args.warmup,
        duration: args.duration,
        threads: args.threads,
        backend: args.backend,
        server_pid: args.server_pid,
        progress,
    };
    let report = run_echo(&cfg).with_context(|| format!("echo benchmark against {}", cfg.addr))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if report.connected == 0 {
        bail!("no connection to {} could be established", cfg.addr);
    }
    Ok(())
}
