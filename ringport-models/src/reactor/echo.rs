//! The echo service on the reactor: what a read brings is written back at once from the
//! thread's shared buffer; only what the socket does not take is kept, and the connection
//! reads nothing more until that is sent (at most 64 KiB held per client).

use std::io::{ErrorKind, Read};

use mio::net::TcpStream;

use super::{write_now, Protocol, Step, BUDGET};

/// The echo protocol.
#[derive(Debug)]
pub(super) struct Echo;

/// One echo connection.
#[derive(Debug, Default)]
pub(super) struct EchoConn {
    /// Received bytes the socket has not taken yet.
    unsent: Vec<u8>,
    /// The client has closed its side: close once everything is echoed.
    eof: bool,
}

impl Protocol for Echo {
    type Conn = EchoConn;

    fn new_conn(&self) -> EchoConn {
        EchoConn::default()
    }

    fn drive(&self, conn: &mut EchoConn, stream: &mut TcpStream, scratch: &mut [u8]) -> Step {
        let mut budget = BUDGET;
        loop {
            if !conn.unsent.is_empty() {
                match write_now(stream, &conn.unsent) {
                    Ok(n) if n < conn.unsent.len() => {
                        conn.unsent.drain(..n);
                        return Step::Wait;
                    }
                    Ok(_) => conn.unsent.clear(),
                    Err(_) => return Step::Close,
                }
            }
            if conn.eof {
                return Step::Close;
            }
            if budget == 0 {
                return Step::Again;
            }
            budget -= 1;
            match stream.read(scratch) {
                Ok(0) => conn.eof = true,
                Ok(n) => match write_now(stream, &scratch[..n]) {
                    Ok(written) => conn.unsent.extend_from_slice(&scratch[written..n]),
                    Err(_) => return Step::Close,
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Step::Close,
            }
        }
    }
}
