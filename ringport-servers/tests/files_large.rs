//! A sparse file over 4 GiB comes back whole: exact length, its marker blocks at their offsets
//! (around 2 GiB and 4 GiB, where 32-bit offsets and lengths would break) and zeros elsewhere.
//! The download is checked as it streams; nothing holds 4 GiB in memory.

mod util;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use util::files::{Tree, GIB, MIB};
use util::{each_backend, Server};

/// Distinct blocks written into the holes, and where.
fn markers(size: u64) -> Vec<(u64, Vec<u8>)> {
    [0, 2 * GIB - 1, 4 * GIB - 7, size - 100]
        .into_iter()
        .map(|offset| {
            let text = format!("<marker at {offset}>");
            let mut block = text.repeat(64 / text.len() + 1).into_bytes();
            block.truncate(64);
            (offset, block)
        })
        .collect()
}

/// What the file holds in `offset..offset + out.len()`: zeros but for the markers.
fn expected_at(markers: &[(u64, Vec<u8>)], offset: u64, out: &mut [u8]) {
    out.fill(0);
    let end = offset + out.len() as u64;
    for (at, block) in markers {
        let block_end = at + block.len() as u64;
        if *at < end && block_end > offset {
            let from = (*at).max(offset);
            let to = block_end.min(end);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&block[(from - at) as usize..(to - at) as usize]);
        }
    }
}

#[test]
fn sparse_file_over_4_gib() {
    let tree = Tree::new();
    let size = 4 * GIB + 12345;
    let marks = markers(size);
    let path = tree.path("sparse.bin");
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.set_len(size).unwrap();
    for (offset, block) in &marks {
        file.seek(SeekFrom::Start(*offset)).unwrap();
        file.write_all(block).unwrap();
    }
    drop(file);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);

    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        // The refusal after the file proves that exactly `size` bytes came before it.
        client.send(b"sparse.bin\nmissing\n");
        let start = std::time::Instant::now();
        let (mut offset, mut want) = (0, vec![0; 4 * MIB as usize]);
        while offset < size {
            let n = want.len().min((size - offset) as usize);
            expected_at(&marks, offset, &mut want[..n]);
            client.expect_bytes(&want[..n], &format!("sparse.bin at {offset}"));
            offset += n as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{backend}: {size} bytes in {secs:.1} s ({:.0} MB/s)",
            size as f64 / secs / 1e6
        );
        client.expect_error("no such file", b"missing");
        drop(client);
        server.stop().expect("the server stops cleanly");
    });
}
