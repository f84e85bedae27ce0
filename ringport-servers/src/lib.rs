//! The servers of the completion-port articles, each a small state machine on [`ringport`]:
//! - [`echo`]: the first article's echo server;
//! - [`files`]: the second article's file download server, for `nc`, and on the same port
//! - [`http`]: an HTTP/1.1 static file server, for browsers, curl and wget.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod echo;
pub mod files;
pub mod http;
mod settings;
mod sys;

pub use settings::PortSettings;
