//! Request framing of the nc protocol: file names ended by LF (CRLF accepted), bounded.

use std::collections::VecDeque;

/// One framed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A file name (without its line ending; never empty).
    Name(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded up to its LF.
    TooLong,
}

/// Splits received bytes into requests. Holds at most `max_line` bytes of an unfinished line.
#[derive(Debug)]
pub struct Lines {
    max_line: usize,
    partial: Vec<u8>,
    /// Discarding the rest of an overlong line.
    skipping: bool,
    ready: VecDeque<Request>,
}

impl Lines {
    /// A framer for lines of at most `max_line` bytes (not counting CR LF).
    pub fn new(max_line: usize) -> Self {
        Lines {
            max_line,
            partial: Vec::new(),
            skipping: false,
            ready: VecDeque::new(),
        }
    }

    /// Feeds received bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (line, rest, ended) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            data = rest;
            if !self.skipping {
                if self.partial.len() + line.len()
                    > self.max_line + usize::from(line.ends_with(b"\r"))
                {
                    self.partial.clear();
                    self.skipping = true;
                    self.ready.push_back(Request::TooLong);
                } else {
                    self.partial.extend_from_slice(line);
                }
            }
            if ended {
                if !self.skipping {
                    let mut name = std::mem::take(&mut self.partial);
                    if name.last() == Some(&b'\r') {
                        name.pop();
                    }
                    if !name.is_empty() {
                        self.ready.push_back(Request::Name(name));
                    }
                }
                self.skipping = false;
            }
        }
    }

    /// The next complete request, in order.
    pub fn next_request(&mut self) -> Option<Request> {
        self.ready.pop_front()
    }

    /// Requests framed and not yet taken.
    pub fn pending(&self) -> usize {
        self.ready.len()
    }

    /// Bytes held: framed names plus the unfinished line.
    pub fn held_bytes(&self) -> usize {
        let names: usize = self
            .ready
            .iter()
            .map(|r| if let Request::Name(n) = r { n.len() } else { 0 })
            .sum();
        names + self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(l: &mut Lines) -> Vec<Request> {
        std::iter::from_fn(|| l.next_request()).collect()
    }

    #[test]
    fn splits_lf_and_crlf_across_chunks() {
        let mut l = Lines::new(64);
        l.push(b"a.txt\nb.t");
        l.push(b"xt\r\n\n\r\nc");
        assert_eq!(
            all(&mut l),
            [
                Request::Name(b"a.txt".to_vec()),
                Request::Name(b"b.txt".to_vec())
            ]
        );
        l.push(b"\n");
        assert_eq!(all(&mut l), [Request::Name(b"c".to_vec())]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut l = Lines::new(4);
        l.push(b"abcd\nabcde");
        l.push(b"fghij");
        l.push(b"klm\nok\n");
        assert_eq!(
            all(&mut l),
            [
                Request::Name(b"abcd".to_vec()),
                Request::TooLong,
                Request::Name(b"ok".to_vec())
            ]
        );
        // A CR before the LF does not count against the limit.
        l.push(b"abcd\r\n");
        assert_eq!(all(&mut l), [Request::Name(b"abcd".to_vec())]);
    }

    #[test]
    fn holds_at_most_the_limit() {
        let mut l = Lines::new(1000);
        for _ in 0..100 {
            l.push(&[b'x'; 4096]);
            assert!(l.held_bytes() <= 1000);
        }
    }
}
