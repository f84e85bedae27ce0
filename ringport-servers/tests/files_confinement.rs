//! Nothing outside the served folder is ever sent: hostile names are each answered with one
//! refusal line, the marker of a secret file beside the folder never shows up, special files
//! are refused without blocking, and the connection goes on serving afterwards.
// Unix only: escapes through Unix symlinks and `/proc/self/root` magic links, and special files
// (FIFO, device node, Unix socket) made with libc; Windows confinement is tested by ringport's
// open tests and wine-ci's windows_exe.
#![cfg(unix)]

mod util;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::Path;

use util::files::{error_line, Client, Tree, KIB};
use util::{each_backend, Server};

const OUTSIDE: &str = "outside the served folder";
const NO_SUCH: &str = "no such file";
const NOT_REGULAR: &str = "not a regular file";
const TOO_LONG: &str = "name too long";
const LOOP: &str = "too many symbolic links";

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// A character device like /dev/zero, if this process may make one.
fn mknod_zero(path: &Path) -> bool {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 5)) };
    if rc != 0 {
        eprintln!(
            "note: no device test: mknod: {}",
            std::io::Error::last_os_error()
        );
    }
    rc == 0
}

/// The hostile tree: links out of the folder every way, special files, a folder.
struct Hostile {
    tree: Tree,
    /// Kept bound so that the socket file stays a live socket.
    _socket: UnixListener,
    device: bool,
}

fn hostile_tree() -> Hostile {
    let mut tree = Tree::new();
    tree.add("ok.txt", 5 * KIB);
    tree.add("sub/inner.txt", 1234);
    let root = tree.root().to_owned();
    let outside = tree.outside().to_owned();
    std::fs::write(outside.join("x"), tree.secret()).unwrap();
    symlink("/", root.join("to_root")).unwrap();
    symlink(outside.join("secret.txt"), root.join("abs_secret")).unwrap();
    symlink("../secret.txt", root.join("rel_secret")).unwrap();
    symlink("chain_b", root.join("chain_a")).unwrap();
    symlink("sub/chain_c", root.join("chain_b")).unwrap();
    symlink("../../secret.txt", root.join("sub/chain_c")).unwrap();
    symlink("..", root.join("up")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    symlink("self", root.join("self")).unwrap();
    symlink("/proc/self/root", root.join("proc_root")).unwrap();
    symlink("/etc/passwd", root.join("passwd")).unwrap();
    // A link that stays inside is fine.
    symlink("sub/inner.txt", root.join("inner_link")).unwrap();
    mkfifo(&root.join("fifo"));
    let socket = UnixListener::bind(root.join("socket")).unwrap();
    let device = mknod_zero(&root.join("zero"));
    Hostile {
        tree,
        _socket: socket,
        device,
    }
}

/// Each hostile name and the reply it must get.
fn cases(h: &Hostile) -> Vec<(Vec<u8>, Vec<u8>)> {
    let root = h.tree.root().to_str().unwrap();
    let outside = h.tree.outside().to_str().unwrap();
    let mut cases: Vec<(Vec<u8>, &str)> = [
        ("../x", OUTSIDE),
        ("../secret.txt", OUTSIDE),
        ("../../etc/passwd", OUTSIDE),
        ("/etc/passwd", OUTSIDE),
        ("/proc/self/root/etc/passwd", OUTSIDE),
        ("..", OUTSIDE),
        ("./..", OUTSIDE),
        ("sub/../../x", OUTSIDE),
        ("sub/../sub/../../secret.txt", OUTSIDE),
        ("%2e%2e/x", NO_SUCH),
        ("%2e%2e%2fsecret.txt", NO_SUCH),
        ("....//x", NO_SUCH),
        ("..\\x", NO_SUCH),
        ("..\\..\\secret.txt", NO_SUCH),
        ("   ", NO_SUCH),
        ("~/x", NO_SUCH),
        ("ok.txt/", NO_SUCH),
        ("ok.txt/..", NO_SUCH),
        ("to_root", OUTSIDE),
        ("to_root/etc/passwd", OUTSIDE),
        ("abs_secret", OUTSIDE),
        ("rel_secret", OUTSIDE),
        ("chain_a", OUTSIDE),
        ("up", OUTSIDE),
        ("up/secret.txt", OUTSIDE),
        ("up/served/ok.txt", OUTSIDE),
        ("proc_root/etc/passwd", OUTSIDE),
        ("passwd", OUTSIDE),
        ("loop_a", LOOP),
        ("self", LOOP),
        ("fifo", NOT_REGULAR),
        ("socket", NOT_REGULAR),
        (".", NOT_REGULAR),
        ("sub", NOT_REGULAR),
        ("sub/", NOT_REGULAR),
        ("sub/.", NOT_REGULAR),
    ]
    .into_iter()
    .map(|(name, reason)| (name.as_bytes().to_vec(), reason))
    .collect();
    // Absolute names are refused even where they lead inside the folder.
    cases.push((format!("{root}/ok.txt").into_bytes(), OUTSIDE));
    cases.push((format!("{outside}/secret.txt").into_bytes(), OUTSIDE));
    // A NUL byte would cut the name short in C: refused, never opened as "a".
    cases.push((b"a\0b".to_vec(), NO_SUCH));
    cases.push((b"ok.txt\0../../secret.txt".to_vec(), NO_SUCH));
    // Control bytes come back escaped, never raw.
    cases.push((b"\x1b[2J\x07".to_vec(), NO_SUCH));
    // The kernel's limits: a component over 255 bytes, a path of 4096.
    cases.push((vec![b'a'; 300], TOO_LONG));
    cases.push((vec![b'a'; 4096], TOO_LONG));
    if h.device {
        cases.push((b"zero".to_vec(), NOT_REGULAR));
    }
    cases
        .into_iter()
        .map(|(name, reason)| {
            let line = error_line(reason, &name);
            (name, line)
        })
        .collect()
}

/// Reads the reply to `name` and checks that it is `line`; remembers every byte in `seen` for
/// the leak check.
fn expect_reply(client: &mut Client, seen: &mut Vec<u8>, name: &[u8], line: &[u8]) {
    let got = client.read_line();
    seen.extend_from_slice(&got);
    assert_eq!(
        got.escape_ascii().to_string(),
        line.escape_ascii().to_string(),
        "reply to {:?}",
        name.escape_ascii().to_string()
    );
}

fn assert_no_leak(h: &Hostile, seen: &[u8]) {
    let text = String::from_utf8_lossy(seen);
    assert!(!text.contains(h.tree.secret()), "the secret leaked");
    assert!(!text.contains("root:x:0:0"), "/etc/passwd leaked");
}

#[test]
fn hostile_names_one_at_a_time() {
    let h = hostile_tree();
    let cases = cases(&h);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let ok = h.tree.expected("ok.txt");
    let inner = h.tree.expected("sub/inner.txt");
    each_backend(|backend| {
        let server = Server::start(backend, h.tree.root());
        let mut client = server.connect();
        let mut seen = Vec::new();
        for (name, line) in &cases {
            client.ask(name);
            expect_reply(&mut client, &mut seen, name, line);
        }
        assert_no_leak(&h, &seen);
        // The same connection still serves, inside links and inner `..` included.
        client.get(&ok);
        client.ask(b"inner_link");
        client.expect_file(&inner);
        client.ask(b"sub/../sub/./inner.txt");
        client.expect_file(&inner);
        client.get(&ok);
    });
}

/// All of them in one write: the same replies, in order, then a valid file.
#[test]
fn hostile_names_pipelined() {
    let h = hostile_tree();
    let cases = cases(&h);
    let ok = h.tree.expected("ok.txt");
    each_backend(|backend| {
        let server = Server::start(backend, h.tree.root());
        let mut client = server.connect();
        let mut request = Vec::new();
        for (name, _) in &cases {
            request.extend_from_slice(name);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"ok.txt\n");
        client.send(&request);
        let mut seen = Vec::new();
        for (name, line) in &cases {
            expect_reply(&mut client, &mut seen, name, line);
        }
        client.expect_file(&ok);
        assert_no_leak(&h, &seen);
    });
}

/// A name far over the limit is refused once (its bytes are skipped up to its LF), and the
/// connection stays usable, also for a name sent in the same write.
#[test]
fn name_of_64_kib_is_refused_and_the_connection_goes_on() {
    let mut tree = Tree::new();
    let ok = tree.add("ok.txt", 3 * KIB);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut client = server.connect();
        let long = vec![b'y'; 64 * 1024];
        client.ask(&long);
        let line = client.read_line();
        assert!(
            line.starts_with(b"error: name too long")
                && line.ends_with(b"\r\n")
                && line.len() < 300,
            "{:?}",
            line.escape_ascii().to_string()
        );
        client.get(&ok);
        // Again, with the valid name in the same write.
        let mut both = long.clone();
        both.extend_from_slice(b"\nok.txt\n");
        client.send(&both);
        assert_eq!(client.read_line(), line);
        client.expect_file(&ok);
    });
}

/// A unix socket file is a special file like a FIFO: "not a regular file", as the refusals'
/// own documentation says.
#[test]
fn unix_socket_file_is_not_a_regular_file() {
    let h = hostile_tree();
    let ok = h.tree.expected("ok.txt");
    each_backend(|backend| {
        let server = Server::start(backend, h.tree.root());
        let mut client = server.connect();
        client.ask(b"socket");
        client.expect_error(NOT_REGULAR, b"socket");
        client.get(&ok);
    });
}
