//! Ctrl+C and SIGTERM: post the quit packet to every worker (as the articles' server does).

use std::io;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::port::PortHandle;

/// Shuts the port down gracefully on the first SIGINT or SIGTERM; a second one ends the
/// process at once with status 130.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn shutdown_on_signals(port: PortHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("ringport-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen > 1 {
                    std::process::exit(130);
                }
                // Shut down first: logging may fail (a closed stderr) and must not stop this.
                port.shutdown();
                tracing::info!(signal, "shutting down");
            }
        })?;
    Ok(())
}
