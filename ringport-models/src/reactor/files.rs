//! The file service on the reactor: names are read only while nothing is being answered;
//! each answer is an error line or a file sent with non-blocking `sendfile`, a chunk per
//! writable edge, until the socket would block.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use ringport_servers::files::lines::Lines;

use super::{write_now, Protocol, Step, BUDGET};
use crate::files::{busy_line, send_chunk, FilesCtx, Reply};

/// Bytes of names read at a time (see the blocking model's file service).
const READ: usize = 4096;

/// The file protocol.
#[derive(Debug)]
pub(super) struct Files {
    ctx: Arc<FilesCtx>,
}

impl Files {
    pub(super) fn new(ctx: Arc<FilesCtx>) -> Self {
        Files { ctx }
    }
}

/// A file being sent.
#[derive(Debug)]
struct Sending {
    file: File,
    offset: u64,
    size: u64,
}

/// One file-service connection.
#[derive(Debug)]
pub(super) struct FilesConn {
    lines: Lines,
    /// An error line not yet sent whole.
    line: Vec<u8>,
    sending: Option<Sending>,
    eof: bool,
    last_progress: Instant,
}

impl Protocol for Files {
    type Conn = FilesConn;

    fn new_conn(&self) -> FilesConn {
        FilesConn {
            lines: Lines::new(self.ctx.max_name),
            line: Vec::new(),
            sending: None,
            eof: false,
            last_progress: Instant::now(),
        }
    }

    fn drive(&self, conn: &mut FilesConn, stream: &mut TcpStream, scratch: &mut [u8]) -> Step {
        let mut budget = BUDGET;
        loop {
            if !conn.line.is_empty() {
                match write_now(stream, &conn.line) {
                    Ok(0) => return Step::Wait,
                    Ok(n) => {
                        conn.line.drain(..n);
                        conn.last_progress = Instant::now();
                        continue;
                    }
                    Err(_) => return Step::Close,
                }
            }
            if let Some(s) = &mut conn.sending {
                if budget == 0 {
                    return Step::Again;
                }
                budget -= 1;
                match send_chunk(&*stream, &s.file, &mut s.offset, s.size) {
                    Ok(_) => conn.last_progress = Instant::now(),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // A short file or a gone client: only the close can tell the client.
                    Err(_) => return Step::Close,
                }
                if s.offset == s.size {
                    conn.sending = None;
                }
                continue;
            }
            if let Some(request) = conn.lines.next_request() {
                match self.ctx.answer(request) {
                    Reply::File(file, size) => {
                        conn.sending = (size > 0).then_some(Sending {
                            file,
                            offset: 0,
                            size,
                        });
                    }
                    Reply::Line(line) => conn.line = line,
                }
                continue;
            }
            if conn.eof {
                return Step::Close;
            }
            if budget == 0 {
                return Step::Again;
            }
            budget -= 1;
            match stream.read(&mut scratch[..READ]) {
                Ok(0) => conn.eof = true,
                Ok(n) => {
                    conn.lines.push(&scratch[..n]);
                    conn.last_progress = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Step::Close,
            }
        }
    }

    fn refuse(&self, stream: &mut TcpStream) {
        // Best effort: the line fits any socket buffer, and the client is closed anyway.
        let _ = write_now(stream, &busy_line());
    }

    fn idle(&self, conn: &FilesConn, now: Instant) -> bool {
        now.duration_since(conn.last_progress) > self.ctx.idle_timeout
    }
}
