//! The file server's side: served folders with files of known content, a client of its
//! protocol that reads replies exactly, and scenarios run against the in-process server and
//! the `ringport serve` binary alike.
//!
//! Content is verified, never only counted: every file's bytes come from a keyed BLAKE3 output
//! stream, so any range of it can be regenerated to compare a partial download, and whole
//! downloads are compared by hash.

mod client;
mod scenarios;
mod tree;

pub use client::{
    all_served_at_once, download_when_free, error_line, Client, BUSY_LINE, REQUEST_TIMEOUT_LINE,
};
pub use scenarios::{idle_timeout_scenario, max_connections_scenario, Transfers};
pub use tree::{content_at, content_stream, Expected, TempDir, Tree};

/// A kibibyte.
pub const KIB: u64 = 1024;
/// A mebibyte.
pub const MIB: u64 = 1024 * KIB;
/// A gibibyte.
pub const GIB: u64 = 1024 * MIB;
