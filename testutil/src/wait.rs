//! Bounded waits: hang guards and polls, never timing assertions.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use ringport::Port;

/// How long a port may take to shut down and join before the test calls it a hang.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);
/// Generous deadline of a poll for something that must happen soon ([`eventually`]).
pub const EVENTUALLY: Duration = Duration::from_secs(15);

/// How often the polls look again.
const POLL: Duration = Duration::from_millis(10);

/// Runs `f` on a helper thread and waits for it at most `limit`: a hang guard, not a timing
/// assertion.
///
/// # Panics
/// If `f` takes longer than `limit`; if `f` panics, with its panic.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = thread.join();
            value
        }
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the helper sends before it ends"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still not done after {limit:?}"),
    }
}

/// Polls `check` every few milliseconds until it gives a value, for at most `limit`.
///
/// # Panics
/// If `limit` goes by first.
pub fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not so after {limit:?}");
        std::thread::sleep(POLL);
    }
}

/// Polls `cond` every few milliseconds until it holds, for at most `limit`.
///
/// # Panics
/// If `limit` goes by first.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    eventually(limit, what, || cond().then_some(()));
}

/// Polls `value` until it stops changing for `quiet`, for at most `limit`; returns it.
///
/// # Panics
/// If it still changes after `limit`.
pub fn settled<T: PartialEq + Copy>(limit: Duration, quiet: Duration, value: impl Fn() -> T) -> T {
    let deadline = Instant::now() + limit;
    let mut last = value();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(POLL * 2);
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(Instant::now() < deadline, "never settled within {limit:?}");
    }
}

/// Joins a port that was already asked to shut down, within [`SHUTDOWN_BOUND`].
///
/// # Panics
/// If that takes longer, or a worker fails.
pub fn join<M: Send + 'static>(port: Port<M>) {
    within(SHUTDOWN_BOUND, "joining the port", move || port.join())
        .expect("every worker exits cleanly");
}

/// Shuts the port down and joins it within [`SHUTDOWN_BOUND`].
///
/// # Panics
/// If that takes longer, or a worker fails.
pub fn shutdown_and_join<M: Send + 'static>(port: Port<M>) {
    port.shutdown();
    join(port);
}
