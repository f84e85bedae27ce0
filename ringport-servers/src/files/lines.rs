//! Request framing of the nc protocol: file names ended by LF (CRLF accepted), bounded.
//!
//! Bytes are kept as received and framed on demand, so a flood of short names costs only the
//! bytes held (which the caller bounds), never one allocation per name. Every line gets a
//! request, however it was cut into segments: a name of exactly the limit whose CR and LF come
//! apart, an empty line, and a last name the client ended with EOF instead of LF.

/// One framed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A file name (without its line ending; never empty).
    Name(Vec<u8>),
    /// A line with nothing in it (LF or CR LF alone).
    Empty,
    /// A line longer than the limit; its bytes are discarded up to its LF.
    TooLong,
}

/// Splits received bytes into requests.
#[derive(Debug)]
pub struct Lines {
    max_line: usize,
    /// Bytes received and not yet framed: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// `buf[start..scanned]` holds no LF.
    scanned: usize,
    /// Discarding the rest of an overlong line (already reported) up to its LF.
    skipping: bool,
    /// The client sent its last byte: an unfinished line is a request too.
    ended: bool,
}

impl Lines {
    /// A framer for lines of at most `max_line` bytes (not counting CR LF).
    pub fn new(max_line: usize) -> Self {
        Lines {
            max_line,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            skipping: false,
            ended: false,
        }
    }

    /// Feeds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The client will send nothing more: a last line without LF becomes a request.
    pub fn finish(&mut self) {
        self.ended = true;
    }

    /// The next complete request, in order.
    pub fn next_request(&mut self) -> Option<Request> {
        loop {
            let lf = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
            let Some(at) = lf.map(|i| self.scanned + i) else {
                self.scanned = self.buf.len();
                return self.unfinished();
            };
            let line = self.take(at, at + 1);
            if std::mem::take(&mut self.skipping) {
                continue; // the rest of a line already reported as too long
            }
            return Some(self.request(line));
        }
    }

    /// What the unfinished line means now: too long already, or (at EOF) a last request.
    fn unfinished(&mut self) -> Option<Request> {
        let held = self.buf.len() - self.start;
        if self.skipping {
            self.take(self.buf.len(), self.buf.len());
            return None;
        }
        // A name of the limit may still be followed by CR: allow one byte more until its LF.
        if held > self.max_line + 1 {
            self.take(self.buf.len(), self.buf.len());
            self.skipping = !self.ended;
            return Some(Request::TooLong);
        }
        if self.ended && held > 0 {
            let line = self.take(self.buf.len(), self.buf.len());
            return Some(self.request(line));
        }
        None
    }

    /// Takes `buf[start..end]` as a line and consumes up to `next`.
    fn take(&mut self, end: usize, next: usize) -> Vec<u8> {
        let line = self.buf[self.start..end].to_vec();
        self.start = next;
        self.scanned = next;
        if self.start == self.buf.len() {
            self.buf.clear();
            (self.start, self.scanned) = (0, 0);
        }
        line
    }

    fn request(&self, mut line: Vec<u8>) -> Request {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        match line.len() {
            0 => Request::Empty,
            n if n > self.max_line => Request::TooLong,
            _ => Request::Name(line),
        }
    }

    /// Bytes held: received and not yet framed.
    pub fn held_bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether part of a request has arrived and its end has not.
    pub fn in_progress(&self) -> bool {
        self.held_bytes() > 0 && !self.skipping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(l: &mut Lines) -> Vec<Request> {
        std::iter::from_fn(|| l.next_request()).collect()
    }

    fn name(s: &[u8]) -> Request {
        Request::Name(s.to_vec())
    }

    #[test]
    fn splits_lf_and_crlf_across_chunks() {
        let mut l = Lines::new(64);
        l.push(b"a.txt\nb.t");
        l.push(b"xt\r\n\n\r\nc");
        assert_eq!(
            all(&mut l),
            [
                name(b"a.txt"),
                name(b"b.txt"),
                Request::Empty,
                Request::Empty
            ]
        );
        assert!(l.in_progress());
        l.push(b"\n");
        assert_eq!(all(&mut l), [name(b"c")]);
        assert!(!l.in_progress());
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut l = Lines::new(4);
        l.push(b"abcd\nabcde");
        assert_eq!(all(&mut l), [name(b"abcd")]);
        l.push(b"fghij");
        l.push(b"klm\nok\n");
        assert_eq!(all(&mut l), [Request::TooLong, name(b"ok")]);
        // A CR before the LF does not count against the limit.
        l.push(b"abcd\r\n");
        assert_eq!(all(&mut l), [name(b"abcd")]);
    }

    #[test]
    fn a_name_of_the_limit_framed_the_same_in_any_segmentation() {
        let line = b"abcd\r\n";
        for cut1 in 0..=line.len() {
            for cut2 in cut1..=line.len() {
                let mut l = Lines::new(4);
                let mut got = Vec::new();
                for part in [&line[..cut1], &line[cut1..cut2], &line[cut2..]] {
                    l.push(part);
                    got.extend(all(&mut l));
                }
                assert_eq!(got, [name(b"abcd")], "cut at {cut1} and {cut2}");
            }
        }
    }

    #[test]
    fn a_last_line_without_lf_is_a_request_at_eof() {
        let mut l = Lines::new(8);
        l.push(b"a\nlast");
        assert_eq!(all(&mut l), [name(b"a")]);
        l.finish();
        assert_eq!(all(&mut l), [name(b"last")]);
        assert_eq!(all(&mut l), []);
        let mut l = Lines::new(8);
        l.push(b"cr\r");
        l.finish();
        assert_eq!(all(&mut l), [name(b"cr")]);
        let mut l = Lines::new(2);
        l.push(b"long");
        l.finish();
        assert_eq!(all(&mut l), [Request::TooLong]);
    }

    #[test]
    fn holds_at_most_the_limit_and_a_segment() {
        let mut l = Lines::new(1000);
        for _ in 0..100 {
            l.push(&[b'x'; 4096]);
            let _ = all(&mut l);
            assert!(l.held_bytes() <= 1001);
        }
        l.push(b"\nok\n");
        assert_eq!(all(&mut l), [name(b"ok")]);
    }

    #[test]
    fn a_flood_of_short_names_is_framed_one_at_a_time() {
        let mut l = Lines::new(16);
        l.push(&b"\0\n".repeat(8192));
        assert_eq!(l.held_bytes(), 16384);
        assert_eq!(l.next_request(), Some(name(b"\0")));
        assert_eq!(l.held_bytes(), 16382);
    }
}
