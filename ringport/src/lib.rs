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
//! | `PostQueuedCompletionStatus` | [`PortHandle::post`]; the quit packet is [`PortHandle::shutdown`] |
//!
//! One difference: IOCP has one queue for N threads; ringport has one ring per worker
//! (never shared), and a connection stays on the worker that accepted it. The kernel spreads
//! connections over workers with one `SO_REUSEPORT` listener each.
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
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod backend;
mod buf;
mod completion;
mod conn;
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
pub use handler::Handler;
pub use io::Io;
pub use key::CompletionKey;
pub use limits::{fd_limit, raise_fd_limit};
pub use port::{Full, Port, PortBuilder, PortHandle, Refused, WorkerStart};
pub use signal::shutdown_on_signals;
pub use sys::uring::probe;
pub use worker::{TimerId, WorkerCtx, WorkerIo};
