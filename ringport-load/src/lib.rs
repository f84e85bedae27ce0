//! ringport's load generator, built on ringport itself: the client side runs on a completion
//! port too, each worker a [`ringport::Handler`] that opens its share of the connections.
//!
//! Every run starts with a ramp: connections are opened at a steady pace and traffic starts
//! once all are established (at most 10 s), so that a run at 10,000 connections measures a
//! server serving 10,000 clients, not its listen backlog overflowing. Connections never
//! established count as connect errors; established connections that get no data in the
//! measured window show as established but not served.
//!
//! Echo ping-pong ([`run_echo`]): every connection sends a message, waits until every byte
//! has come back, checks each one against what it sent, and sends the next. Messages are a
//! pattern that differs per connection and per round trip, so misordered or stale bytes are
//! caught. After a warmup the measured window runs for a set time; latencies go into
//! HdrHistograms (one per worker, merged at the end), and with the server's pid the report
//! also carries the server's CPU time per round trip.
//!
//! Downloads ([`run_files`]): every connection fetches the same file again and again, in the
//! file server's nc protocol or in HTTP/1.1 keep-alive (so nginx can be measured by the same
//! client); each download's length is checked and, given a local copy, every byte. The report
//! has downloads/s, MB/s, download times and the server's CPU per download and per GB.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use ringport_load::{run_echo, EchoConfig};
//!
//! let mut cfg = EchoConfig::new("127.0.0.1:7777".parse()?);
//! cfg.conns = 10;
//! cfg.size = 1000;
//! cfg.duration = Duration::from_secs(2);
//! let report = run_echo(&cfg)?;
//! println!("{report}");
//! assert_eq!(report.outcome.verify_errors, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Platforms
//! Linux only: the server's CPU time and threads come from `/proc/PID/stat`, `/proc/PID/task`
//! and `sysconf(_SC_CLK_TCK)`, and the download client drains bodies through a pipe
//! (`splice`). On other platforms the crate is empty.
#![cfg(target_os = "linux")]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod control;
pub mod cpu;
mod duration;
mod echo;
mod error;
mod files;
mod http;
mod pattern;
mod progress;
mod ramp;
mod report;
mod run;
mod server;
mod stats;
mod summary;

pub use duration::{parse_duration, ParseDurationError};
pub use error::LoadError;
pub use files::{run_files, Expect, FilesConfig, FilesReport, Protocol};
pub use report::Report;
pub use run::{run_echo, EchoConfig};
pub use server::ServerUse;
pub use summary::{Latency, Outcome};
