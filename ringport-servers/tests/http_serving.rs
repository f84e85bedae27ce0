//! HTTP on the file server's port, on every backend: files byte for byte (small, large, empty),
//! HEAD, keep-alive and HTTP/1.0, conditional requests, ranges, folders (redirect, index,
//! listing), hidden names, precompressed side files, methods and bodies, and the small-file
//! cache never serving a changed file.

mod util;

use std::time::Duration;

use util::files::{content_at, Tree, KIB, MIB};
use util::http::{request, Http};
use util::{each_backend, Server};

fn sha(bytes: &[u8]) -> blake3::Hash {
    blake3::hash(bytes)
}

/// Whole files come back with their length, type and validators; HEAD says the same without
/// a body; one keep-alive connection carries them all.
#[test]
fn files_whole_and_head() {
    let mut tree = Tree::new();
    let files = [
        tree.add("empty.txt", 0),
        tree.add("one.html", 1),
        tree.add("page.bin", 4 * KIB),
        tree.add("sixty.bin", 64 * KIB + 1),
        tree.add("big.bin", 8 * MIB),
        tree.add("dir/inner file.css", 3000),
    ];
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        for _ in 0..2 {
            for f in &files {
                let path = format!("/{}", f.name.replace(' ', "%20"));
                let r = c.get(&path, &[]);
                assert_eq!(r.status, 200, "{path}");
                assert_eq!(r.body.len() as u64, f.size, "{path}");
                assert_eq!(sha(&r.body), f.hash, "{path}");
                assert_eq!(r.header("accept-ranges"), Some("bytes"));
                assert!(r.header("etag").unwrap().starts_with('"'));
                assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
                assert!(r.header("date").is_some());
                let h = c.head(&path, &[]);
                assert_eq!(h.status, 200);
                assert_eq!(h.header("content-length"), Some(&*f.size.to_string()));
                assert_eq!(h.header("etag"), r.header("etag"));
            }
        }
        let r = c.get("/one.html", &[]);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let r = c.get("/dir/inner%20file.css", &[]);
        assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
        assert_eq!(
            c.get("/page.bin", &[]).header("content-type"),
            Some("application/octet-stream")
        );
        server.stop().unwrap();
    });
}

/// HTTP/1.0 closes after the response unless it asks to keep alive; `Connection: close`
/// closes an HTTP/1.1 connection.
#[test]
fn connection_persistence() {
    let mut tree = Tree::new();
    let f = tree.add("f.txt", 100);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        c.send(b"GET /f.txt HTTP/1.0\r\n\r\n");
        let r = c.response(false);
        assert_eq!((r.status, sha(&r.body)), (200, f.hash));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.until_closed().is_empty());

        let mut c = Http::connect(server.addr);
        for _ in 0..3 {
            c.send(b"GET /f.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            let r = c.response(false);
            assert_eq!(r.header("connection"), Some("keep-alive"));
            assert_eq!(sha(&r.body), f.hash);
        }
        let r = c.get("/f.txt", &["Connection: close"]);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.until_closed().is_empty());
        server.stop().unwrap();
    });
}

/// 304 for If-None-Match (lists, `*`, weak) and If-Modified-Since; 412 for If-Match and
/// If-Unmodified-Since; If-Range decides whether a range is honoured.
#[test]
fn conditional_requests() {
    let mut tree = Tree::new();
    tree.add("f.bin", 1000);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        let r = c.get("/f.bin", &[]);
        let etag = r.header("etag").unwrap().to_owned();
        let lm = r.header("last-modified").unwrap().to_owned();
        let weak = format!("W/{etag}");
        for inm in [
            etag.clone(),
            weak.clone(),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let r = c.get("/f.bin", &[&format!("If-None-Match: {inm}")]);
            assert_eq!(r.status, 304, "{inm}");
            assert_eq!(r.header("etag"), Some(&*etag));
            assert!(r.header("vary").is_some());
        }
        assert_eq!(c.get("/f.bin", &["If-None-Match: \"other\""]).status, 200);
        assert_eq!(
            c.get("/f.bin", &[&format!("If-Modified-Since: {lm}")])
                .status,
            304
        );
        assert_eq!(
            c.get(
                "/f.bin",
                &["If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"]
            )
            .status,
            200
        );
        assert_eq!(c.get("/f.bin", &[&format!("If-Match: {etag}")]).status, 200);
        assert_eq!(c.get("/f.bin", &["If-Match: \"nope\""]).status, 412);
        assert_eq!(c.get("/f.bin", &[&format!("If-Match: {weak}")]).status, 412);
        assert_eq!(
            c.get(
                "/f.bin",
                &["If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT"]
            )
            .status,
            412
        );
        let r = c.get(
            "/f.bin",
            &["Range: bytes=0-9", &format!("If-Range: {etag}")],
        );
        assert_eq!(r.status, 206);
        let r = c.get("/f.bin", &["Range: bytes=0-9", "If-Range: \"old\""]);
        assert_eq!((r.status, r.body.len()), (200, 1000));
        let r = c.get("/f.bin", &["Range: bytes=0-9", &format!("If-Range: {lm}")]);
        assert_eq!(r.status, 206);
        server.stop().unwrap();
    });
}

/// One range gives 206 with the right bytes and Content-Range; a suffix is the last bytes;
/// several ranges give the whole file; past the end is 416 with `bytes */size`.
#[test]
fn ranges() {
    let mut tree = Tree::new();
    tree.add("f.bin", 100 * KIB);
    tree.add("small.txt", 1000);
    tree.add("empty", 0);
    let size = 100 * KIB;
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        for (name, total) in [("f.bin", size), ("small.txt", 1000)] {
            for (spec, from, to) in [
                ("0-0", 0, 0),
                ("10-99", 10, 99),
                ("500-", 500, total - 1),
                ("-300", total - 300, total - 1),
                ("0-99999999999", 0, total - 1),
            ] {
                // Twice: the second may come from the cache.
                for _ in 0..2 {
                    let r = c.get(&format!("/{name}"), &[&format!("Range: bytes={spec}")]);
                    assert_eq!(r.status, 206, "{name} {spec}");
                    assert_eq!(
                        r.header("content-range"),
                        Some(&*format!("bytes {from}-{to}/{total}"))
                    );
                    let want = content_at(name, from, (to - from + 1) as usize);
                    assert!(r.body == want, "{name} {spec}: wrong bytes");
                    assert!(r.header("vary").is_some());
                }
            }
            let r = c.get(&format!("/{name}"), &["Range: bytes=0-1,5-9"]);
            assert_eq!((r.status, r.body.len() as u64), (200, total));
            for spec in [
                format!("{total}-"),
                "18446744073709551615-".into(),
                "-0".into(),
            ] {
                let r = c.get(&format!("/{name}"), &[&format!("Range: bytes={spec}")]);
                assert_eq!(r.status, 416, "{spec}");
                assert_eq!(
                    r.header("content-range"),
                    Some(&*format!("bytes */{total}"))
                );
            }
        }
        assert_eq!(c.get("/empty", &["Range: bytes=0-"]).status, 416);
        let r = c.head("/f.bin", &["Range: bytes=1-2"]);
        assert_eq!((r.status, r.header("content-length")), (206, Some("2")));
        server.stop().unwrap();
    });
}

/// A folder without its slash is redirected on this host; with it, its index.html, or a
/// listing with `list`, or 404.
#[test]
fn folders() {
    let mut tree = Tree::new();
    let index = tree.add("site/index.html", 500);
    tree.add("plain/a.txt", 10);
    tree.add("evil.example/x/y.txt", 10);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        let r = c.get("/site", &[]);
        assert_eq!((r.status, r.header("location")), (301, Some("/site/")));
        let r = c.get("/site/", &[]);
        assert_eq!((r.status, sha(&r.body)), (200, index.hash));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(c.get("/plain/", &[]).status, 404);
        let r = c.get("/plain?x=1", &[]);
        assert_eq!(r.header("location"), Some("/plain/?x=1"));
        let r = c.get("//evil.example/x", &[]);
        assert_eq!(r.header("location"), Some("/evil.example/x/"));
        let r = c.get("http://other.host//evil.example/x", &[]);
        assert_eq!(r.header("location"), Some("/evil.example/x/"));
        assert_eq!(c.get("/site/index.html/", &[]).status, 404);
        server.stop().unwrap();

        let mut cfg = util::config(backend, tree.root());
        cfg.http.list = true;
        let server = Server::start_with(&cfg);
        let mut c = Http::connect(server.addr);
        let r = c.get("/plain/", &[]);
        assert_eq!(r.status, 200);
        assert!(
            r.text().contains("<a href=\"./a.txt\">a.txt</a>"),
            "{}",
            r.text()
        );
        let r = c.get("/", &[]);
        assert!(r.text().contains("href=\"./site/\""));
        // An index still wins over the listing.
        assert_eq!(sha(&c.get("/site/", &[]).body), index.hash);
        server.stop().unwrap();
    });
}

/// Dotfiles and dot-folders are 404 (and not listed) unless `hidden`.
#[test]
fn hidden_names() {
    let mut tree = Tree::new();
    let env = tree.add(".env", 20);
    tree.add(".git/config", 20);
    tree.add("shown.txt", 20);
    each_backend(|backend| {
        let mut cfg = util::config(backend, tree.root());
        cfg.http.list = true;
        let server = Server::start_with(&cfg);
        let mut c = Http::connect(server.addr);
        for path in ["/.env", "/.git/config", "/.git/", "/%2eenv"] {
            assert_eq!(c.get(path, &[]).status, 404, "{path}");
        }
        assert!(!c.get("/", &[]).text().contains(".env"));
        server.stop().unwrap();
        cfg.http.hidden = true;
        let server = Server::start_with(&cfg);
        let mut c = Http::connect(server.addr);
        assert_eq!(sha(&c.get("/.env", &[]).body), env.hash);
        assert!(c.get("/", &[]).text().contains("./.env"));
        server.stop().unwrap();
    });
}

/// A side file goes to clients that accept its coding (q-values honoured, `q=0` means no),
/// with Content-Encoding, the original's type, an ETag of its own and Vary.
#[test]
fn precompressed_side_files() {
    let mut tree = Tree::new();
    let orig = tree.add("app.js", 5000);
    let gz = tree.add("app.js.gz", 300);
    let br = tree.add("app.js.br", 200);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        let plain = c.get("/app.js", &[]);
        assert_eq!(sha(&plain.body), orig.hash);
        assert_eq!(plain.header("content-encoding"), None);
        assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
        for (ae, want) in [
            ("gzip, deflate, br, zstd", Some((&br, "br"))),
            ("gzip", Some((&gz, "gzip"))),
            ("br;q=0.5, gzip", Some((&gz, "gzip"))),
            ("br;q=0, gzip;q=0", None),
            ("zstd", None),
            ("gzip;q=0.5, identity", None),
        ] {
            for _ in 0..2 {
                let r = c.get("/app.js", &[&format!("Accept-Encoding: {ae}")]);
                assert_eq!(r.status, 200);
                assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{ae}");
                assert_eq!(
                    r.header("content-type"),
                    Some("text/javascript; charset=utf-8")
                );
                match want {
                    Some((f, coding)) => {
                        assert_eq!(sha(&r.body), f.hash, "{ae}");
                        assert_eq!(r.header("content-encoding"), Some(coding), "{ae}");
                        assert_ne!(r.header("etag"), plain.header("etag"));
                    }
                    None => {
                        assert_eq!(sha(&r.body), orig.hash, "{ae}");
                        assert_eq!(r.header("etag"), plain.header("etag"));
                    }
                }
            }
        }
        let r = c.get("/app.js", &["Accept-Encoding: gzip", "Range: bytes=0-9"]);
        assert_eq!(
            (r.status, r.header("content-encoding")),
            (206, Some("gzip"))
        );
        assert_eq!(r.body, content_at("app.js.gz", 0, 10));
        let etag = c
            .get("/app.js", &["Accept-Encoding: gzip"])
            .header("etag")
            .unwrap()
            .to_owned();
        let r = c.get(
            "/app.js",
            &["Accept-Encoding: gzip", &format!("If-None-Match: {etag}")],
        );
        assert_eq!((r.status, r.header("vary")), (304, Some("Accept-Encoding")));
        server.stop().unwrap();
    });
}

/// Other methods get 405 with Allow; bodies are read and dropped (the next request on the
/// connection is served); a body over the limit gets 413 and a close.
#[test]
fn methods_and_bodies() {
    let mut tree = Tree::new();
    let f = tree.add("f.txt", 10);
    each_backend(|backend| {
        let mut cfg = util::config(backend, tree.root());
        cfg.http.max_body = 1000;
        let server = Server::start_with(&cfg);
        let mut c = Http::connect(server.addr);
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"] {
            c.send(&request(method, "/f.txt", &["Content-Length: 5"]));
            c.send(b"hello");
            let r = c.response(false);
            assert_eq!(r.status, 405, "{method}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"));
        }
        // A GET with a body, sent in pieces, then another request.
        c.send(&request("GET", "/f.txt", &["Content-Length: 900"]));
        c.send(&[b'x'; 400]);
        let r = c.response(false);
        assert_eq!(sha(&r.body), f.hash);
        c.send(&[b'x'; 500]);
        assert_eq!(sha(&c.get("/f.txt", &[]).body), f.hash);
        c.send(&request("POST", "/f.txt", &["Content-Length: 1001"]));
        assert_eq!(c.response(false).status, 413);
        c.until_closed();
        server.stop().unwrap();
    });
}

/// A file cached in memory is served fresh as soon as it changes on disk: rewritten in place
/// with the same size and modification time, or replaced by a rename.
#[test]
fn the_cache_never_serves_a_changed_file() {
    let tree = Tree::new();
    let path = tree.root().join("c.txt");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let write = |content: &[u8]| {
        let tmp = tree.root().join("c.tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    let rewrite = |content: &[u8]| {
        // In place, from offset 0, without truncating: the same file, the same size.
        let mut f = std::fs::File::options().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, content).unwrap();
        f.set_modified(old).unwrap();
    };
    each_backend(|backend| {
        let mut cfg = util::config(backend, tree.root());
        cfg.http.cache_settle = Duration::from_millis(200);
        let server = Server::start_with(&cfg);
        let mut c = Http::connect(server.addr);
        write(b"version one");
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..3 {
            assert_eq!(c.get("/c.txt", &[]).body, b"version one");
        }
        rewrite(b"version two");
        assert_eq!(c.get("/c.txt", &[]).body, b"version two");
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..3 {
            assert_eq!(c.get("/c.txt", &[]).body, b"version two");
        }
        write(b"version 333");
        assert_eq!(c.get("/c.txt", &[]).body, b"version 333");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.get("/c.txt", &[]).body, b"version 333");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(c.get("/c.txt", &[]).status, 404);
        server.stop().unwrap();
    });
}
