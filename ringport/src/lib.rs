//! ringport: a completion port (Windows IOCP semantics) on Linux io_uring.
//!
//! The model of the completion-port articles: a few worker threads (the port's concurrency
//! value) take **completions** of overlapped operations and run the code that handles them,
//! so that each read or write, not each client, is the unit of work.
//!
//! | IOCP | ringport |
//! |---|---|
//! | `CreateIoCompletionPort` (create) | [`Port::builder`] … [`PortBuilder::start`] |
//! | associate a socket under a completion key | accepted or connected sockets get a [`CompletionKey`] and a [`Handler::Conn`] state |
//! | `WSARecv` / `WSASend` with an OVERLAPPED | [`Io::recv`] / [`Io::send`]: the operation owns its buffer until it completes |
//! | `GetQueuedCompletionStatusEx` | each worker dequeues a batch and calls [`Handler::completion`] |
//! | `PostQueuedCompletionStatus` | [`PortHandle::post`] (a typed [`Handler::Msg`]); the quit packet is [`PortHandle::shutdown`] |
//! | `CreateIoCompletionPort` (associate an existing handle) | [`PortHandle::associate`], [`WorkerIo::associate`], [`WorkerIo::associate_file`] |
//! | `ReadFile` / `WriteFile` with an offset | [`Io::read_at`] / [`Io::write_at`] on a file handle |
//! | any thread issues I/O on any handle | a handler reaches any connection of its worker by key ([`Io::to`]) and posts to other workers |
//!
//! One difference: IOCP has one queue for N threads; ringport has one ring per worker
//! (never shared), and a connection stays on the worker that accepted it. The kernel spreads
//! connections over workers with one `SO_REUSEPORT` listener each.
//!
//! The port also keeps the promises a server needs under pressure, by itself: per-connection
//! limits on receive buffers and unsent bytes, a send timeout, and resets for cut transfers
//! (see [`PortBuilder`]).
//!
//! # Example: the articles' echo server
//! ```no_run
//! use ringport::{Completion, Handler, Io, Port};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Conn = ();
//!     type Msg = ();
//!
//!     fn accepted(&mut self, io: &mut Io<'_, ()>) {
//!         io.recv(); // post the first receive
//!     }
//!
//!     fn completion(&mut self, _: &mut (), io: &mut Io<'_, ()>, completion: Completion) {
//!         match completion {
//!             Completion::Received(buf) => io.send(buf), // send back the very buffer
//!             Completion::Sent(_) => {}
//!             _ => io.close(), // EOF or an error
//!         }
//!     }
//! }
//!
//! let port = Port::builder().listen("127.0.0.1:7777".parse()?).start(|_worker| Echo)?;
//! ringport::shutdown_on_signals(port.handle())?;
//! port.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Next: connections that talk to each other
//! Two programs in `examples/` show the rest of the API:
//! - [`chat`](https://example.invalid/ringport/blob/main/ringport/examples/chat.rs)
//!   (`cargo run -p ringport --example chat`): a room where every line reaches every member on
//!   every worker — connections reached by key, typed messages between workers with
//!   back-pressure, worker timers;
//! - [`proxy`](https://example.invalid/ringport/blob/main/ringport/examples/proxy.rs)
//!   (`cargo run -p ringport --example proxy -- --to HOST:PORT`): a TCP forwarder — outgoing
//!   connections from a handler, zero-copy relaying, back-pressure from the port's buffer quota,
//!   half-close passed through.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod backend;
mod buf;
mod completion;
mod conn;
mod dir;
mod handler;
mod io;
mod key;
mod limits;
mod port;
mod signal;
mod sys;
mod worker;

pub use backend::{Backend, BackendKind};
pub use buf::{RecvBuf, SendBuf};
pub use completion::{Completion, OpKind};
pub use dir::{Dir, OpenFailure};
pub use handler::Handler;
pub use io::Io;
pub use key::CompletionKey;
pub use limits::{fd_limit, raise_fd_limit};
pub use port::{Full, Port, PortBuilder, PortHandle, Refused, WorkerStart};
pub use signal::shutdown_on_signals;
#[cfg(target_os = "linux")]
pub use sys::uring::probe;
pub use sys::{BorrowedSocket, OwnedSocket};
pub use worker::{TimerId, WorkerCtx, WorkerIo};
