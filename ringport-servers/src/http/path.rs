//! From a request target to a path relative to the served folder.
//!
//! The target's path is percent-decoded, then split into segments: empty and `.` segments are
//! dropped, `..` is refused (clients remove dot segments before sending; one that arrives is
//! an attempt to climb), and so are NUL and backslashes, raw or encoded. Names starting with a
//! dot are not found unless hidden files are served. The kernel still has the last word:
//! files are opened beneath the folder (`openat2` with `RESOLVE_BENEATH`), so a symbolic link
//! cannot lead out either.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, CONTROLS};

use super::response::Status;

/// What a segment keeps percent-encoded in a link or `Location`: everything that is not plain
/// in a path segment (`/` too, so that a name stays one segment).
pub const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'\'')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A routed request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The decoded segments, none empty, `.` or `..`.
    pub segments: Vec<Vec<u8>>,
    /// The path ended with `/` (or was the root).
    pub slash: bool,
    /// The query, without its `?`, as sent.
    pub query: Option<Vec<u8>>,
}

impl Target {
    /// The path relative to the served folder: segments joined by `/` (`.` for the root).
    pub fn relative(&self) -> Vec<u8> {
        if self.segments.is_empty() {
            return b".".to_vec();
        }
        self.segments.join(&b'/')
    }

    /// The path of `name` inside this folder.
    pub fn child(&self, name: &str) -> Vec<u8> {
        let mut path = self.segments.join(&b'/');
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.as_bytes());
        path
    }

    /// This path with a slash added: the `Location` of a folder asked for without one. It
    /// starts with one `/` followed by a non-empty encoded segment, so it can never be read as
    /// `//host…` (another server).
    pub fn with_slash(&self) -> String {
        let mut out = String::from("/");
        for s in &self.segments {
            out.extend(percent_encode(s, SEGMENT));
            out.push('/');
        }
        if let Some(q) = &self.query {
            out.push('?');
            // The query came from a valid request line: visible ASCII, kept as sent.
            out.extend(percent_encode(q, CONTROLS));
        }
        out
    }
}

/// Routes `target` (origin form `/p?q`, or absolute form `http://host/p?q`).
///
/// # Errors
/// 400 for a malformed target, `..`, NUL or backslash; 404 for a hidden name when `hidden` is
/// off.
pub fn route(target: &[u8], hidden: bool) -> Result<Target, Status> {
    let path_and_query = if target.starts_with(b"/") {
        target
    } else {
        absolute_path(target).ok_or(Status::BadRequest)?
    };
    let (path, query) = match path_and_query.iter().position(|&b| b == b'?') {
        Some(i) => (&path_and_query[..i], Some(path_and_query[i + 1..].to_vec())),
        None => (path_and_query, None),
    };
    if path.contains(&b'#') || !well_encoded(path) {
        return Err(Status::BadRequest);
    }
    let decoded: Vec<u8> = percent_decode(path).collect();
    if decoded.contains(&0) || decoded.contains(&b'\\') {
        return Err(Status::BadRequest);
    }
    let mut segments = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err(Status::BadRequest),
            s if s.starts_with(b".") && !hidden => return Err(Status::NotFound),
            s => segments.push(s.to_vec()),
        }
    }
    let slash = decoded.ends_with(b"/") || segments.is_empty();
    Ok(Target {
        segments,
        slash,
        query,
    })
}

/// The path (and query) of an absolute-form target: `http://authority/path` (`/` when empty).
fn absolute_path(target: &[u8]) -> Option<&[u8]> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let rest = target[colon + 1..].strip_prefix(b"//")?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    match &rest[end..] {
        [] => Some(b"/"),
        [b'?', ..] => None,
        path => Some(path),
    }
}

/// Every `%` is followed by two hex digits.
fn well_encoded(path: &[u8]) -> bool {
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' {
            let hex = |j: usize| path.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !hex(i + 1) || !hex(i + 2) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rel(target: &str) -> Vec<u8> {
        route(target.as_bytes(), false).unwrap().relative()
    }

    #[test]
    fn decodes_and_normalises() {
        assert_eq!(rel("/a%20b.txt"), b"a b.txt");
        assert_eq!(rel("/"), b".");
        assert_eq!(rel("//a///b/./c?x=1"), b"a/b/c");
        assert_eq!(rel("/%E2%9C%93"), "✓".as_bytes());
        assert_eq!(rel("/a%2fb"), b"a/b");
        assert_eq!(rel("http://example.org/x/y"), b"x/y");
        assert_eq!(rel("HTTP://example.org"), b".");
        assert!(route(b"/dir/", false).unwrap().slash);
        assert!(!route(b"/dir", false).unwrap().slash);
    }

    #[test]
    fn refuses_climbing_and_odd_bytes() {
        for bad in [
            "/../secret.txt",
            "/a/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2fsecret.txt",
            "/..%2fsecret.txt",
            "/a%00b",
            "/a%5c..%5csecret.txt",
            "/a\\b",
            "/%zz",
            "/%4",
            "*",
            "ftp://x/y",
            "http:/x",
            "http://",
            "http://?x",
            "x/y",
            "/a#b",
        ] {
            assert_eq!(
                route(bad.as_bytes(), false),
                Err(Status::BadRequest),
                "{bad}"
            );
        }
        assert_eq!(route(b"/.env", false), Err(Status::NotFound));
        assert_eq!(route(b"/.git/config", false), Err(Status::NotFound));
        assert_eq!(route(b"/%2egit/config", false), Err(Status::NotFound));
        assert_eq!(route(b"/.env", true).unwrap().relative(), b".env");
    }

    #[test]
    fn redirects_stay_on_this_host() {
        let t = route(b"//evil.example/..", false);
        assert_eq!(t, Err(Status::BadRequest));
        let t = route(b"//evil.example/x", false).unwrap();
        assert_eq!(t.with_slash(), "/evil.example/x/");
        let t = route(b"/a%20b/c%3Fd?q=1", false).unwrap();
        assert_eq!(t.with_slash(), "/a%20b/c%3Fd/?q=1");
        assert_eq!(route(b"/a%2f%2fb", false).unwrap().with_slash(), "/a/b/");
    }

    proptest! {
        #[test]
        fn never_climbs(target in "[/a.%25c2eE0\\\\?#]{0,24}") {
            if let Ok(t) = route(target.as_bytes(), true) {
                for s in &t.segments {
                    prop_assert!(!s.is_empty() && s != b"." && s != b"..");
                    prop_assert!(!s.contains(&b'/') && !s.contains(&0) && !s.contains(&b'\\'));
                }
                prop_assert!(!t.with_slash().starts_with("//"));
            }
        }
    }
}
