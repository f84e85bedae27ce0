//! `ringport`: the completion-port servers, the load generator and backend information.

mod bench;
mod echo;
mod info;
mod logging;

use clap::{Parser, Subcommand};

/// ringport: high-performance servers on a completion port (IOCP semantics on io_uring).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// More log output (-v: each accept and close; -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The echo server of the first article: every byte received is sent back.
    Echo(echo::Args),
    /// Load generator: echo ping-pong with verified bytes and latency percentiles.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Which backend this machine gets and why; the io_uring features probed.
    Info(info::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    match cli.command {
        Command::Echo(args) => echo::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Info(args) => info::run(args),
    }
}
