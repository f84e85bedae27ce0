//! The file service with blocking I/O: read names, answer each in order (the file by
//! `sendfile`, or an error line), until the client closes or stays idle too long.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use ringport_servers::files::lines::Lines;

use crate::files::{send_chunk, FilesCtx, Reply};

/// Bytes of names read at a time: every name framed from one read is answered before the
/// next read, so a client can make the thread hold at most this much (and one partial name).
const BUF: usize = 4096;

/// Serves `stream` until EOF, an error, or `ctx.idle_timeout` without a request or progress
/// (a read or a send that waits that long ends the connection).
pub(super) fn serve(mut stream: &TcpStream, ctx: &FilesCtx) -> io::Result<()> {
    stream.set_read_timeout(Some(ctx.idle_timeout))?;
    stream.set_write_timeout(Some(ctx.idle_timeout))?;
    let mut lines = Lines::new(ctx.max_name);
    let mut buf = [0u8; BUF];
    loop {
        while let Some(request) = lines.next_request() {
            match ctx.answer(request) {
                Reply::File(file, size) => {
                    let mut offset = 0;
                    while offset < size {
                        match send_chunk(stream, &file, &mut offset, size) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Reply::Line(line) => stream.write_all(&line)?,
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => lines.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
