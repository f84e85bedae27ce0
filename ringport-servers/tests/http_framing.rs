//! Request framing on every backend: pipelined requests answered in order, a request split at
//! every byte boundary answered the same, nc and HTTP clients on the same port, and slow or
//! idle HTTP clients closed at their timeouts while others are served.

mod util;

use std::io::Write;
use std::time::{Duration, Instant};

use util::files::{Tree, KIB};
use util::http::{request, Http};
use util::{each_backend, Server};

/// Ten requests in one write (different files, small and large, a HEAD, a 404 and a range
/// among them): ten responses, in order, each exactly right.
#[test]
fn pipelined_requests_in_order() {
    let mut tree = Tree::new();
    let files: Vec<_> = (0..8)
        .map(|i| tree.add(&format!("f{i}.bin"), (i as u64 + 1) * 37 * KIB + i as u64))
        .collect();
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut c = Http::connect(server.addr);
        let mut batch = Vec::new();
        for f in &files {
            batch.extend(request("GET", &format!("/{}", f.name), &[]));
        }
        batch.extend(request("HEAD", "/f3.bin", &[]));
        batch.extend(request("GET", "/missing", &[]));
        c.send(&batch);
        for f in &files {
            let r = c.response(false);
            assert_eq!(r.status, 200);
            assert_eq!(blake3::hash(&r.body), f.hash, "{}", f.name);
        }
        let head = c.response(true);
        assert_eq!(
            head.header("content-length"),
            Some(&*files[3].size.to_string())
        );
        assert_eq!(c.response(false).status, 404);
        // Many more than fit in the output limit: served as the client reads.
        let many: Vec<u8> = (0..200)
            .flat_map(|i| request("GET", &format!("/f{}.bin", i % 8), &[]))
            .collect();
        c.send(&many);
        for i in 0..200 {
            let r = c.response(false);
            assert_eq!(blake3::hash(&r.body), files[i % 8].hash);
        }
        server.stop().unwrap();
    });
}

/// Two pipelined requests, cut at every byte boundary into two writes: the same two
/// responses every time.
#[test]
fn split_at_every_byte_boundary() {
    let mut tree = Tree::new();
    let a = tree.add("a.txt", 100);
    let b = tree.add("b b.txt", 200);
    let raw = [
        request("GET", "/a.txt", &["User-Agent: split", "Range: bytes=1-10"]),
        request("GET", "/b%20b.txt", &["Accept: */*"]),
    ]
    .concat();
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        for cut in 0..=raw.len() {
            let mut c = Http::connect(server.addr);
            c.send(&raw[..cut]);
            // Let the first part arrive on its own.
            std::thread::sleep(Duration::from_millis(1));
            c.send(&raw[cut..]);
            let r = c.response(false);
            assert_eq!(r.status, 206, "cut at {cut}");
            assert_eq!(
                r.body,
                util::files::content_at("a.txt", 1, 10),
                "cut at {cut}"
            );
            let r = c.response(false);
            assert_eq!(blake3::hash(&r.body), b.hash, "cut at {cut}");
        }
        let _ = a;
        // And one byte per write.
        let mut c = Http::connect(server.addr);
        for byte in &raw {
            c.send(std::slice::from_ref(byte));
        }
        assert_eq!(c.response(false).status, 206);
        assert_eq!(blake3::hash(&c.response(false).body), b.hash);
        server.stop().unwrap();
    });
}

/// nc names and HTTP requests on the same port, at the same time; a name that merely
/// contains spaces is still a name.
#[test]
fn nc_and_http_on_one_port() {
    let mut tree = Tree::new();
    let f = tree.add("f.bin", 300 * KIB);
    let spaced = tree.add("GET a file", 1000);
    each_backend(|backend| {
        let server = Server::start(backend, tree.root());
        let mut nc = server.connect();
        let mut http = Http::connect(server.addr);
        for _ in 0..3 {
            nc.get(&f);
            assert_eq!(blake3::hash(&http.get("/f.bin", &[]).body), f.hash);
        }
        nc.get(&spaced);
        let mut nc2 = server.connect();
        nc2.get(&spaced);
        nc2.ask(b"GET / HTTX/1.1");
        nc2.expect_error("no such file", b"GET / HTTX/1.1");
        server.stop().unwrap();
    });
}

/// A client that sends its head one byte a second is answered 408 and closed at the header
/// timeout, while another client is served meanwhile; an idle keep-alive connection is closed
/// at its timeout.
#[test]
fn slow_and_idle_clients_are_closed() {
    let mut tree = Tree::new();
    let f = tree.add("f.txt", 1000);
    each_backend(|backend| {
        let mut cfg = util::config(backend, tree.root());
        cfg.http.header_timeout = Duration::from_millis(1500);
        cfg.http.keepalive_timeout = Duration::from_millis(1500);
        let server = Server::start_with(&cfg);
        let addr = server.addr;
        // One sends its request line at once and its headers slowly; the other sends all of it
        // slowly (so its protocol is not even known at the timeout).
        let slow = |fast_part: usize| {
            std::thread::spawn(move || {
                let mut s = util::connect(addr);
                let start = Instant::now();
                let mut got = Vec::new();
                let raw = b"GET /f.txt HTTP/1.1\r\nHost: slow\r\n\r\n";
                s.write_all(&raw[..fast_part]).unwrap();
                let mut buf = [0; 4096];
                for byte in &raw[fast_part..] {
                    if s.write_all(std::slice::from_ref(byte)).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                    // Stop at the server's answer (or close).
                    s.set_nonblocking(true).unwrap();
                    let read = std::io::Read::read(&mut s, &mut buf);
                    s.set_nonblocking(false).unwrap();
                    match read {
                        Ok(n) => {
                            got.extend_from_slice(&buf[..n]);
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => break,
                    }
                }
                let took = start.elapsed();
                got.extend(util::read_to_end(&s, true));
                (took, String::from_utf8_lossy(&got).into_owned())
            })
        };
        let slow = [slow(0), slow(21)];
        let mut fast = Http::connect(addr);
        for _ in 0..20 {
            assert_eq!(blake3::hash(&fast.get("/f.txt", &[]).body), f.hash);
            std::thread::sleep(Duration::from_millis(50));
        }
        for slow in slow {
            let (took, reply) = slow.join().unwrap();
            assert!(reply.starts_with("HTTP/1.1 408 "), "{reply:?}");
            assert!(took < Duration::from_secs(5), "closed after {took:?}");
        }
        // Idle after a response: closed at the keep-alive timeout.
        let mut idle = Http::connect(addr);
        assert_eq!(idle.get("/f.txt", &[]).status, 200);
        let start = Instant::now();
        assert!(idle.until_closed().is_empty());
        assert!(start.elapsed() < Duration::from_secs(5));
        server.stop().unwrap();
    });
}
