//! What every server subcommand does around its server: the descriptor limit, signals, and
//! how its exit is reported.

use std::net::SocketAddr;

use anyhow::Context;
use ringport::Port;

/// Raises the descriptor limit (every connection is one), starts the server with `start`, and
/// handles SIGINT/SIGTERM before the caller prints its ready line (whoever waits for that line
/// may signal at once).
pub fn start(
    what: &str,
    listen: SocketAddr,
    start: impl FnOnce() -> std::io::Result<Port>,
) -> anyhow::Result<Port> {
    if let Err(e) = ringport::raise_fd_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let port = start().with_context(|| format!("starting the {what} server on {listen}"))?;
    ringport::shutdown_on_signals(port.handle())?;
    Ok(port)
}

/// Waits for the server to stop. A failed worker is an error; a shutdown forced by a second
/// signal ends the process with status 130, as the signal would have.
pub fn wait(port: Port) -> anyhow::Result<()> {
    let handle = port.handle();
    port.join().context("the server stopped abnormally")?;
    if handle.was_aborted() {
        std::process::exit(130);
    }
    Ok(())
}
