//! Conditional requests (RFC 9110 §13), evaluated in the RFC's order: `If-Match`, else
//! `If-Unmodified-Since` (412); `If-None-Match` (weak comparison, `*`, lists), else
//! `If-Modified-Since` (304); and `If-Range` (strong comparison) for ranges.

use std::time::UNIX_EPOCH;

use super::request::Request;

/// What the preconditions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve the file.
    Proceed,
    /// 304.
    NotModified,
    /// 412.
    Failed,
}

/// A file's validators.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The strong entity tag, with its quotes.
    pub etag: &'a str,
    /// Last modification in whole seconds since the epoch.
    pub modified_secs: u64,
}

/// One entity tag of a list: whether it is weak, and its opaque part with quotes.
fn tags(list: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let (weak, tail) = match rest.strip_prefix("W/") {
            Some(t) => (true, t),
            None => (false, rest),
        };
        // An opaque tag is `"…"` with no quote inside; commas may be inside.
        let body = tail.strip_prefix('"')?;
        let end = body.find('"')?;
        let tag = &tail[..end + 2];
        rest = &body[end + 1..];
        Some((weak, tag))
    })
}

fn is_star(list: &str) -> bool {
    list.trim_matches([' ', '\t']) == "*"
}

/// Strong comparison: both strong and equal. Our tags are always strong.
fn strong_match(list: &str, etag: &str) -> bool {
    is_star(list) || tags(list).any(|(weak, t)| !weak && t == etag)
}

/// Weak comparison: equal opaque parts, weak or not.
fn weak_match(list: &str, etag: &str) -> bool {
    is_star(list) || tags(list).any(|(_, t)| t == etag)
}

/// An HTTP date in seconds since the epoch, if it is one.
fn date_secs(value: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Evaluates the preconditions of a GET or HEAD of a file with validators `v`.
pub fn evaluate(req: &Request, v: &Validators<'_>) -> Decision {
    if let Some(list) = &req.if_match {
        if !strong_match(list, v.etag) {
            return Decision::Failed;
        }
    } else if let Some(date) = req.if_unmodified_since.as_deref().and_then(date_secs) {
        if v.modified_secs > date {
            return Decision::Failed;
        }
    }
    if let Some(list) = &req.if_none_match {
        if weak_match(list, v.etag) {
            return Decision::NotModified;
        }
    } else if let Some(date) = req.if_modified_since.as_deref().and_then(date_secs) {
        if v.modified_secs <= date {
            return Decision::NotModified;
        }
    }
    Decision::Proceed
}

/// Whether a `Range` may be honoured: no `If-Range`, or one that matches (a strong entity tag,
/// or exactly the last-modified date).
pub fn range_allowed(req: &Request, v: &Validators<'_>) -> bool {
    let Some(cond) = req.if_range.as_deref().map(str::trim) else {
        return true;
    };
    if cond.starts_with('"') || cond.starts_with("W/") {
        strong_match(cond, v.etag) && !is_star(cond)
    } else {
        date_secs(cond) == Some(v.modified_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Validators<'static> = Validators {
        etag: "\"abc-1\"",
        modified_secs: 1_000_000_000,
    };
    const BEFORE: &str = "Sun, 09 Sep 2001 01:46:39 GMT";
    const AT: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

    fn req(f: impl FnOnce(&mut Request)) -> Request {
        let mut r = Request::default();
        f(&mut r);
        r
    }

    #[test]
    fn if_none_match() {
        let d = |v: &str| evaluate(&req(|r| r.if_none_match = Some(v.into())), &V);
        assert_eq!(d("\"abc-1\""), Decision::NotModified);
        assert_eq!(d("W/\"abc-1\""), Decision::NotModified);
        assert_eq!(d("\"x\", \"abc-1\""), Decision::NotModified);
        assert_eq!(d("\"a,b\",\"abc-1\""), Decision::NotModified);
        assert_eq!(d("*"), Decision::NotModified);
        assert_eq!(d("\"abc\""), Decision::Proceed);
        assert_eq!(d("abc-1"), Decision::Proceed);
        // If-None-Match wins over If-Modified-Since.
        let r = req(|r| {
            r.if_none_match = Some("\"x\"".into());
            r.if_modified_since = Some(AT.into());
        });
        assert_eq!(evaluate(&r, &V), Decision::Proceed);
    }

    #[test]
    fn if_modified_since() {
        let d = |v: &str| evaluate(&req(|r| r.if_modified_since = Some(v.into())), &V);
        assert_eq!(d(AT), Decision::NotModified);
        assert_eq!(d(BEFORE), Decision::Proceed);
        assert_eq!(d("yesterday"), Decision::Proceed);
    }

    #[test]
    fn if_match_and_unmodified_since() {
        let d = |r: Request| evaluate(&r, &V);
        assert_eq!(
            d(req(|r| r.if_match = Some("\"abc-1\"".into()))),
            Decision::Proceed
        );
        assert_eq!(d(req(|r| r.if_match = Some("*".into()))), Decision::Proceed);
        assert_eq!(
            d(req(|r| r.if_match = Some("W/\"abc-1\"".into()))),
            Decision::Failed
        );
        assert_eq!(
            d(req(|r| r.if_match = Some("\"zzz\"".into()))),
            Decision::Failed
        );
        assert_eq!(
            d(req(|r| r.if_unmodified_since = Some(BEFORE.into()))),
            Decision::Failed
        );
        assert_eq!(
            d(req(|r| r.if_unmodified_since = Some(AT.into()))),
            Decision::Proceed
        );
    }

    #[test]
    fn if_range() {
        let ok = |v: &str| range_allowed(&req(|r| r.if_range = Some(v.into())), &V);
        assert!(range_allowed(&Request::default(), &V));
        assert!(ok("\"abc-1\""));
        assert!(!ok("W/\"abc-1\""));
        assert!(!ok("\"other\""));
        assert!(ok(AT));
        assert!(!ok(BEFORE));
        assert!(!ok("garbage"));
    }
}
