//! What one completion of a connection's operation means: the bookkeeping it settles and the
//! [`Completion`] (if any) its handler gets. One function per kind of operation.

use std::fs::File;
use std::io;
use std::rc::Rc;

use super::op::{errno, write_parts, OpData, Outgoing};
use crate::buf::{RecvBuf, SendBuf};
use crate::completion::{Completion, OpKind};
use crate::conn::{Life, Recv};
use crate::io::Io;
use crate::sys::{code, file_from_result, Cqe};

/// What one completion gives the handler: nothing or one completion, or several buffers back
/// (a send of several in one call).
#[derive(Debug)]
pub(super) enum Events {
    One(Option<Completion>),
    Sent(Vec<SendBuf>),
}

impl<C> Io<'_, C> {
    /// Settles completion `cqe` of operation `id`; `data` is the operation's entry when this
    /// is its final completion (a multishot receive that goes on has none).
    pub(super) fn complete(&mut self, data: Option<OpData>, cqe: Cqe) -> Events {
        let res = cqe.result;
        if let Some(OpData::SendV { bufs, skip, .. }) = data {
            return self.sent_many(bufs, skip, res);
        }
        Events::One(match data {
            None => self.received(cqe, false),
            Some(OpData::Recv) => self.received(cqe, true),
            Some(OpData::Send { buf, done }) => self.sent(buf, done, res),
            Some(OpData::SendFile {
                file,
                offset,
                len,
                done,
            }) => self.file_sent(file, offset, len, done, res),
            Some(OpData::Open { .. }) => self.opened(res),
            Some(OpData::Connect { .. }) => self.connected(res),
            // Connection timers are the worker's (`deadlines`): no timeout is a connection's.
            Some(OpData::Timeout { .. }) => None,
            Some(OpData::Read { buf }) => self.read(buf, res),
            Some(OpData::Write { buf, offset, done }) => self.written(buf, offset, done, res),
            // Closes are settled by the worker; cancellations report through their targets.
            Some(
                OpData::Close
                | OpData::Cancel
                | OpData::Accept
                | OpData::Poll
                | OpData::SendV { .. },
            ) => None,
        })
    }

    /// A send of several buffers in one call completed with `res`: the buffers wholly sent
    /// come back (one `Sent` each), the rest is sent on.
    fn sent_many(&mut self, bufs: Vec<SendBuf>, skip: usize, res: i32) -> Events {
        self.cm().send_op = None;
        if matches!(self.c().life, Life::Cancelling { .. } | Life::Closing) {
            self.cm().unsent -= bufs.iter().map(SendBuf::len).sum::<usize>();
            return Events::One(None);
        }
        if res == -code::AGAIN {
            self.start_sendv(bufs, skip, false);
            return Events::One(None);
        }
        if res < 0 {
            return Events::One(self.send_failed(OpKind::Send, errno(res)));
        }
        let mut left = skip + res as usize;
        let mut bufs = bufs.into_iter().peekable();
        let mut sent = Vec::new();
        while let Some(b) = bufs.next_if(|b| b.len() <= left) {
            left -= b.len();
            self.cm().unsent -= b.len();
            sent.push(b);
        }
        let rest: Vec<SendBuf> = bufs.collect();
        match rest.len() {
            0 => self.send_next(),
            _ if res == 0 => {
                let error = io::Error::new(io::ErrorKind::WriteZero, "the socket took no bytes");
                return Events::One(self.send_failed(OpKind::Send, error));
            }
            1 => {
                let last = rest.into_iter().next().expect("one");
                self.start_send(Outgoing::Buf(last), left as u64);
            }
            _ => self.start_sendv(rest, left, true),
        }
        if self.c().is_open() {
            Events::Sent(sent)
        } else {
            Events::One(None)
        }
    }

    fn received(&mut self, cqe: Cqe, last: bool) -> Option<Completion> {
        // A provided buffer always goes back to the pool, even when its data is dropped.
        let buf = cqe.buf.map(|bid| {
            self.cm().bufs_held += 1;
            let len = cqe.result.max(0) as u32;
            RecvBuf::new(self.w.core.pool.clone(), bid, len, self.c().key)
        });
        if last {
            self.cm().recv = Recv::Off;
        }
        if !self.c().is_open() {
            return None;
        }
        match cqe.result {
            n if n > 0 => Some(match buf {
                Some(buf) => Completion::Received(buf),
                None => Completion::Failed {
                    op: OpKind::Recv,
                    error: io::Error::other("data without a buffer"),
                },
            }),
            0 => {
                self.cm().want_recv = false;
                Some(Completion::Eof)
            }
            // The pool was empty when data came: receive again once a buffer is back.
            r if r == -code::NOBUFS => {
                if self.w.core.pool.free() == 0 {
                    self.wait_for_pool();
                }
                None
            }
            // Cancelled by the port (its limits), or io_uring gave up after a wakeup found no
            // data: armed again when due.
            r if r == -code::CANCELED || r == -code::AGAIN => None,
            r => {
                self.cm().want_recv = false;
                Some(Completion::Failed {
                    op: OpKind::Recv,
                    error: errno(r),
                })
            }
        }
    }

    fn sent(&mut self, buf: SendBuf, done: usize, res: i32) -> Option<Completion> {
        self.cm().send_op = None;
        if matches!(self.c().life, Life::Cancelling { .. } | Life::Closing) {
            self.cm().unsent -= buf.len();
            return None;
        }
        if res == -code::AGAIN {
            self.resend(Outgoing::Buf(buf), done as u64);
            return None;
        }
        if res < 0 {
            return self.send_failed(OpKind::Send, errno(res));
        }
        let done = done + res as usize;
        if done < buf.len() {
            if res == 0 {
                let error = io::Error::new(io::ErrorKind::WriteZero, "the socket took no bytes");
                return self.send_failed(OpKind::Send, error);
            }
            self.start_send(Outgoing::Buf(buf), done as u64);
            return None;
        }
        self.cm().unsent -= buf.len();
        self.send_next();
        self.c().is_open().then_some(Completion::Sent(buf))
    }

    fn file_sent(
        &mut self,
        file: Rc<File>,
        offset: u64,
        len: u64,
        done: u64,
        res: i32,
    ) -> Option<Completion> {
        self.cm().send_op = None;
        if matches!(self.c().life, Life::Cancelling { .. } | Life::Closing) {
            return None;
        }
        if res < 0 {
            return self.send_failed(OpKind::SendFile, errno(res));
        }
        let done = done + res as u64;
        if done >= len {
            self.send_next();
            let sent = Completion::FileSent { file, bytes: len };
            return self.c().is_open().then_some(sent);
        }
        if res == 0 {
            let error = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ended before its range was sent",
            );
            return self.send_failed(OpKind::SendFile, error);
        }
        self.start_send(Outgoing::File { file, offset, len }, done);
        None
    }

    /// A send failed: what was queued after it is dropped. The handler hears of it while the
    /// connection is open; while it drains, the close becomes a reset, since data was cut.
    fn send_failed(&mut self, op: OpKind, error: io::Error) -> Option<Completion> {
        self.drop_queue();
        self.cm().unsent = 0;
        match self.c().life {
            Life::Open => Some(Completion::Failed { op, error }),
            Life::Draining => {
                self.start_cancelling(true);
                None
            }
            Life::Cancelling { .. } | Life::Closing => None,
        }
    }

    fn opened(&mut self, res: i32) -> Option<Completion> {
        let opened = (res >= 0).then(|| {
            // SAFETY: a successful open returns a new descriptor nobody else owns.
            unsafe { file_from_result(res) }
        });
        match opened {
            // The handler closed the connection meanwhile: the file is dropped (closed).
            _ if !self.c().is_open() => None,
            Some(file) => Some(Completion::Opened(Ok(file))),
            None => Some(Completion::Opened(Err(errno(res)))),
        }
    }

    fn connected(&mut self, res: i32) -> Option<Completion> {
        self.cm().connect_op = None;
        match res {
            _ if !self.c().is_open() => None,
            0 => {
                self.send_next();
                Some(Completion::Connected)
            }
            r => Some(Completion::Failed {
                op: OpKind::Connect,
                error: errno(r),
            }),
        }
    }

    fn read(&mut self, mut buf: Vec<u8>, res: i32) -> Option<Completion> {
        if !self.c().is_open() {
            return None;
        }
        if res < 0 {
            return Some(Completion::Failed {
                op: OpKind::Read,
                error: errno(res),
            });
        }
        // SAFETY: the kernel wrote `res` bytes into the spare capacity the operation lent it
        // (`read_parts`), so they are initialised, and `res` fits in that capacity.
        unsafe { buf.set_len(buf.len() + res as usize) };
        Some(Completion::Read(buf))
    }

    fn written(&mut self, buf: SendBuf, offset: u64, done: usize, res: i32) -> Option<Completion> {
        if !self.c().is_open() {
            return None;
        }
        let error = match res {
            r if r < 0 => errno(r),
            0 if done < buf.len() => {
                io::Error::new(io::ErrorKind::WriteZero, "the file took no bytes")
            }
            n => {
                let done = done + n as usize;
                if done < buf.len() {
                    let fd = self.c().fd;
                    let (data, sub) = write_parts(fd, offset, buf, done);
                    self.op(data, sub);
                    return None;
                }
                return Some(Completion::Written(buf));
            }
        };
        Some(Completion::Failed {
            op: OpKind::Write,
            error,
        })
    }
}
