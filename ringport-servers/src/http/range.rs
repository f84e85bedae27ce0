//! `Range: bytes=…` (RFC 9110 §14).
//!
//! One range gives a 206 (`a-b`, `a-`, and the suffix `-n`: the last `n` bytes). Several
//! ranges are answered with the whole file (200), which the RFC allows and which keeps the
//! work per request bounded whatever the client asks (no `multipart/byteranges`, so no
//! overlapping or out-of-order abuse). A header in another unit, or not well formed, is
//! ignored (200). A first position past the end, or one that does not fit in 64 bits, is not
//! satisfiable (416); a last position past the end is cut to the end.

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// Send the whole file (no range, several ranges, or a header to ignore).
    Whole,
    /// Send bytes `start..=end`.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416, with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Evaluates `header` against a file of `size` bytes.
pub fn evaluate(header: &str, size: u64) -> Ranged {
    let header = header.trim_matches([' ', '\t']);
    let Some((unit, set)) = header.split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim_end().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Ranged::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let (first, last) = (first.trim_end(), last.trim_start());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (first.is_empty(), last.is_empty()) {
        // `-n`: the last n bytes (a number past 64 bits asks for all of them).
        (true, false) if digits(last) => {
            let n = last.parse::<u64>().unwrap_or(u64::MAX);
            if n == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start: size - n.min(size),
                    end: size - 1,
                }
            }
        }
        (false, _) if digits(first) && (last.is_empty() || digits(last)) => {
            let Ok(start) = first.parse::<u64>() else {
                return Ranged::Unsatisfiable;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                last.parse::<u64>().unwrap_or(u64::MAX)
            };
            if end < start {
                Ranged::Whole
            } else if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(start: u64, end: u64) -> Ranged {
        Ranged::Part { start, end }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(evaluate("bytes=0-9", 100), part(0, 9));
        assert_eq!(evaluate("bytes=90-", 100), part(90, 99));
        assert_eq!(evaluate("bytes=-10", 100), part(90, 99));
        assert_eq!(evaluate("bytes=-1000", 100), part(0, 99));
        assert_eq!(evaluate("bytes=50-1000", 100), part(50, 99));
        assert_eq!(evaluate("Bytes = 5-5 ", 100), part(5, 5));
        assert_eq!(
            evaluate("bytes=0-99999999999999999999999", 100),
            part(0, 99)
        );
        assert_eq!(evaluate("bytes=-99999999999999999999999", 100), part(0, 99));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(evaluate("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(
            evaluate("bytes=18446744073709551615-", 100),
            Ranged::Unsatisfiable
        );
        assert_eq!(
            evaluate("bytes=99999999999999999999999-", 100),
            Ranged::Unsatisfiable
        );
        assert_eq!(evaluate("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(evaluate("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(evaluate("bytes=-5", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn ignored() {
        for h in [
            "items=0-5",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=--5",
            "bytes=",
            "bytes",
            "bytes=0-1,2-3",
            "bytes=1-2-3",
            "bytes=+1-2",
        ] {
            assert_eq!(evaluate(h, 100), Ranged::Whole, "{h}");
        }
        let many = format!("bytes={}", vec!["0-0"; 1000].join(","));
        assert_eq!(evaluate(&many, 100), Ranged::Whole);
    }

    proptest! {
        #[test]
        fn parts_stay_inside(h in "[ -~]{0,40}", size in 0u64..1000) {
            if let Ranged::Part { start, end } = evaluate(&h, size) {
                prop_assert!(start <= end && end < size);
            }
        }
    }
}
