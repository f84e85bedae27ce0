//! Ctrl+C and SIGTERM (on Windows: Ctrl+C, Ctrl+Break and closing the console): post the quit
//! packet to every worker, as the articles' server does.

use std::io;
use std::time::Duration;

use crate::port::PortHandle;
use crate::sys;

/// How long the second signal's abort may take before the process exits anyway.
const ABORT_GRACE: Duration = Duration::from_secs(3);

/// Shuts the port down gracefully on the first SIGINT or SIGTERM (Windows: Ctrl+C,
/// Ctrl+Break, console close). A second one aborts it: every connection is reset at once (a
/// transfer cut short must not look complete to its client), and the process exits with
/// status 130 at the latest three seconds later.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn shutdown_on_signals<M: Send + 'static>(port: PortHandle<M>) -> io::Result<()> {
    let mut seen = 0;
    sys::on_stop_signals(move |signal| {
        seen += 1;
        // Act first: logging may fail (a closed stderr) and must not stop this.
        if seen == 1 {
            port.shutdown();
            tracing::info!(signal, "shutting down (a second signal resets connections)");
        } else {
            port.abort();
            tracing::info!(signal, "resetting every connection");
            std::thread::sleep(ABORT_GRACE);
            std::process::exit(130);
        }
    })
}
