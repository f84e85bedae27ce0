//! Platform code of the servers, chosen at this one selection point: the rest of the crate
//! never names a platform.
//!
//! Every platform provides:
//! - [`identity`]: what identifies an opened file's bytes (the HTTP cache's key check), and
//!   [`stat_beneath`]: the same for a path beneath the served folder, following links as
//!   Linux `statat` does;
//! - [`found`]: what an open beneath the folder found, a file or a [`Folder`], and
//!   [`entries`]: the entries of such a folder, for the HTTP listing;
//! - [`read_exact_at`]: a positioned read of an opened file;
//! - [`set_cork`]: holding back partial segments while a large file is sent.

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub(crate) use imp::*;

/// What an open beneath the served folder found.
#[derive(Debug)]
pub(crate) enum Found {
    /// A file (a regular one, or on Linux possibly a FIFO or device: check the metadata).
    File(std::fs::File, std::fs::Metadata),
    /// A folder.
    Folder(Folder),
}
