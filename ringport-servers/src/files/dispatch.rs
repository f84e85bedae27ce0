//! One port, two protocols: the handler of `ringport serve` reads the start of a connection's
//! first line and hands the connection to the nc file server ([`FileServer`]) or to the HTTP
//! server ([`HttpServer`]) for the rest of its life ([`crate::http::sniff`] decides).
//!
//! Every connection is accepted by the nc side, which counts it against the connection limit
//! (both protocols share it) and arms its idle timer. Until the protocol is known, the bytes
//! read are held (at most the HTTP head limit, plus one receive), and once bytes have come the
//! rest of the first line must come within the shorter of the HTTP header timeout and the nc
//! request timeout: at that time a line that had come as far as `METHOD SP` gets HTTP's 408,
//! anything else goes to the nc side, which answers as it does to any name cut by its timeout.

use std::time::{Duration, Instant};

use ringport::{Completion, CompletionKey, Handler, Io, WorkerCtx};

use super::conn::{FileConn, FileServer};
use crate::http::response::{error, ErrorExtras, Persist, Status};
use crate::http::sniff::{sniff, Protocol};
use crate::http::{HttpConn, HttpServer};

/// The handler of one worker of `ringport serve`: nc and HTTP on the same port.
#[derive(Debug)]
pub struct Server {
    nc: FileServer,
    http: HttpServer,
    /// Bytes of an undecided first line held at most.
    sniff_limit: usize,
    header_timeout: Duration,
    /// How long an undecided first line may take: the shorter of the HTTP header timeout and
    /// the nc request timeout.
    sniff_timeout: Duration,
    /// Log the peer of HTTP requests.
    log_peers: bool,
}

impl Server {
    pub(crate) fn new(
        nc: FileServer,
        http: HttpServer,
        sniff_limit: usize,
        header_timeout: Duration,
        request_timeout: Option<Duration>,
        log_peers: bool,
    ) -> Self {
        Server {
            nc,
            http,
            sniff_limit,
            header_timeout,
            sniff_timeout: request_timeout.map_or(header_timeout, |r| r.min(header_timeout)),
            log_peers,
        }
    }
}

/// Which protocol a connection speaks.
#[derive(Debug)]
enum Speaking {
    /// Not known yet: the bytes read so far, and when the first of them came.
    Unknown(Vec<u8>, Option<Instant>),
    /// The nc protocol.
    Nc,
    /// HTTP.
    Http(Box<HttpConn>),
}

/// Per-connection state: the nc side's (which also counts the connection) and the protocol.
#[derive(Debug)]
pub struct Conn {
    nc: FileConn,
    speaking: Speaking,
}

impl Server {
    /// Bytes of a connection whose protocol is not known yet.
    fn sniff(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, data: ringport::RecvBuf) {
        let Speaking::Unknown(held, since) = &mut conn.speaking else {
            unreachable!("sniffing a connection whose protocol is known")
        };
        let first = held.is_empty();
        if !first {
            held.extend_from_slice(&data);
        }
        let bytes: &[u8] = if first { &data } else { held };
        match sniff(bytes, self.sniff_limit) {
            Protocol::Undecided => {
                if first {
                    held.extend_from_slice(&data);
                    io.set_timeout(self.sniff_timeout);
                    *since = Some(Instant::now());
                }
            }
            Protocol::Nc => {
                let held = std::mem::take(held);
                conn.speaking = Speaking::Nc;
                if first {
                    self.nc
                        .on_completion(&mut conn.nc, io, Completion::Received(data));
                } else {
                    drop(data);
                    self.nc.feed(&mut conn.nc, io, &held);
                }
            }
            Protocol::Http => {
                let held = std::mem::take(held);
                // The request keeps its deadline from its first byte; the timer armed then
                // fires at the sniff timeout.
                let deadline = since.map(|t| (t + self.header_timeout, t + self.sniff_timeout));
                let peer = if self.log_peers {
                    io.peer_addr().ok()
                } else {
                    None
                };
                let mut http = Box::new(HttpConn::new(peer, deadline));
                if first {
                    self.http.start(&mut http, io, &data);
                } else {
                    drop(data);
                    self.http.start(&mut http, io, &held);
                }
                conn.speaking = Speaking::Http(http);
            }
        }
    }
}

impl Handler for Server {
    type Conn = Conn;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Conn>) -> Conn {
        Conn {
            nc: self.nc.on_accepted(io),
            speaking: Speaking::Unknown(Vec::new(), None),
        }
    }

    fn completion(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>, completion: Completion) {
        match (&mut conn.speaking, completion) {
            (Speaking::Nc, c) => self.nc.on_completion(&mut conn.nc, io, c),
            (Speaking::Http(http), c) => self.http.completion(http, io, c),
            (Speaking::Unknown(..), Completion::Received(data)) => self.sniff(conn, io, data),
            (Speaking::Unknown(held, _), Completion::Eof) => {
                // A last line without its end: an nc name (the nc side decides what to do).
                let held = std::mem::take(held);
                conn.speaking = Speaking::Nc;
                if !held.is_empty() {
                    self.nc.feed(&mut conn.nc, io, &held);
                }
                self.nc.on_completion(&mut conn.nc, io, Completion::Eof);
            }
            (Speaking::Unknown(held, _), Completion::Timeout) if !held.is_empty() => {
                // A first line that was still arriving: if it had come as far as `METHOD SP`,
                // it was probably HTTP, and gets its 408; else it is an nc name cut by the
                // request timeout, and the nc side says so.
                if held.contains(&b' ') {
                    let extras = ErrorExtras::default();
                    let (reply, _) = error(Status::RequestTimeout, false, Persist::Close, &extras);
                    io.send(reply);
                    io.close();
                } else {
                    let held = std::mem::take(held);
                    conn.speaking = Speaking::Nc;
                    self.nc.feed(&mut conn.nc, io, &held);
                    self.nc.on_completion(&mut conn.nc, io, Completion::Timeout);
                }
            }
            (Speaking::Unknown(..), c) => self.nc.on_completion(&mut conn.nc, io, c),
        }
    }

    fn shutdown(&mut self, conn: &mut Conn, io: &mut Io<'_, Conn>) {
        match &mut conn.speaking {
            Speaking::Http(http) => self.http.shutdown(http, io),
            Speaking::Nc | Speaking::Unknown(..) => self.nc.on_shutdown(&mut conn.nc, io),
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Conn>, conn: Conn, key: CompletionKey) {
        self.nc.on_closed(conn.nc, key);
    }
}
