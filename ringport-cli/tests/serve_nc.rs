//! The article's flow with the real `nc` (netcat-openbsd) against the real binary:
//! `echo NAME | nc -q1 127.0.0.1 PORT > copy`, and the copy is the file.
// Unix only: the real `nc` (netcat-openbsd) of the Debian host.
#![cfg(unix)]

mod util;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::files::{error_line, Expected, TempDir, Tree, KIB, MIB};
use util::{each_backend, wait_child, ChildServer};

/// Fails (never skips) without netcat-openbsd: CI installs it.
fn require_nc() {
    let help = Command::new("nc").arg("-h").output().unwrap_or_else(|e| {
        panic!("`nc` cannot run ({e}): install netcat-openbsd (apt-get install netcat-openbsd)")
    });
    let text = String::from_utf8_lossy(&help.stderr) + String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("OpenBSD netcat"),
        "`nc` is not netcat-openbsd: install netcat-openbsd (apt-get install netcat-openbsd); \
         `nc -h` says: {text}"
    );
}

/// Runs `nc -q1 127.0.0.1 PORT` with `input` on its stdin and its stdout in `out`; waits for
/// it (bounded) and returns the bytes it wrote.
fn nc(serve: &ChildServer, input: &[u8], out: &Path) -> Vec<u8> {
    nc_with(&["-q1"], serve, input, out)
}

/// [`nc`] with `flags` instead of `-q1`.
fn nc_with(flags: &[&str], serve: &ChildServer, input: &[u8], out: &Path) -> Vec<u8> {
    let mut child = Command::new("nc")
        .args(flags)
        .args(["127.0.0.1", &serve.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running nc");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert!(status.success(), "nc failed: {status}");
    std::fs::read(out).unwrap()
}

fn assert_is(got: &[u8], file: &Expected) {
    assert_eq!(
        got.len() as u64,
        file.size,
        "{}: size of nc's copy",
        file.name
    );
    assert_eq!(
        blake3::hash(got),
        file.hash,
        "{}: nc's copy differs",
        file.name
    );
}

#[test]
fn nc_downloads_a_file() {
    require_nc();
    let mut tree = Tree::new();
    let file = tree.add("file.bin", MIB);
    let out = TempDir::new("nc");
    each_backend(|backend| {
        let serve = util::serve(tree.root(), backend, &[]);
        let copy = out.path().join(format!("copy-{backend}"));
        assert_is(&nc(&serve, b"file.bin\n", &copy), &file);
    });
}

/// Several names on nc's stdin, a missing one and an empty line among them: the files and the
/// refusal lines come in order, in one stream.
#[test]
fn nc_several_names_and_a_refusal() {
    require_nc();
    let mut tree = Tree::new();
    let a = tree.add("a.txt", 5 * KIB);
    let b = tree.add("dir/b.bin", 300 * KIB);
    let out = TempDir::new("nc");
    each_backend(|backend| {
        let serve = util::serve(tree.root(), backend, &[]);
        let got = nc(
            &serve,
            b"a.txt\r\nmissing.txt\n\ndir/b.bin\n../secret.txt\n",
            &out.path().join("copy"),
        );
        let (first, rest) = got.split_at(a.size as usize);
        assert_is(first, &a);
        let mut lines = error_line("no such file", b"missing.txt");
        lines.extend_from_slice(b"error: no file name\r\n");
        assert!(
            rest.starts_with(&lines),
            "{:?}",
            rest[..80.min(rest.len())].escape_ascii().to_string()
        );
        let (second, rest) = rest[lines.len()..].split_at(b.size as usize);
        assert_is(second, &b);
        assert_eq!(
            rest,
            error_line("outside the served folder", b"../secret.txt")
        );
    });
}

/// The article's program served a name that ended with the input, without a newline: so does
/// ringport (`printf NAME | nc -N`: nc half-closes when its input ends).
#[test]
fn nc_last_name_without_newline() {
    require_nc();
    let mut tree = Tree::new();
    let file = tree.add("file.bin", 64 * KIB);
    let out = TempDir::new("nc");
    each_backend(|backend| {
        let serve = util::serve(tree.root(), backend, &[]);
        let copy = out.path().join(format!("copy-{backend}"));
        assert_is(&nc_with(&["-N"], &serve, b"file.bin", &copy), &file);
    });
}
