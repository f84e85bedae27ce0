//! Why a run could not produce a report.

use std::io;
use std::path::PathBuf;

/// Why a run could not produce a report. Failures of single connections are not errors: they
/// are counted in the [`crate::Report`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A setting is out of range.
    #[error("invalid settings: {0}")]
    Config(String),
    /// The server's CPU time cannot be read.
    #[error("cannot read the CPU time of server process {pid}")]
    ServerPid {
        /// The process id given.
        pid: u32,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The local copy of a file to download cannot be read.
    #[error("reading {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The load generator's own port did not start.
    #[error("starting the load generator's port")]
    Start(#[source] io::Error),
    /// A worker of the load generator's port stopped with an error.
    #[error("a load generator worker failed")]
    Worker(#[source] io::Error),
    /// Some workers did not hand their results back in time.
    #[error("{0} load generator worker(s) did not report their results in time")]
    Unresponsive(usize),
}
