//! Parsing durations written the way people type them: `5`, `5s`, `500ms`, `1m`, `1m30s`.

use std::time::Duration;

/// A duration that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (examples: 5, 5s, 1.5s, 500ms, 1m, 1m30s)")]
pub struct ParseDurationError {
    input: String,
    why: &'static str,
}

/// Parses a duration: one or more `NUMBER[UNIT]` terms, added up. The units are `ns`, `us`
/// (or `µs`), `ms`, `s`, `m` and `h`; a lone number without a unit means seconds. Numbers may
/// have a fractional part (`1.5s`).
///
/// # Errors
/// When the text is empty, a unit is unknown, a number is missing or the total overflows.
pub fn parse_duration(input: &str) -> Result<Duration, ParseDurationError> {
    let err = |why| ParseDurationError {
        input: input.to_owned(),
        why,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_to_duration(secs).ok_or_else(|| err("out of range"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest[..unit_len].trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(err("a unit is needed between terms")),
            _ => return Err(err("unknown unit")),
        };
        rest = &rest[unit_len..];
        let term = secs_to_duration(value * scale).ok_or_else(|| err("out of range"))?;
        total = total.checked_add(term).ok_or_else(|| err("out of range"))?;
    }
    Ok(total)
}

fn secs_to_duration(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn plain_seconds() {
        assert_eq!(ok("5"), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0.25"), Duration::from_millis(250));
        assert_eq!(ok(" 3 "), Duration::from_secs(3));
    }

    #[test]
    fn units() {
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("750us"), Duration::from_micros(750));
        assert_eq!(ok("750µs"), Duration::from_micros(750));
        assert_eq!(ok("100ns"), Duration::from_nanos(100));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2min"), Duration::from_secs(120));
    }

    #[test]
    fn compound() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1s500ms"), Duration::from_millis(1500));
    }

    #[test]
    fn rejects() {
        for bad in [
            "", "  ", "s", "5x", "-1", "-1s", "1.2.3s", "5 s 3", "1e400", "abc",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        let e = parse_duration("5x").unwrap_err().to_string();
        assert!(e.contains("\"5x\"") && e.contains("unknown unit"), "{e}");
    }
}
