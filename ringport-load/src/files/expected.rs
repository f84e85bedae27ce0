//! What a download must be: its length, and its bytes when a local copy is known.

use std::sync::Arc;

use super::Expect;
use crate::error::LoadError;
use crate::pattern::{self, Check};

/// The expected body of every download, shared by all workers.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    size: u64,
    /// The local copy, read once (`None`: only the length is checked).
    content: Option<Arc<Vec<u8>>>,
}

impl Expected {
    /// Reads the local copy, if there is one.
    pub(crate) fn load(expect: &Expect) -> Result<Self, LoadError> {
        match expect {
            Expect::Size(size) => Ok(Expected::size_only(*size)),
            Expect::File(path) => {
                let content = std::fs::read(path).map_err(|source| LoadError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
                if content.is_empty() {
                    return Err(LoadError::Config(format!(
                        "{} is empty: an empty download cannot be timed",
                        path.display()
                    )));
                }
                Ok(Expected::bytes(content))
            }
        }
    }

    pub(crate) fn size_only(size: u64) -> Self {
        Expected {
            size,
            content: None,
        }
    }

    pub(crate) fn bytes(content: Vec<u8>) -> Self {
        Expected {
            size: content.len() as u64,
            content: Some(Arc::new(content)),
        }
    }

    /// Bytes in every download.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the bytes are compared, not only counted.
    pub(crate) fn verifies(&self) -> bool {
        self.content.is_some()
    }

    /// Checks `chunk` of a body of which `received` correct bytes came before.
    pub(crate) fn check(&self, received: u64, chunk: &[u8]) -> Check {
        if let Some(content) = &self.content {
            // `received` never passes the size, which is a length in memory.
            return pattern::check(content, received as usize, chunk);
        }
        let left = self.size - received;
        match (chunk.len() as u64).cmp(&left) {
            std::cmp::Ordering::Less => Check::Partial,
            std::cmp::Ordering::Equal => Check::Complete,
            std::cmp::Ordering::Greater => Check::Mismatch {
                at: self.size as usize,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_only() {
        let e = Expected::size_only(10);
        assert!(!e.verifies());
        assert_eq!(e.check(0, b"12345"), Check::Partial);
        assert_eq!(e.check(5, b"12345"), Check::Complete);
        assert_eq!(e.check(5, b"123456"), Check::Mismatch { at: 10 });
    }

    #[test]
    fn bytes_compared() {
        let e = Expected::bytes(b"0123456789".to_vec());
        assert!(e.verifies());
        assert_eq!(e.size(), 10);
        assert_eq!(e.check(0, b"0123"), Check::Partial);
        assert_eq!(e.check(4, b"456789"), Check::Complete);
        assert_eq!(e.check(4, b"45x"), Check::Mismatch { at: 6 });
        assert_eq!(e.check(8, b"89!"), Check::Mismatch { at: 10 });
    }

    #[test]
    fn loads_a_local_copy() {
        let missing = Expect::File("/nonexistent/ringport-load".into());
        assert!(matches!(
            Expected::load(&missing),
            Err(LoadError::ReadFile { .. })
        ));
        assert_eq!(Expected::load(&Expect::Size(3)).unwrap().size(), 3);
    }
}
