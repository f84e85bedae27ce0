//! Precompressed side files: which of `name.br`, `name.zst`, `name.gz` a client may get, by
//! its `Accept-Encoding` (RFC 9110 §12.5.3). Nothing is compressed on the fly.

/// A content coding with a side file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Brotli, `name.br`.
    Br,
    /// Zstandard, `name.zst`.
    Zstd,
    /// Gzip, `name.gz`.
    Gzip,
}

impl Coding {
    /// All codings, in the server's order of preference when the client ranks them equally
    /// (smallest files first).
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The coding's name in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The side file's extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }
}

/// A q-value in thousandths (`q=0.5` → 500); `None` if malformed.
fn qvalue(params: &str) -> Option<u16> {
    let mut q = 1000;
    for param in params.split(';') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        let value = value.trim();
        let (int, frac) = value.split_once('.').unwrap_or((value, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac: u16 = format!("{frac:0<3}").parse().ok()?;
        q = match int {
            "0" => frac,
            "1" if frac == 0 => 1000,
            _ => return None,
        };
    }
    Some(q)
}

/// The codings the client accepts, best first (by q-value, then by [`Coding::ALL`]), leaving
/// out any it likes less than the original (`identity;q=…` higher than theirs).
pub fn preferences(accept_encoding: &str) -> Vec<Coding> {
    let mut explicit: [Option<u16>; 3] = [None; 3];
    let (mut star, mut identity) = (None, None);
    for item in accept_encoding.split(',') {
        let (name, params) = item.split_once(';').unwrap_or((item, ""));
        let Some(q) = qvalue(params) else {
            continue;
        };
        let name = name.trim();
        let slot = match name.to_ascii_lowercase().as_str() {
            "br" => &mut explicit[0],
            "zstd" => &mut explicit[1],
            "gzip" | "x-gzip" => &mut explicit[2],
            "identity" => &mut identity,
            "*" => &mut star,
            _ => continue,
        };
        // The first mention counts.
        slot.get_or_insert(q);
    }
    // The original is acceptable unless excluded; when not ranked, it comes last.
    let identity = identity.or(star).unwrap_or(0);
    let mut out: Vec<(u16, usize, Coding)> = Coding::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let q = explicit[i].or(star).unwrap_or(0);
            (q > 0 && q >= identity).then_some((q, i, c))
        })
        .collect();
    out.sort_by_key(|&(q, i, _)| (std::cmp::Reverse(q), i));
    out.into_iter().map(|(_, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    #[test]
    fn browsers_and_tools() {
        assert_eq!(preferences("gzip, deflate, br, zstd"), [Br, Zstd, Gzip]);
        assert_eq!(preferences("deflate, gzip"), [Gzip]);
        assert_eq!(preferences(""), []);
        assert_eq!(preferences("identity"), []);
    }

    #[test]
    fn q_values() {
        assert_eq!(preferences("br;q=0.5, gzip"), [Gzip, Br]);
        assert_eq!(preferences("br;q=0, gzip;q=0.1"), [Gzip]);
        assert_eq!(preferences("gzip;q=0"), []);
        assert_eq!(preferences("*"), [Br, Zstd, Gzip]);
        assert_eq!(preferences("*;q=0.5, gzip;q=0"), [Br, Zstd]);
        assert_eq!(preferences("gzip;q=0.5, identity"), []);
        assert_eq!(preferences("gzip;q=1.0, identity;q=0.5"), [Gzip]);
        assert_eq!(preferences("x-gzip"), [Gzip]);
        assert_eq!(preferences("gzip;q=2"), []);
        assert_eq!(preferences("gzip;q=0.0001"), []);
        assert_eq!(preferences("GZIP ; Q=0.3"), [Gzip]);
    }
}
