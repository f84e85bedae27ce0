//! Echo server on tokio, the peer that ringport's echo is compared with.
//!
//! `--threads 1` runs tokio's current-thread runtime; more threads run the multi-thread (work-stealing)
//! runtime with that many workers. Each connection reads into a 16 KiB buffer and writes back what it
//! read, until EOF.

use std::{io, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    runtime,
};

/// Size of each connection's read buffer.
const BUF_SIZE: usize = 16 * 1024;

/// Echo server on tokio.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    /// Worker threads: 1 runs the current-thread runtime, more the multi-thread runtime.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = if args.threads == 1 {
        runtime::Builder::new_current_thread()
    } else {
        let mut b = runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads.into());
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!(
            "listening on {} (tokio, {} workers)",
            listener.local_addr()?,
            args.threads
        );
        tokio::select! {
            () = accept_loop(listener) => {}
            res = shutdown_signal() => res.context("waiting for a shutdown signal")?,
        }
        Ok(())
    })
}

/// Accepts connections forever, one task per connection.
async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    // A peer reset is part of a benchmark's life; nothing to report.
                    let _ = echo(stream).await;
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Writes back everything read from `stream` until EOF.
async fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// Resolves on SIGINT, or SIGTERM where there is one.
async fn shutdown_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            res = tokio::signal::ctrl_c() => res,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
