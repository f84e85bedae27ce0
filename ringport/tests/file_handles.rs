//! Files as handles of the port (IOCP is for files as much as sockets): a file associated
//! under a completion key, written and read at offsets by operations that own their buffers
//! until they complete, many at once, every byte verified; reading past the end gives no
//! bytes; closing the handle closes the file.

mod util;

use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use ringport::{Completion, CompletionKey, Handler, Io, OpKind, WorkerCtx};
use util::files::TempDir;

const CHUNK: usize = 256 * 1024;
const CHUNKS: usize = 16;

#[derive(Debug)]
#[allow(dead_code)] // the failure's fields are shown through `Debug` when a test fails
enum Event {
    Written(usize),
    Read(u64, Vec<u8>),
    Failed(OpKind, std::io::ErrorKind),
    Closed,
}

/// At start: associates the file and writes `CHUNKS` chunks at once; once all are written,
/// reads them all back at once, plus one read past the end; then closes the handle.
struct Files {
    path: std::path::PathBuf,
    events: Sender<Event>,
    written: usize,
    reads: usize,
}

/// The offset a read was for.
struct Handle {
    pending: Vec<u64>,
}

fn chunk(i: usize) -> Vec<u8> {
    util::payload(i as u64 + 7, CHUNK)
}

impl Handler for Files {
    type Conn = Handle;
    type Msg = ();

    fn accepted(&mut self, io: &mut Io<'_, Handle>) -> Handle {
        io.abort();
        Handle {
            pending: Vec::new(),
        }
    }

    fn started(&mut self, ctx: &mut WorkerCtx<'_, Handle>) {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .unwrap();
        let key: CompletionKey = ctx.associate_file(
            file,
            Handle {
                pending: Vec::new(),
            },
        );
        let mut io = ctx.to(key).unwrap();
        for i in 0..CHUNKS {
            io.write_at((i * CHUNK) as u64, chunk(i));
        }
    }

    fn completion(&mut self, h: &mut Handle, io: &mut Io<'_, Handle>, completion: Completion) {
        match completion {
            Completion::Written(buf) => {
                let _ = self.events.send(Event::Written(buf.len()));
                self.written += 1;
                if self.written == CHUNKS {
                    // Everything is on disk: read it all back at once, and past the end.
                    for i in 0..=CHUNKS {
                        h.pending.push((i * CHUNK) as u64);
                        io.read_at((i * CHUNK) as u64, Vec::with_capacity(CHUNK));
                    }
                }
            }
            Completion::Read(buf) => {
                // Reads may complete in any order: a read tells its offset by its content.
                let offset = h
                    .pending
                    .iter()
                    .copied()
                    .find(|&o| {
                        let i = o as usize / CHUNK;
                        i < CHUNKS && buf == chunk(i) || i == CHUNKS && buf.is_empty()
                    })
                    .unwrap_or(u64::MAX);
                let _ = self.events.send(Event::Read(offset, buf));
                self.reads += 1;
                if self.reads == CHUNKS + 1 {
                    io.close();
                }
            }
            Completion::Failed { op, error } => {
                let _ = self.events.send(Event::Failed(op, error.kind()));
                io.abort();
            }
            _ => {}
        }
    }

    fn closed(&mut self, _: &mut WorkerCtx<'_, Self::Conn>, _: Handle, _: CompletionKey) {
        let _ = self.events.send(Event::Closed);
    }
}

#[test]
fn a_file_handle_written_and_read_at_offsets() {
    let dir = TempDir::new("file-handles");
    util::each_backend(|backend| {
        let path = dir.path().join(format!("data-{backend}"));
        let (tx, rx) = mpsc::channel();
        let port = ringport::Port::builder()
            .workers(1)
            .backend(backend)
            .start({
                let path = path.clone();
                move |_| Files {
                    path: path.clone(),
                    events: tx.clone(),
                    written: 0,
                    reads: 0,
                }
            })
            .expect("the port starts");
        let next = || rx.recv_timeout(Duration::from_secs(20)).expect("an event");
        for _ in 0..CHUNKS {
            match next() {
                Event::Written(n) => assert_eq!(n, CHUNK),
                other => panic!("{backend}: {other:?}"),
            }
        }
        let mut seen = [false; CHUNKS + 1];
        for _ in 0..=CHUNKS {
            match next() {
                Event::Read(offset, buf) => {
                    let i = offset as usize / CHUNK;
                    assert!(i <= CHUNKS, "{backend}: a read gave bytes of no chunk");
                    assert!(!seen[i], "{backend}: chunk {i} twice");
                    seen[i] = true;
                    if i == CHUNKS {
                        assert!(buf.is_empty(), "{backend}: past the end: nothing");
                    } else {
                        util::assert_bytes(&buf, &chunk(i), "chunk");
                    }
                }
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert!(
            matches!(next(), Event::Closed),
            "{backend}: the handle closed"
        );
        // What the port wrote is the file.
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), CHUNKS * CHUNK);
        for i in 0..CHUNKS {
            util::assert_bytes(&on_disk[i * CHUNK..(i + 1) * CHUNK], &chunk(i), "on disk");
        }
        util::shutdown_and_join(port);
    });
}
