//! The progress line on stderr: elapsed time and work done (round trips, downloads), while a
//! run goes on.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the display is refreshed (and the controller wakes up while it is shown).
const TICK: Duration = Duration::from_millis(100);

/// The progress display of one run; hidden unless asked for.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    /// What is counted: "round trips", "downloads".
    unit: &'static str,
}

impl Progress {
    /// A display for a run of `total` (warmup and window) counting `unit`, drawn on stderr if
    /// `shown`.
    pub(crate) fn new(shown: bool, total: Duration, unit: &'static str) -> Self {
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis().try_into().unwrap_or(u64::MAX)),
                ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Progress { bar, unit }
    }

    /// Sleeps until `deadline`, refreshing the display meanwhile with the count `done` reads.
    pub(crate) fn wait_until(
        &self,
        deadline: Instant,
        start: Instant,
        what: &str,
        done: &dyn Fn() -> u64,
    ) {
        loop {
            let now = Instant::now();
            if let Some(bar) = &self.bar {
                let elapsed = now.duration_since(start).as_millis();
                bar.set_position(elapsed.try_into().unwrap_or(u64::MAX));
                bar.set_message(format!("{what}: {} {}", done(), self.unit));
            }
            let Some(left) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return;
            };
            std::thread::sleep(if self.bar.is_some() {
                left.min(TICK)
            } else {
                left
            });
        }
    }

    /// Removes the display.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
