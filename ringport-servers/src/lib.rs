//! The servers of the completion-port articles, each a small state machine on [`ringport`]:
//! - [`echo`]: the first article's echo server;
//! - [`files`]: the second article's file download server, for `nc`.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod echo;
pub mod files;
mod settings;

pub use settings::PortSettings;
