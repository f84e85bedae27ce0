//! The current date as HTTP and the access log write it, formatted once per second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// One second's dates.
struct Cached {
    secs: u64,
    /// `Wed, 02 Dec 2026 05:39:16 GMT`.
    http: String,
    /// `02/Dec/2026:05:39:16 +0000` (the access log's, in UTC).
    log: String,
}

thread_local! {
    static NOW: RefCell<Cached> = const {
        RefCell::new(Cached { secs: u64::MAX, http: String::new(), log: String::new() })
    };
}

fn with_now<R>(f: impl FnOnce(&Cached) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.secs != secs {
            c.secs = secs;
            c.http = httpdate::fmt_http_date(now);
            c.log = log_date(&c.http);
        }
        f(&c)
    })
}

/// Calls `f` with the current `Date` value.
pub fn with_http_date<R>(f: impl FnOnce(&str) -> R) -> R {
    with_now(|c| f(&c.http))
}

/// Calls `f` with the current date in the access log's format.
pub fn with_log_date<R>(f: impl FnOnce(&str) -> R) -> R {
    with_now(|c| f(&c.log))
}

/// `Wed, 02 Dec 2026 05:39:16 GMT` → `02/Dec/2026:05:39:16 +0000` (fixed positions: the
/// IMF-fixdate format has fixed widths).
fn log_date(http: &str) -> String {
    match (
        http.get(5..7),
        http.get(8..11),
        http.get(12..16),
        http.get(17..25),
    ) {
        (Some(day), Some(month), Some(year), Some(time)) => {
            format!("{day}/{month}/{year}:{time} +0000")
        }
        _ => http.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format() {
        assert_eq!(
            log_date("Wed, 02 Dec 2026 05:39:16 GMT"),
            "02/Dec/2026:05:39:16 +0000"
        );
        with_http_date(|d| assert!(d.ends_with(" GMT") && d.len() == 29, "{d}"));
        with_log_date(|d| assert!(d.ends_with(" +0000") && d.len() == 26, "{d}"));
    }
}
