//! `ringport bench …`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use ringport::Backend;
use ringport_load::{
    parse_duration, run_echo, run_files, EchoConfig, Expect, FilesConfig, Protocol,
};

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
    /// Downloads: each connection fetches NAME, reads the whole file, and asks again on the
    /// same connection.
    ///
    /// Every download's length is checked; with a local copy (--file, or NAME itself when it
    /// exists in the current folder) every byte is compared too. Reports downloads per
    /// second, MB/s (file bytes received per second / 1e6), download times (request to last
    /// byte), errors and, with --server-pid, the server's CPU per download and per GB.
    /// `--protocol http` speaks HTTP/1.1 keep-alive (GET /NAME), to measure other servers
    /// such as nginx with the same client.
    Files(FilesArgs),
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
    #[command(flatten)]
    run: RunArgs,
}

/// Flags every benchmark has: the window, the generator's own port, the server to watch.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
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
    /// The server's process id: report its CPU time (/proc/PID/stat) per operation (and per GB
    /// for downloads).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object on stdout instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Flags of `ringport bench files`.
#[derive(Debug, clap::Args)]
pub struct FilesArgs {
    /// The file server.
    #[arg(long, default_value = "127.0.0.1:8182")]
    addr: SocketAddr,
    /// The file to fetch, relative to the served folder.
    #[arg(long)]
    name: String,
    /// A local copy of the file: every byte received is compared with it (default: NAME, if
    /// it exists relative to the current folder).
    #[arg(long, conflicts_with = "size")]
    file: Option<PathBuf>,
    /// The file's size in bytes: only lengths are checked.
    #[arg(long)]
    size: Option<u64>,
    /// How to ask: nc (ringport serve: NAME and a newline) or http (GET /NAME, keep-alive).
    #[arg(long, default_value = "nc")]
    protocol: Protocol,
    /// Connections, each with one download in flight.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// A download that gets no byte for this long counts as an error.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    stall_timeout: Duration,
    /// Do not look at the bytes: each body is spliced from the socket into /dev/null and only
    /// lengths are counted (one thread per connection), so that the server, not this client,
    /// is what is measured. The size comes from --size or the local copy's length.
    #[arg(long)]
    discard: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs a benchmark.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Echo(args) => echo(args),
        Command::Files(args) => files(args),
    }
}

/// Whether to draw the progress line: on a terminal only, never into a pipe, a log or CI.
fn show_progress(json: bool) -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && (!json || std::io::stdout().is_terminal())
}

fn echo(args: EchoArgs) -> anyhow::Result<()> {
    let run = &args.run;
    let cfg = EchoConfig {
        addr: args.addr,
        conns: args.conns,
        size: args.size,
        warmup: run.warmup,
        duration: run.duration,
        threads: run.threads,
        backend: run.backend,
        server_pid: run.server_pid,
        progress: show_progress(run.json),
    };
    let report = run_echo(&cfg).with_context(|| format!("echo benchmark against {}", cfg.addr))?;
    finish(
        run.json,
        report.to_json(),
        &report,
        report.outcome.connected,
        cfg.addr,
    )
}

/// Prints the report (JSON or text); fails when no connection could be made.
fn finish(
    json: bool,
    as_json: String,
    text: &dyn std::fmt::Display,
    connected: u64,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    if json {
        println!("{as_json}");
    } else {
        println!("{text}");
    }
    if connected == 0 {
        bail!("no connection to {addr} could be established");
    }
    Ok(())
}

/// What the downloads must be: --file, --size, or NAME itself when it is a local file.
fn expect(args: &FilesArgs) -> anyhow::Result<Expect> {
    if args.discard && args.size.is_none() {
        let path = args
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from(&args.name));
        let meta = std::fs::metadata(&path).with_context(|| {
            format!(
                "{}: give --size BYTES (or a local copy) with --discard",
                path.display()
            )
        })?;
        return Ok(Expect::Size(meta.len()));
    }
    match (&args.file, args.size) {
        (Some(path), _) => Ok(Expect::File(path.clone())),
        (None, Some(size)) => Ok(Expect::Size(size)),
        (None, None) if Path::new(&args.name).is_file() => {
            Ok(Expect::File(PathBuf::from(&args.name)))
        }
        (None, None) => bail!(
            "{} is not in the current folder: give --file PATH (a local copy) or --size BYTES",
            args.name
        ),
    }
}

fn files(args: FilesArgs) -> anyhow::Result<()> {
    let run = &args.run;
    let cfg = FilesConfig {
        addr: args.addr,
        name: args.name.clone(),
        expect: expect(&args)?,
        protocol: args.protocol,
        conns: args.conns,
        warmup: run.warmup,
        duration: run.duration,
        threads: run.threads,
        backend: run.backend,
        server_pid: run.server_pid,
        stall_timeout: args.stall_timeout,
        progress: show_progress(run.json),
        discard: args.discard,
    };
    let report =
        run_files(&cfg).with_context(|| format!("download benchmark against {}", cfg.addr))?;
    finish(
        run.json,
        report.to_json(),
        &report,
        report.outcome.connected,
        cfg.addr,
    )
}
