//! `ringport bench …`.

/// Load generator subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs a benchmark.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {}
}
