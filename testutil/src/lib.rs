//! Helpers shared by the behaviour tests of the ringport crates (a dev-dependency only, never
//! published): the backend matrix, bounded waits, descriptor counting, verifiable byte streams,
//! loopback clients with timeouts, echo clients, the file server's client and served folders,
//! and server binaries run as child processes.
//!
//! Every test that touches I/O runs once per backend of [`backends`]; every wait is bounded, so
//! that a bug fails a test instead of hanging it; content is always verified, never only
//! counted: bytes come from streams that can be regenerated from any offset ([`fill`],
//! [`files::content_stream`]), and a failure names the first wrong offset.
//!
//! What only one crate's tests need (an in-process server of that crate, the command line of
//! the binary) stays in that crate's `tests/util/mod.rs`, which re-exports this crate.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//!
//! use ringport::{Completion, Handler, Io, Port};
//!
//! /// The articles' echo server: sends back every buffer it receives.
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Conn = ();
//!     type Msg = ();
//!
//!     fn accepted(&mut self, io: &mut Io<'_, ()>) {
//!         io.recv();
//!     }
//!
//!     fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
//!         match completion {
//!             Completion::Received(buf) => io.send(buf),
//!             Completion::Sent(_) => {}
//!             _ => io.close(),
//!         }
//!     }
//! }
//!
//! // One run per backend that can start here (or the one `RINGPORT_BACKEND` names).
//! for backend in ringport_testutil::backends() {
//!     let port = Port::builder()
//!         .backend(backend)
//!         .listen("127.0.0.1:0".parse().unwrap())
//!         .shutdown_timeout(Duration::from_millis(500))
//!         .start(|_| Echo)
//!         .expect("the port starts");
//!     let client = ringport_testutil::connect(port.local_addr().unwrap());
//!     let seed = ringport_testutil::seed();
//!     ringport_testutil::round_trip(&client, &ringport_testutil::payload(seed, 1 << 20));
//!     ringport_testutil::shutdown_and_join(port);
//! }
//! ```
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod backends;
mod child;
mod crowd;
mod echo;
mod fds;
pub mod files;
mod net;
mod stream;
mod wait;
mod wine;

pub use backends::{backends, each_backend};
#[cfg(unix)]
pub use child::rss_of;
pub use child::{wait_child, ChildServer, START_BOUND};
pub use crowd::{half_close_sizes, round_all_at_once, HALF_CLOSE_SIZES};
pub use echo::{
    read_stream_to_end, round_trip, write_stream, write_until_stalled, BusyClients, End, STALL,
};
pub use fds::{assert_fd_count, fd_count, fd_counting, fd_list, raise_fd_limit};
pub use net::{
    accept, connect, listener, read_to_end, server_socket_buffers_max, set_reset_on_close,
    small_buffers, IO_TIMEOUT,
};
pub use stream::{assert_bytes, fill, payload, seed};
pub use wait::{
    eventually, join, settled, shutdown_and_join, wait_until, within, EVENTUALLY, SHUTDOWN_BOUND,
};
pub use wine::{under_wine, wine_differs};
