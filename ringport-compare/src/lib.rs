//! `ringport compare`: the server models of the second article ([`ringport_models`])
//! measured side by side, to answer the question it asks: does the completion-based model
//! win more the more clients there are, because the others pay for context switches?
//!
//! Each point of the matrix ([`Plan`]) starts one model afresh in a process of its own
//! (`ringport model-server`, pinned to CPU 0), drives it with ringport's load generator
//! (pinned to CPU 1) — echo ping-pong of 64 bytes, or downloads of a 64 KiB or 1 MiB file,
//! every byte verified — after all connections are established, and reads from `/proc` what
//! the server spent in the measured window: CPU time, voluntary and involuntary context
//! switches (summed over its threads), peak memory and threads ([`Point`]).
//!
//! The results come out as a Markdown table ([`markdown`]), JSON ([`Results::to_json`], the
//! schema of [`Results`] and [`Point`]), SVG charts and an offline `index.html`
//! ([`write_outputs`]).
//!
//! # Platforms
//! Linux only: it reads what the server spent from `/proc` (CPU time, context switches, peak
//! memory, threads), pins processes with `sched_setaffinity` and names the kernel with
//! `uname`. On other platforms the crate is empty.
#![cfg(target_os = "linux")]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod charts;
mod html;
mod median;
mod plan;
mod point;
mod results;
mod run;
mod server;
mod system;
mod table;

pub use charts::{Chart, Metric};
pub use median::median;
pub use plan::{Plan, Workload};
pub use point::{CtxPerOp, Point, Status};
pub use results::{Results, SCHEMA};
pub use run::{run, write_outputs, Compare};
pub use system::{pin_to, raise_fd_limit, Machine};
pub use table::markdown;
