//! Send-file and confined open on the epoll driver.

use std::ffi::CString;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use super::{pair, res, H};
use crate::sys::epoll::open;
use crate::sys::{OpenHow, Sub};

/// A fresh directory under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ringport-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn send_file_rounds_follow_the_socket() {
    let dir = TempDir::new("sendfile");
    let data: Vec<u8> = (0..6 << 20).map(|i: u32| (i % 253) as u8).collect();
    std::fs::write(dir.0.join("f"), &data).unwrap();
    let file = File::open(dir.0.join("f")).unwrap();
    let mut h = H::new(4, 64);
    let (a, mut b) = pair();
    b.set_nonblocking(true).unwrap();
    let (sock, fd) = (a.as_raw_fd(), file.as_raw_fd());
    let mut got = Vec::new();
    let mut chunk = vec![0; 1 << 16];
    let mut offset = 100u64;
    let mut rounds = 0;
    while offset < data.len() as u64 {
        let len = data.len() as u64 - offset;
        h.push(
            Sub::SendFile {
                sock,
                file: fd,
                offset,
                len,
            },
            1,
        );
        // Read while the round waits for room, as a client would.
        let sent = loop {
            match b.read(&mut chunk) {
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            let mut out = Vec::new();
            h.d.wait(&mut out, false).unwrap();
            if let Some(c) = out.first() {
                assert_eq!(res(c).0, 1);
                break c.result;
            }
        };
        assert!(sent > 0 && sent <= 4 << 20, "a round: {sent}");
        offset += sent as u64;
        rounds += 1;
    }
    assert!(rounds > 1);
    b.set_nonblocking(false).unwrap();
    while got.len() < data.len() - 100 {
        let n = b.read(&mut chunk).unwrap();
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(got, data[100..]);

    // Past the end: 0, "the file ended".
    let past = data.len() as u64;
    h.push(
        Sub::SendFile {
            sock,
            file: fd,
            offset: past,
            len: 10,
        },
        2,
    );
    assert_eq!(res(&h.next()), (2, 0, false));
}

fn read_fd(fd: i32) -> String {
    // SAFETY: a successful open completion carries a new descriptor we now own.
    let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn open_beneath_stays_inside() {
    let dir = TempDir::new("open");
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    File::create(dir.0.join("sub/f.txt"))
        .unwrap()
        .write_all(b"inside")
        .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.0.join("out")).unwrap();
    std::os::unix::fs::symlink("sub", dir.0.join("in")).unwrap();
    let root = File::open(&dir.0).unwrap();
    let d = root.as_raw_fd();

    let mut h = H::new(4, 64);
    let open = |h: &mut H, path: &str, user_data: u64| {
        let c = CString::new(path).unwrap();
        let how = OpenHow::beneath();
        h.push(
            Sub::OpenBeneath {
                dir: d,
                path: c.as_ptr(),
                how: &how,
            },
            user_data,
        );
        h.next().result
    };
    assert_eq!(read_fd(open(&mut h, "sub/./f.txt", 1)), "inside");
    assert_eq!(open(&mut h, "../etc/passwd", 2), -libc::EXDEV);
    assert_eq!(open(&mut h, "/etc/passwd", 3), -libc::EXDEV);
    assert_eq!(open(&mut h, "out", 4), -libc::EXDEV);
    assert_eq!(open(&mut h, "nope", 5), -libc::ENOENT);
    assert_eq!(read_fd(open(&mut h, "in/f.txt", 6)), "inside");

    // The fallback walk, where openat2 is refused: stricter, never looser.
    let walk = |d, path: &[u8]| open::walk(d, path, OpenHow::beneath().flags as i32);
    assert_eq!(read_fd(walk(d, b"sub//./f.txt")), "inside");
    assert_eq!(walk(d, b"sub/../sub/f.txt"), -libc::EXDEV);
    assert_eq!(walk(d, b"/etc/passwd"), -libc::EXDEV);
    assert_eq!(walk(d, b"out"), -libc::ELOOP);
    assert_eq!(walk(d, b"in/f.txt"), -libc::ENOTDIR);
    assert_eq!(walk(d, b"nope"), -libc::ENOENT);
    assert_eq!(walk(d, b""), -libc::ENOENT);
    let here = walk(d, b".");
    assert!(here >= 0);
    // SAFETY: a new descriptor we own.
    drop(unsafe { OwnedFd::from_raw_fd(here) });
}
