//! `ringport`: the completion-port servers, the load generator and backend information.

mod bench;
mod echo;
mod info;
mod logging;
mod serve;

use clap::{Parser, Subcommand};

/// ringport: high-performance servers on a completion port (IOCP semantics on io_uring).
///
/// With no subcommand, serves the current folder on 127.0.0.1:8182 (`ringport serve`).
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// More log output (-v: each accept, request and close; -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Flags of `serve`, the default when no subcommand is given.
    #[command(flatten)]
    serve: serve::Args,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The file download server of the second article (the default): send a file name
    /// ended by a newline, get the file's bytes; works with `nc`.
    Serve(serve::Args),
    /// The echo server of the first article: every byte received is sent back.
    Echo(echo::Args),
    /// Load generator: echo ping-pong and file downloads, every byte verified, latency percentiles.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Which backend this machine gets and why; the io_uring features probed.
    Info(info::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve::run(args),
        Command::Echo(args) => echo::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Info(args) => info::run(args),
    }
}
