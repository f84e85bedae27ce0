//! Echo server on monoio with its io_uring driver: thread per core, the model ringport's workers share.
//!
//! Each of the `--threads` threads runs its own runtime (its own ring) and its own `SO_REUSEPORT`
//! listener on the same address, so the kernel spreads connections over the threads and a connection
//! never leaves the thread that accepted it. Reads and writes hand an owned buffer to the kernel and get
//! it back with the result.

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("peer-monoio-echo needs Linux (io_uring)");
    std::process::exit(2);
}

/// The server; monoio's io_uring driver exists only on Linux.
#[cfg(target_os = "linux")]
mod linux {
    use std::{io, net::SocketAddr, sync::mpsc, thread, time::Duration};

    use anyhow::{anyhow, Context as _};
    use clap::Parser;
    use monoio::{
        io::{AsyncReadRent as _, AsyncWriteRentExt as _},
        net::{ListenerOpts, TcpListener, TcpStream},
        IoUringDriver, RuntimeBuilder,
    };

    /// Size of each connection's read buffer.
    const BUF_SIZE: usize = 16 * 1024;

    /// Echo server on monoio (io_uring driver).
    #[derive(Debug, Parser)]
    struct Args {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7777")]
        listen: SocketAddr,
        /// Threads, each with its own runtime and its own SO_REUSEPORT listener.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        threads: u16,
    }

    /// Starts the threads one after another, each once the previous one listens, then serves until
    /// killed.
    pub(crate) fn main() -> anyhow::Result<()> {
        let args = Args::parse();
        let mut addr = args.listen;
        let mut workers = Vec::new();
        for i in 0..args.threads {
            let (ready_tx, ready_rx) = mpsc::channel();
            let worker = thread::Builder::new()
                .name(format!("monoio-{i}"))
                .spawn(move || worker(addr, &ready_tx))
                .context("spawning a worker thread")?;
            // Later threads bind the address the first one got, so `--listen 127.0.0.1:0` works too.
            addr = ready_rx
                .recv()
                .map_err(|_| anyhow!("worker {i} died before listening"))?
                .with_context(|| format!("worker {i}: listening on {addr}"))?;
            workers.push(worker);
        }
        println!("listening on {addr} (monoio, {} workers)", args.threads);
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow!("a worker thread panicked"))?
                .context("running a worker")?;
        }
        Ok(())
    }

    /// Runs one thread's runtime: binds, reports the bound address on `ready`, accepts forever.
    fn worker(addr: SocketAddr, ready: &mpsc::Sender<io::Result<SocketAddr>>) -> io::Result<()> {
        let mut rt = RuntimeBuilder::<IoUringDriver>::new().build()?;
        rt.block_on(async move {
            let bound = TcpListener::bind_with_config(addr, &ListenerOpts::new().reuse_port(true))
                .and_then(|l| Ok((l.local_addr()?, l)));
            let listener = match bound {
                Ok((local, listener)) => {
                    let _ = ready.send(Ok(local));
                    listener
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return Ok(());
                }
            };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        monoio::spawn(async move {
                            // A peer reset is part of a benchmark's life; nothing to report.
                            let _ = echo(stream).await;
                        });
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning. The runtime has no timer
                        // driver, so the whole thread sleeps; it has nothing else it could do anyway
                        // with a failing accept.
                        eprintln!("accept: {e}");
                        thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        })
    }

    /// Writes back everything read from `stream` until EOF, passing one owned buffer back and forth.
    async fn echo(mut stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let mut buf = Vec::with_capacity(BUF_SIZE);
        loop {
            // A read fills the buffer from the start, up to its capacity.
            buf.clear();
            let (res, b) = stream.read(buf).await;
            if res? == 0 {
                return Ok(());
            }
            let (res, b) = stream.write_all(b).await;
            res?;
            buf = b;
        }
    }
}
