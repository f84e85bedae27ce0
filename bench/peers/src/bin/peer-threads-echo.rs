//! Echo server with one OS thread per connection and blocking I/O: the third server model of the
//! source articles, and the baseline the completion port has to beat.

use std::{
    io::{self, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use anyhow::Context as _;
use clap::Parser;

/// Size of each connection's read buffer (on the heap, not the thread's stack).
const BUF_SIZE: usize = 16 * 1024;

/// Stack size of a connection thread: the echo loop needs little, and a small stack lets thousands of
/// connections fit without reserving gigabytes of address space.
const STACK_SIZE: usize = 64 * 1024;

/// Echo server with one OS thread per connection.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    println!(
        "listening on {} (threads, one per connection)",
        listener.local_addr()?
    );
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let spawned = thread::Builder::new()
                    .name("echo-conn".into())
                    .stack_size(STACK_SIZE)
                    .spawn(move || {
                        // A peer reset is part of a benchmark's life; nothing to report.
                        let _ = echo(stream);
                    });
                if let Err(e) = spawned {
                    // The stream went down with the closure: the connection is refused, the server lives on.
                    eprintln!("spawning a connection thread: {e}");
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Writes back everything read from `stream` until EOF.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}
