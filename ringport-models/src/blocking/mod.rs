//! The blocking models: (3) a thread per connection and (4) a pool of pre-started threads,
//! each thread serving one client with blocking reads and writes until it leaves.
//!
//! One acceptor thread takes connections from the listener. Thread per connection starts a
//! thread for each; the pool puts each in a queue that its threads take from. Tuned as such
//! servers are run: small thread stacks (128 KiB; the kernel maps pages only as they are
//! touched), `TCP_NODELAY`, zero-copy file sends, a backlog of 4096.

mod echo;
mod files;
mod registry;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use registry::{Registered, Registry};

use crate::files::FilesCtx;
use crate::listener::{bind, is_shortage};
use crate::{ModelConfig, Service};

/// Stack of a thread serving a client: the loops need little (their buffers are on the heap
/// or small), and thousands of threads must fit.
const STACK: usize = 128 * 1024;
/// Pause after an accept that failed for want of descriptors or memory.
const BACKOFF: Duration = Duration::from_millis(10);

/// What a serving thread runs for one client.
#[derive(Debug)]
enum Serve {
    Echo,
    Files(FilesCtx),
}

impl Serve {
    fn run(&self, conn: &Registered) {
        let result = match self {
            Serve::Echo => echo::serve(conn.stream()),
            Serve::Files(ctx) => files::serve(conn.stream(), ctx),
        };
        if let Err(e) = result {
            tracing::debug!("connection ended: {e}");
        }
    }

    /// Turns away a client over the connection limit.
    fn refuse(&self, mut stream: TcpStream) {
        if let Serve::Files(_) = self {
            use std::io::Write;
            // Best effort: the line fits any socket buffer, and the client is closed anyway.
            let _ = stream.set_nonblocking(true);
            let _ = stream.write_all(&crate::files::busy_line());
        }
    }
}

/// The running acceptor (and, for the pool, its threads).
#[derive(Debug)]
pub(crate) struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    listener: Arc<TcpListener>,
    registry: Arc<Registry>,
    acceptor: JoinHandle<()>,
    pool: Vec<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts thread per connection, or with `pool` the thread pool of `cfg.pool_threads`.
    pub(crate) fn start(pool: bool, service: &Service, cfg: &ModelConfig) -> io::Result<Self> {
        let serve = Arc::new(match service {
            Service::Echo => Serve::Echo,
            Service::Files(root) => Serve::Files(FilesCtx::new(root, cfg)?),
        });
        let listener = Arc::new(bind(cfg.listen, false)?);
        let addr = listener.local_addr()?;
        let threads = if pool { cfg.pool_threads.max(1) } else { 1 };
        let registry = Registry::new(cfg, threads, matches!(service, Service::Files(_)));
        let stop = Arc::new(AtomicBool::new(false));

        let (dispatch, pool): (Dispatch, Vec<JoinHandle<()>>) = if pool {
            let (tx, rx) = mpsc::channel::<Registered>();
            let rx = Arc::new(Mutex::new(rx));
            let threads = (0..threads)
                .map(|i| {
                    let (rx, serve) = (rx.clone(), serve.clone());
                    std::thread::Builder::new()
                        .name(format!("pool-{i}"))
                        .stack_size(STACK)
                        .spawn(move || pool_thread(&rx, &serve))
                })
                .collect::<io::Result<_>>()?;
            (Dispatch::Queue(tx), threads)
        } else {
            (Dispatch::Spawn(serve.clone()), Vec::new())
        };

        let acceptor = {
            let (listener, registry, stop) = (listener.clone(), registry.clone(), stop.clone());
            std::thread::Builder::new()
                .name("acceptor".into())
                .spawn(move || accept_loop(&listener, &registry, &stop, &serve, dispatch))?
        };
        Ok(Acceptor {
            addr,
            stop,
            listener,
            registry,
            acceptor,
            pool,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (a listening socket shut down wakes its `accept` with an error),
    /// shuts every connection down so that the threads serving them return, and joins the
    /// acceptor and the pool.
    pub(crate) fn stop(self) -> io::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        socket2::SockRef::from(&*self.listener).shutdown(std::net::Shutdown::Read)?;
        let joined = self.acceptor.join();
        self.registry.shut_all_down();
        for thread in self.pool {
            let _ = thread.join();
        }
        joined.map_err(|_| io::Error::other("the acceptor thread panicked"))
    }
}

/// Where the acceptor hands a connection.
enum Dispatch {
    /// (3) To a new thread.
    Spawn(Arc<Serve>),
    /// (4) To the pool's queue.
    Queue(mpsc::Sender<Registered>),
}

fn accept_loop(
    listener: &TcpListener,
    registry: &Arc<Registry>,
    stop: &AtomicBool,
    serve: &Serve,
    dispatch: Dispatch,
) {
    while !stop.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(e) if is_shortage(&e) => {
                tracing::warn!("accept: {e}; pausing");
                std::thread::sleep(BACKOFF);
                continue;
            }
            Err(e) => {
                tracing::debug!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(conn) = registry.register(stream) else {
            continue;
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(stream) => {
                serve.refuse(stream);
                continue;
            }
        };
        match &dispatch {
            Dispatch::Spawn(serve) => {
                let serve = serve.clone();
                let spawned = std::thread::Builder::new()
                    .name("conn".into())
                    .stack_size(STACK)
                    .spawn(move || serve.run(&conn));
                if let Err(e) = spawned {
                    // The connection went down with the closure: refused, the server lives on.
                    tracing::warn!("starting a connection thread: {e}");
                    std::thread::sleep(BACKOFF);
                }
            }
            Dispatch::Queue(queue) => {
                if queue.send(conn).is_err() {
                    return;
                }
            }
        }
    }
}

/// A pool thread: takes the next queued client and serves it until it leaves.
fn pool_thread(queue: &Mutex<mpsc::Receiver<Registered>>, serve: &Serve) {
    loop {
        let next = queue.lock().map(|rx| rx.recv());
        match next {
            Ok(Ok(conn)) => serve.run(&conn),
            // The acceptor has stopped (or a pool thread panicked holding the lock).
            _ => return,
        }
    }
}
