//! Hostile HTTP requests, on every backend: each gets its status (or, when it is not an HTTP
//! request line at all, the nc protocol's refusal), no byte from outside the served folder
//! ever comes back, terminal escapes never reach the access log raw, and the server keeps
//! serving.
// Unix only: hostile targets through Unix symlinks, `/proc` magic links, a FIFO (libc `mkfifo`)
// and a Unix socket in the served folder.
#![cfg(unix)]

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use util::files::{Tree, KIB};
use util::{each_backend, Server};

/// What a hostile request must get.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// An HTTP response with this status.
    Status(u16),
    /// The nc protocol's "no such file" line (the first line was not an HTTP request line).
    NcRefusal,
}

/// The start of a request to which header lines can be added.
const START: &[u8] = b"GET /ok.txt HTTP/1.1\r\nHost: h\r\n";

fn cases() -> Vec<(String, Vec<u8>, Want)> {
    use Want::*;
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
    let with =
        |headers: &str| format!("GET /ok.txt HTTP/1.1\r\nHost: h\r\n{headers}\r\n").into_bytes();
    let mut cases: Vec<(String, Vec<u8>, Want)> = [
        ("/../secret.txt", 400),
        ("/%2e%2e/secret.txt", 400),
        ("/%2E%2E/secret.txt", 400),
        ("/.%2e/secret.txt", 400),
        ("/..%2fsecret.txt", 400),
        ("/..%2Fsecret.txt", 400),
        ("/%2e%2e%2fsecret.txt", 400),
        ("/sub/../../secret.txt", 400),
        ("/sub/%2e%2e/%2e%2e/secret.txt", 400),
        ("/..%5csecret.txt", 400),
        ("/..%5c..%5csecret.txt", 400),
        ("/ok.txt%00.html", 400),
        ("/%00", 400),
        ("/%zz", 400),
        ("/%", 400),
        ("http://evil.example/../secret.txt", 400),
        ("http://evil.example/%2e%2e/secret.txt", 400),
        ("//evil.example/..", 400),
        ("*", 400),
        ("ftp://h/ok.txt", 400),
        ("/abs_secret", 404),
        ("/rel_secret", 404),
        ("/up/secret.txt", 404),
        ("/to_root/etc/passwd", 404),
        ("/proc_root/etc/passwd", 404),
        ("/passwd", 404),
        ("/loop_a", 404),
        ("/fifo", 404),
        ("/socket", 404),
        ("/.hidden", 404),
        ("/%2ehidden", 404),
        ("/%1b%5b2J%1b%5d0;pwned%07", 404),
        ("/ok.txt/", 404),
        ("http://evil.example/ok.txt", 200),
    ]
    .into_iter()
    .map(|(t, s)| (format!("GET {t}"), get(t), Status(s)))
    .collect();
    let raw: Vec<(&str, Vec<u8>, Want)> = vec![
        (
            "overlong target",
            [
                &b"GET /"[..],
                &[b'a'; 20_000],
                b" HTTP/1.1\r\nHost: h\r\n\r\n",
            ]
            .concat(),
            Status(414),
        ),
        (
            "10,000 headers",
            [
                START.to_vec(),
                (0..10_000)
                    .flat_map(|i| format!("X-{i}: y\r\n").into_bytes())
                    .collect(),
                b"\r\n".to_vec(),
            ]
            .concat(),
            Status(431),
        ),
        (
            "129 headers",
            [
                START.to_vec(),
                (0..129)
                    .flat_map(|i| format!("X-{i}: y\r\n").into_bytes())
                    .collect(),
                b"\r\n".to_vec(),
            ]
            .concat(),
            Status(431),
        ),
        (
            "1 MiB header line",
            [
                &b"GET /ok.txt HTTP/1.1\r\nHost: h\r\nX: "[..],
                &vec![b'a'; 1 << 20],
                b"\r\n\r\n",
            ]
            .concat(),
            Status(431),
        ),
        (
            "bare LF line ends",
            b"GET /ok.txt HTTP/1.1\nHost: h\n\n".to_vec(),
            Status(200),
        ),
        (
            "bare CR",
            b"GET /ok.txt HTTP/1.1\r\nHost: h\rX: y\r\n\r\n".to_vec(),
            Status(400),
        ),
        ("obs-fold", with("X: a\r\n  folded\r\n"), Status(400)),
        ("space before colon", with("Host : h\r\n"), Status(400)),
        ("NUL in a header", with("X: a\0b\r\n"), Status(400)),
        (
            "lowercase method",
            b"get /ok.txt HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            Status(405),
        ),
        (
            "unknown method",
            b"BREW /ok.txt HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            Status(405),
        ),
        (
            "CONNECT",
            b"CONNECT evil.example:443 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            Status(405),
        ),
        (
            "method not a token",
            b"G@T /ok.txt HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            NcRefusal,
        ),
        (
            "HTTP/2.0",
            b"GET /ok.txt HTTP/2.0\r\nHost: h\r\n\r\n".to_vec(),
            Status(505),
        ),
        (
            "HTTP/1.9",
            b"GET /ok.txt HTTP/1.9\r\nHost: h\r\n\r\n".to_vec(),
            Status(505),
        ),
        (
            "no Host",
            b"GET /ok.txt HTTP/1.1\r\n\r\n".to_vec(),
            Status(400),
        ),
        ("two Hosts", with("Host: other\r\n"), Status(400)),
        (
            "Transfer-Encoding",
            with("Transfer-Encoding: chunked\r\n"),
            Status(501),
        ),
        (
            "TE and CL",
            with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
            Status(400),
        ),
        (
            "CL and TE",
            with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
            Status(400),
        ),
        (
            "two lengths",
            with("Content-Length: 1\r\nContent-Length: 2\r\n"),
            Status(400),
        ),
        (
            "length not a number",
            with("Content-Length: 0x10\r\n"),
            Status(400),
        ),
        (
            "length past 64 bits",
            with("Content-Length: 99999999999999999999999\r\n"),
            Status(413),
        ),
        (
            "body over the limit",
            with("Content-Length: 2000000\r\n"),
            Status(413),
        ),
        (
            "1000 ranges",
            with(&format!("Range: bytes={}\r\n", vec!["0-0"; 1000].join(","))),
            Status(200),
        ),
        (
            "range at u64::MAX",
            with("Range: bytes=18446744073709551615-\r\n"),
            Status(416),
        ),
        (
            "range past 64 bits",
            with("Range: bytes=99999999999999999999-\r\n"),
            Status(416),
        ),
        (
            "suffix past 64 bits",
            with("Range: bytes=-99999999999999999999\r\n"),
            Status(206),
        ),
        ("inverted range", with("Range: bytes=9-1\r\n"), Status(200)),
        (
            "escape in target",
            b"GET /\x1b[2J HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            NcRefusal,
        ),
        (
            "escape in user agent",
            with("User-Agent: \x1b]0;pwned\x07\r\n"),
            Status(400),
        ),
        (
            "escape after the version",
            b"GET /ok.txt HTTP/1.1\x1b]0;pwned\x07\r\nHost: h\r\n\r\n".to_vec(),
            Status(400),
        ),
        (
            "high bytes in target",
            b"GET /\xff\xfe HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            Status(400),
        ),
    ];
    cases.extend(raw.into_iter().map(|(n, r, w)| (n.to_owned(), r, w)));
    cases
}

fn hostile_tree() -> (Tree, UnixListener) {
    let mut tree = Tree::new();
    tree.add("ok.txt", 5 * KIB);
    tree.add("sub/inner.txt", 100);
    tree.add(".hidden", 100);
    let root = tree.root().to_owned();
    let outside = tree.outside().to_owned();
    symlink(outside.join("secret.txt"), root.join("abs_secret")).unwrap();
    symlink("../secret.txt", root.join("rel_secret")).unwrap();
    symlink("..", root.join("up")).unwrap();
    symlink("/", root.join("to_root")).unwrap();
    symlink("/proc/self/root", root.join("proc_root")).unwrap();
    symlink("/etc/passwd", root.join("passwd")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    let fifo =
        std::ffi::CString::new(root.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let socket = UnixListener::bind(root.join("socket")).unwrap();
    (tree, socket)
}

/// Sends `raw` on a fresh connection (from a thread: the server may answer before it has read
/// everything) and reads the first reply: an HTTP status line and head, or an nc line.
fn exchange(addr: std::net::SocketAddr, raw: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let stream = util::connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&raw);
    });
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        head.extend_from_slice(&line);
        if !head.starts_with(b"HTTP/") || line == b"\r\n" {
            break;
        }
    }
    // The body, if any, by its length.
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let _ = sender.join();
    (head, body)
}

#[test]
fn hostile_requests_get_their_status_and_nothing_from_outside() {
    let (tree, _socket) = hostile_tree();
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let ok = std::fs::read(tree.path("ok.txt")).unwrap();
    each_backend(|backend| {
        let log = tree.outside().join(format!("access-{backend}.log"));
        let mut cfg = util::config(backend, tree.root());
        cfg.http.access_log = Some(ringport_servers::http::log::Target::File(log.clone()));
        cfg.http.header_timeout = Duration::from_secs(5);
        let server = Server::start_with(&cfg);
        for (name, raw, want) in &cases {
            let (head, body) = exchange(server.addr, raw.clone());
            let shown = head.escape_ascii().to_string();
            match want {
                Want::Status(code) => {
                    let line = format!("HTTP/1.1 {code} ");
                    assert!(
                        head.starts_with(line.as_bytes()),
                        "{name}: want {code}, got {shown}"
                    );
                }
                Want::NcRefusal => {
                    assert!(
                        head.starts_with(b"error: no such file: "),
                        "{name}: got {shown}"
                    );
                }
            }
            for bytes in [&head, &body] {
                let text = String::from_utf8_lossy(bytes);
                assert!(
                    !text.contains(tree.secret()),
                    "{name}: the secret came back"
                );
                assert!(!text.contains("root:"), "{name}: /etc/passwd came back");
            }
            if head.starts_with(b"HTTP/1.1 200 ") || head.starts_with(b"HTTP/1.1 206 ") {
                assert!(
                    ok.windows(body.len()).any(|w| w == body),
                    "{name}: not ok.txt's bytes"
                );
            }
            // The server goes on serving.
            let mut c = util::http::Http::connect(server.addr);
            assert_eq!(c.get("/ok.txt", &[]).body, ok, "after {name}");
        }
        server.stop().unwrap();
        let log = std::fs::read(&log).unwrap();
        assert!(
            !log.contains(&0x1b) && !log.contains(&0x07),
            "raw escapes in the log"
        );
        assert!(
            String::from_utf8_lossy(&log).contains("\\x1B"),
            "escapes logged escaped"
        );
    });
}
