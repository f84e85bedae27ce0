//! The one-line error replies of the nc protocol, and what each error means.

use std::io;

use ringport::OpenFailure;

/// Why a request got no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing by that name.
    NoSuchFile,
    /// A directory, FIFO, socket or device.
    NotRegular,
    /// The name leads outside the served folder (`..`, absolute, symlink out, magic link).
    Outside,
    /// The name is longer than the limit.
    NameTooLong,
    /// The line was empty.
    NoName,
    /// The name did not arrive whole within the request timeout.
    RequestTimeout,
    /// Too many symbolic links (a loop), or a `/proc` magic link.
    LinkLoop,
    /// The server may not read it.
    PermissionDenied,
    /// The server is out of file descriptors or memory for now.
    Busy,
    /// Any other error.
    Other,
}

impl Refusal {
    /// What an error of [`ringport::Io::open_beneath`] means for the client.
    pub fn from_open_error(e: &io::Error) -> Self {
        match OpenFailure::of(e) {
            OpenFailure::NotFound => Refusal::NoSuchFile,
            OpenFailure::Outside => Refusal::Outside,
            // Sockets and devices without a driver cannot be opened at all.
            OpenFailure::NotRegular => Refusal::NotRegular,
            OpenFailure::LinkLoop => Refusal::LinkLoop,
            OpenFailure::NameTooLong => Refusal::NameTooLong,
            OpenFailure::PermissionDenied => Refusal::PermissionDenied,
            OpenFailure::Busy => Refusal::Busy,
            _ if e.kind() == io::ErrorKind::InvalidInput => Refusal::NoSuchFile,
            _ => Refusal::Other,
        }
    }

    /// The text of the reply.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoSuchFile => "no such file",
            Refusal::NotRegular => "not a regular file",
            Refusal::Outside => "outside the served folder",
            Refusal::NameTooLong => "name too long",
            Refusal::NoName => "no file name",
            Refusal::RequestTimeout => "name not received in time",
            Refusal::LinkLoop => "too many symbolic links",
            Refusal::PermissionDenied => "permission denied",
            Refusal::Busy => "server busy, try again",
            Refusal::Other => "cannot read file",
        }
    }

    /// The reply line: `error: REASON: NAME\r\n`, the name escaped and cut to 200 bytes.
    pub fn line(self, name: &[u8]) -> Vec<u8> {
        let shown: String = name
            .iter()
            .take(200)
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect();
        let cut = if name.len() > 200 { "..." } else { "" };
        if name.is_empty() {
            format!("error: {}\r\n", self.reason()).into_bytes()
        } else {
            format!("error: {}: {shown}{cut}\r\n", self.reason()).into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_and_bounded() {
        assert_eq!(
            Refusal::NoSuchFile.line(b"a b.txt"),
            b"error: no such file: a b.txt\r\n"
        );
        assert_eq!(
            Refusal::Outside.line(b"../\x1b[2J"),
            b"error: outside the served folder: ../\\x1b[2J\r\n"
        );
        let long = Refusal::NameTooLong.line(&[b'x'; 5000]);
        assert!(long.len() < 260 && long.ends_with(b"...\r\n"));
    }

    #[test]
    fn maps_system_errors() {
        use crate::sys::code;
        let e = |n| io::Error::from_raw_os_error(n);
        let refusal = |n| Refusal::from_open_error(&e(n));
        assert_eq!(refusal(code::NOT_FOUND), Refusal::NoSuchFile);
        assert_eq!(refusal(code::OUTSIDE), Refusal::Outside);
        assert_eq!(refusal(code::LINK_LOOP), Refusal::LinkLoop);
        assert_eq!(refusal(code::TOO_MANY), Refusal::Busy);
    }
}
