//! Clients of an echo server: round trips, streams written and checked on the fly, writers
//! stopped by backpressure, and a crowd of them in every state at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crate::net::{connect, IO_TIMEOUT};
use crate::stream::{assert_bytes, check_stream, fill, payload};
use crate::wait::wait_until;

/// How long a nonblocking writer must make no progress to count as stopped by backpressure.
pub const STALL: Duration = Duration::from_millis(500);

/// Sends `data` and reads back as many bytes, writing and reading at once (a server that
/// applies backpressure would never finish a large message read only after it is written).
///
/// # Panics
/// If the echo differs from `data`.
pub fn round_trip(stream: &TcpStream, data: &[u8]) {
    let echoed = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut w = stream;
            w.write_all(data)
        });
        let mut echoed = vec![0; data.len()];
        let read = (&*stream).read_exact(&mut echoed);
        writer.join().unwrap().expect("writing the message");
        read.expect("reading the echo");
        echoed
    });
    assert_bytes(&echoed, data, "echo");
}

/// How a read to the end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// An orderly close.
    Eof,
    /// A reset.
    Reset,
}

/// Reads until EOF or a reset, checking every byte against the stream named by `seed` from
/// `offset` on; returns how many bytes were read and how it ended. Any other error (a
/// timeout) fails.
pub fn read_stream_to_end(mut stream: &TcpStream, seed: u64, offset: u64) -> (u64, End) {
    let mut chunk = vec![0; 64 * 1024];
    let mut pos = offset;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (pos - offset, End::Eof),
            Ok(n) => {
                check_stream(seed, pos, &chunk[..n], "echoed stream");
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return (pos - offset, End::Reset)
            }
            Err(e) => panic!("reading at stream offset {pos}: {e}"),
        }
    }
}

/// Writes the stream named by `seed` from `from` up to `to`, then half-closes.
///
/// # Errors
/// The first write error (a server that closed the connection).
pub fn write_stream(mut stream: &TcpStream, seed: u64, from: u64, to: u64) -> io::Result<()> {
    let mut chunk = vec![0; 256 * 1024];
    let mut pos = from;
    while pos < to {
        let n = chunk.len().min((to - pos) as usize);
        fill(seed, pos, &mut chunk[..n]);
        stream.write_all(&chunk[..n])?;
        pos += n as u64;
    }
    stream.shutdown(Shutdown::Write)
}

/// Writes the stream named by `seed` without blocking until the socket takes nothing more for
/// [`STALL`] (or `max` bytes are written); returns the bytes written.
pub fn write_until_stalled(stream: &TcpStream, seed: u64, max: u64) -> u64 {
    stream.set_nonblocking(true).unwrap();
    let mut chunk = vec![0; 64 * 1024];
    let mut written = 0u64;
    let mut last_progress = Instant::now();
    while written < max && last_progress.elapsed() < STALL {
        let n = chunk.len().min((max - written) as usize);
        fill(seed, written, &mut chunk[..n]);
        match (&*stream).write(&chunk[..n]) {
            Ok(n) => {
                written += n as u64;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("writing at stream offset {written}: {e}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
    written
}

/// Clients of an echo server in every state at once, for the tests that end a server under
/// load: streaming clients, each writing an endless stream and checking its echo on the fly; a
/// client that sends without reading, stopped by backpressure; and three idle clients, each
/// served once.
#[derive(Debug)]
pub struct BusyClients<'scope> {
    readers: Vec<ScopedJoinHandle<'scope, ()>>,
    deaf: TcpStream,
    idle: Vec<TcpStream>,
}

impl<'scope> BusyClients<'scope> {
    /// Connects `streaming` streaming clients and the others to the echo server at `addr`,
    /// their threads in `scope`; returns once every stream has had over 1 MiB echoed.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        addr: SocketAddr,
        seed: u64,
        streaming: u64,
    ) -> Self {
        let echoed: Vec<Arc<AtomicU64>> = (0..streaming).map(|_| Arc::default()).collect();
        let readers = echoed
            .iter()
            .enumerate()
            .map(|(i, echoed)| {
                let seed = seed ^ i as u64;
                let client = connect(addr);
                let writer = client.try_clone().unwrap();
                scope.spawn(move || {
                    let _ = write_stream(&writer, seed, 0, u64::MAX);
                });
                let echoed = echoed.clone();
                scope.spawn(move || check_echo_until_closed(&client, seed, &echoed, i))
            })
            .collect();
        let deaf = connect(addr);
        write_until_stalled(&deaf, seed, 64 << 20);
        let idle = (0..3)
            .map(|i| {
                let c = connect(addr);
                round_trip(&c, &payload(seed ^ (100 + i), 1000));
                c
            })
            .collect();
        wait_until(IO_TIMEOUT, "every stream is under way", || {
            echoed.iter().all(|e| e.load(Ordering::Relaxed) > 1 << 20)
        });
        BusyClients {
            readers,
            deaf,
            idle,
        }
    }

    /// Once the server has ended: every streaming client's echo was correct up to its end
    /// (EOF or reset), and every idle client sees a clean EOF.
    ///
    /// # Panics
    /// If not.
    pub fn check_ended(self) {
        for r in self.readers {
            r.join().unwrap();
        }
        for c in &self.idle {
            assert_eq!(
                read_stream_to_end(c, 0, 0),
                (0, End::Eof),
                "idle clients are closed cleanly"
            );
        }
        drop(self.deaf);
    }
}

/// Reads the echo of streaming client `i` until the server ends it, checking every byte and
/// publishing how far it got in `echoed`.
fn check_echo_until_closed(mut client: &TcpStream, seed: u64, echoed: &AtomicU64, i: usize) {
    let mut chunk = vec![0; 64 * 1024];
    let mut pos = 0;
    loop {
        match client.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                check_stream(seed, pos, &chunk[..n], "echo");
                pos += n as u64;
                echoed.store(pos, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("streaming client {i}: {e}"),
        }
    }
}
