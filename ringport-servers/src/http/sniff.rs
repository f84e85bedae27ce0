//! Which protocol a connection speaks, from the start of its first line.
//!
//! `METHOD SP target SP HTTP/` starts an HTTP request line; anything else is an nc file name.
//! The decision is made on a prefix, as soon as the bytes can no longer be the other protocol,
//! and does not depend on how the bytes were split into segments.

/// Longest method token taken for HTTP; a longer first word is an nc name.
pub const MAX_METHOD: usize = 32;

/// What the bytes so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An HTTP request line.
    Http,
    /// An nc file name.
    Nc,
    /// Could still be either: wait for more bytes.
    Undecided,
}

/// `tchar` of RFC 9110: what a method token is made of.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decides from the first bytes of a connection. `limit` bounds the undecided prefix: a
/// request line still going past it (method and target seen, no version yet) is HTTP (its
/// target is too long: 414), anything else nc.
pub fn sniff(bytes: &[u8], limit: usize) -> Protocol {
    const VERSION: &[u8] = b"HTTP/";
    // Only the first `limit + 1` bytes count, so that a decision never changes later.
    let bytes = &bytes[..bytes.len().min(limit.saturating_add(1))];
    let method = bytes.iter().take_while(|&&b| is_tchar(b)).count();
    if method > MAX_METHOD {
        return Protocol::Nc;
    }
    let Some(&after) = bytes.get(method) else {
        return undecided(bytes, limit, false);
    };
    if method == 0 || after != b' ' {
        return Protocol::Nc;
    }
    let rest = &bytes[method + 1..];
    let target = rest.iter().take_while(|&&b| b > b' ' && b != 0x7f).count();
    let Some(&after) = rest.get(target) else {
        return undecided(bytes, limit, target > 0);
    };
    if target == 0 || after != b' ' {
        return Protocol::Nc;
    }
    let version = &rest[target + 1..];
    let n = version.len().min(VERSION.len());
    if version[..n] != VERSION[..n] {
        Protocol::Nc
    } else if n == VERSION.len() {
        Protocol::Http
    } else {
        undecided(bytes, limit, true)
    }
}

fn undecided(bytes: &[u8], limit: usize, in_target: bool) -> Protocol {
    match (bytes.len() > limit, in_target) {
        (false, _) => Protocol::Undecided,
        (true, true) => Protocol::Http,
        (true, false) => Protocol::Nc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tells_the_protocols_apart() {
        for http in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"HEAD /a%20b HTTP/1.0\n",
            b"POST http://x/ HTTP/",
            b"BREW /pot HTTP/9.9\r\n",
        ] {
            assert_eq!(sniff(http, 1000), Protocol::Http, "{}", http.escape_ascii());
        }
        for nc in [
            &b"index.html\n"[..],
            b"my file.txt\n",
            b"a b c\n",
            b"GET  / HTTP/1.1\r\n",
            b"/etc/passwd\n",
            b"GET / HTTX/1.1\r\n",
            b" GET / HTTP/1.1\r\n",
            b"\n",
            b"GET\n",
        ] {
            assert_eq!(sniff(nc, 1000), Protocol::Nc, "{}", nc.escape_ascii());
        }
        for open in [&b""[..], b"GE", b"GET", b"GET ", b"GET /x", b"GET /x HT"] {
            assert_eq!(sniff(open, 1000), Protocol::Undecided);
        }
    }

    #[test]
    fn long_prefixes_are_decided() {
        let long_target = [&b"GET /"[..], &[b'a'; 100]].concat();
        assert_eq!(sniff(&long_target, 50), Protocol::Http);
        let long_word = [b'a'; 20];
        assert_eq!(sniff(&long_word, 10), Protocol::Nc);
        assert_eq!(sniff(&[b'a'; 40], 1000), Protocol::Nc);
    }

    proptest! {
        /// Once decided, more bytes never change the decision.
        #[test]
        fn decisions_are_stable(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                cut in 0usize..64) {
            let cut = cut.min(bytes.len());
            let early = sniff(&bytes[..cut], 40);
            if early != Protocol::Undecided {
                prop_assert_eq!(sniff(&bytes, 40), early);
            }
        }
    }
}
