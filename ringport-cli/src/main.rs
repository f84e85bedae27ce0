//! `ringport`: the completion-port servers, the load generator and backend information.
//!
//! The measurement subcommands (`bench`, `compare`, `model-server`) exist on Linux only: they
//! measure with Linux facilities (`/proc`, rusage, `splice`, CPU pinning, epoll).

#[cfg(target_os = "linux")]
mod bench;
#[cfg(target_os = "linux")]
mod compare;
mod echo;
mod info;
mod logging;
#[cfg(target_os = "linux")]
mod model_server;
mod port_args;
mod serve;
mod serving;

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};

/// ringport: high-performance servers on a completion port (IOCP semantics: io_uring or epoll
/// on Linux, I/O completion ports on Windows).
///
/// With no subcommand, `ringport [DIR] [FLAGS]` is `ringport serve [DIR] [FLAGS]`: it serves
/// the current folder on 127.0.0.1:8182.
#[derive(Debug, Parser)]
#[command(name = "ringport", version, about)]
struct Cli {
    /// More log output (-v: each accept, request and close; -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of its variants does not matter (and differs by platform).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// The file server (the default): the second article's nc protocol (send a file name
    /// ended by a newline, get the file's bytes) and HTTP/1.1 (browsers, curl, wget) on the
    /// same port.
    Serve(serve::Args),
    /// The echo server of the first article: every byte received is sent back.
    Echo(echo::Args),
    /// Load generator: echo ping-pong and file downloads, every byte verified, latency percentiles.
    #[cfg(target_os = "linux")]
    #[command(subcommand)]
    Bench(bench::Command),
    /// The server models of the article side by side: thread per connection, thread pool,
    /// epoll reactor and the completion port, measured from 1 to 10,000 connections (table,
    /// JSON, SVG charts and an HTML report).
    #[cfg(target_os = "linux")]
    Compare(compare::Args),
    /// Which backend this machine gets and why (on Linux, the io_uring features probed).
    Info(info::Args),
    /// One server model in a process of its own (started by `ringport compare`).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    ModelServer(model_server::Args),
}

/// Inserts `serve` where the subcommand would stand when none is given: after the global flags,
/// unless what follows names a subcommand or asks for help or the version.
fn with_default_subcommand(mut args: Vec<OsString>) -> Vec<OsString> {
    let global = |a: &str| {
        matches!(a, "--verbose" | "--quiet")
            || (a.len() > 1
                && a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().all(|c| c == 'v' || c == 'q'))
    };
    let at = 1 + args
        .iter()
        .skip(1)
        .take_while(|a| a.to_str().is_some_and(global))
        .count();
    let explicit = args.get(at).and_then(|a| a.to_str()).is_some_and(|a| {
        matches!(a, "-h" | "--help" | "-V" | "--version")
            || Cli::command().find_subcommand(a).is_some()
    });
    if !explicit {
        args.insert(at.min(args.len()), "serve".into());
    }
    args
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(with_default_subcommand(std::env::args_os().collect()));
    logging::init(cli.verbose, cli.quiet);
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Echo(args) => echo::run(args),
        #[cfg(target_os = "linux")]
        Command::Bench(cmd) => bench::run(cmd),
        #[cfg(target_os = "linux")]
        Command::Compare(args) => compare::run_compare(args),
        Command::Info(args) => info::run(args),
        #[cfg(target_os = "linux")]
        Command::ModelServer(args) => model_server::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Vec<String> {
        let args = line.split_whitespace().map(OsString::from).collect();
        with_default_subcommand(args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn serve_is_the_default() {
        assert_eq!(parsed("ringport"), ["ringport", "serve"]);
        assert_eq!(parsed("ringport -v"), ["ringport", "-v", "serve"]);
        assert_eq!(
            parsed("ringport /srv --listen 0.0.0.0:1"),
            ["ringport", "serve", "/srv", "--listen", "0.0.0.0:1"]
        );
        assert_eq!(
            parsed("ringport -vv --listen x"),
            ["ringport", "-vv", "serve", "--listen", "x"]
        );
    }

    #[test]
    fn explicit_subcommands_and_help_stay() {
        assert_eq!(parsed("ringport -v echo"), ["ringport", "-v", "echo"]);
        assert_eq!(parsed("ringport info"), ["ringport", "info"]);
        assert_eq!(parsed("ringport --help"), ["ringport", "--help"]);
        assert_eq!(parsed("ringport -q info"), ["ringport", "-q", "info"]);
        Cli::command().debug_assert();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn measurement_subcommands_on_linux() {
        assert_eq!(parsed("ringport bench echo"), ["ringport", "bench", "echo"]);
        assert_eq!(parsed("ringport compare"), ["ringport", "compare"]);
    }

    /// Elsewhere they do not exist: the name is a folder to serve, and help does not list them.
    #[test]
    #[cfg(not(target_os = "linux"))]
    fn no_measurement_subcommands_elsewhere() {
        assert_eq!(parsed("ringport bench"), ["ringport", "serve", "bench"]);
        let help = Cli::command().render_help().to_string();
        for gone in ["bench", "compare", "model-server"] {
            assert!(!help.contains(gone), "{gone} in {help}");
        }
        assert!(help.contains("echo") && help.contains("serve") && help.contains("info"));
    }
}
