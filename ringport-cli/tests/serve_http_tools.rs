//! `ringport serve` over HTTP with the real clients (Debian packages, installed by `.ci/run`):
//! curl and wget download, revalidate, resume and decode; headless Chromium opens a `--list`
//! folder page, and every link on it gives that file's bytes. A missing tool fails the test.
// Unix only: the real curl, wget, gzip and Chromium of the Debian host.
#![cfg(unix)]

mod util;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use util::files::{TempDir, Tree, GIB, KIB, MIB};
use util::{each_backend, serve, wait_child, ChildServer};

/// Fails (never skips) when `tool` cannot run: CI installs it.
fn require(tool: &str, package: &str) {
    let out = Command::new(tool).arg("--version").output();
    assert!(
        out.as_ref().is_ok_and(|o| o.status.success()),
        "`{tool}` cannot run ({out:?}): install it (apt-get install {package})"
    );
}

/// Runs a tool with a hang guard; its output.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {:?}: {e}", cmd.get_program()));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let status = wait_child(&mut child, limit);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn url(server: &ChildServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

fn curl(args: &[&str]) -> Output {
    run(
        Command::new("curl")
            .args(["-sS", "--max-time", "60"])
            .args(args),
        Duration::from_secs(90),
    )
}

/// The status code curl saw for `args` (body discarded).
fn curl_status(args: &[&str]) -> u16 {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    let out = curl(&all);
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

fn hash_file(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).unwrap())
        .unwrap();
    hasher.finalize()
}

/// Downloads (by hash), HEAD, 304 on revalidation, 404/405/416, a side file decoded by
/// `curl --compressed`, and `curl -C -` resuming a partial copy to the identical file.
#[test]
fn curl_downloads_revalidates_resumes_and_decodes() {
    require("curl", "curl");
    let mut tree = Tree::new();
    let files = [
        tree.add("small.txt", 100),
        tree.add("mid.bin", 300 * KIB),
        tree.add("big.bin", 20 * MIB),
    ];
    let text = "The quick brown fox. ".repeat(2000);
    std::fs::write(tree.path("page.html"), &text).unwrap();
    // The side file, made by the real gzip (an Essential Debian package).
    let gz = run(
        Command::new("gzip")
            .args(["-k", "-9"])
            .arg(tree.path("page.html")),
        Duration::from_secs(30),
    );
    assert!(gz.status.success() && tree.path("page.html.gz").exists());
    let out_dir = TempDir::new("curl");
    each_backend(|backend| {
        let server = serve(tree.root(), backend, &[]);
        for f in &files {
            let out = curl(&[&url(&server, &format!("/{}", f.name))]);
            assert!(
                out.status.success(),
                "{}: {}",
                f.name,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(blake3::hash(&out.stdout), f.hash, "{}", f.name);
            let head = curl(&["-I", &url(&server, &format!("/{}", f.name))]);
            let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200 ok"), "{head}");
            assert!(
                head.contains(&format!("content-length: {}\r\n", f.size)),
                "{head}"
            );
        }
        // Revalidation: the ETag, then If-Modified-Since from a local file's date.
        let head = curl(&["-I", &url(&server, "/mid.bin")]);
        let head = String::from_utf8_lossy(&head.stdout).into_owned();
        let etag = head
            .lines()
            .find_map(|l| l.strip_prefix("ETag: "))
            .expect("an ETag")
            .trim()
            .to_owned();
        let inm = format!("If-None-Match: {etag}");
        assert_eq!(curl_status(&["-H", &inm, &url(&server, "/mid.bin")]), 304);
        let stamp = out_dir.path().join("stamp");
        std::fs::write(&stamp, b"").unwrap();
        let z = stamp.to_str().unwrap();
        assert_eq!(curl_status(&["-z", z, &url(&server, "/mid.bin")]), 304);
        // Errors.
        assert_eq!(curl_status(&[&url(&server, "/missing")]), 404);
        assert_eq!(
            curl_status(&["-X", "POST", "-d", "x=1", &url(&server, "/small.txt")]),
            405
        );
        assert_eq!(
            curl_status(&["-r", "999999-", &url(&server, "/small.txt")]),
            416
        );
        // A side file, decoded by curl, is the original.
        let out = curl(&["--compressed", "-D", "-", &url(&server, "/page.html")]);
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(raw.contains("Content-Encoding: gzip\r\n"), "{raw}");
        assert!(raw.ends_with(&text), "decoded body differs");
        // Resume: a partial copy completed with -C -.
        for f in &files[1..] {
            let copy = out_dir.path().join(format!("{}-{backend}", f.name));
            let whole = std::fs::read(tree.path(&f.name)).unwrap();
            std::fs::write(&copy, &whole[..whole.len() / 3]).unwrap();
            let c = copy.to_str().unwrap();
            let out = curl(&["-C", "-", "-o", c, &url(&server, &format!("/{}", f.name))]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(hash_file(&copy), f.hash, "{} resumed by curl", f.name);
        }
        drop(server);
    });
}

/// wget downloads, resumes a partial copy with `-c` to the identical file, and reports 404.
#[test]
fn wget_downloads_and_resumes() {
    require("wget", "wget");
    let mut tree = Tree::new();
    let f = tree.add("file.bin", 5 * MIB + 77);
    let out_dir = TempDir::new("wget");
    each_backend(|backend| {
        let server = serve(tree.root(), backend, &[]);
        let wget = |args: &[&str]| {
            run(
                Command::new("wget")
                    .args(["-q", "--tries=1", "--timeout=60"])
                    .args(args),
                Duration::from_secs(90),
            )
        };
        let whole = out_dir.path().join(format!("whole-{backend}"));
        let out = wget(&["-O", whole.to_str().unwrap(), &url(&server, "/file.bin")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hash_file(&whole), f.hash);
        // wget -c continues a file of the same name in its folder.
        let dir = out_dir.path().join(format!("resume-{backend}"));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = std::fs::read(tree.path("file.bin")).unwrap();
        std::fs::write(dir.join("file.bin"), &bytes[..2 * MIB as usize + 5]).unwrap();
        let out = wget(&[
            "-c",
            "-P",
            dir.to_str().unwrap(),
            &url(&server, "/file.bin"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            hash_file(&dir.join("file.bin")),
            f.hash,
            "resumed by wget -c"
        );
        let missing = out_dir.path().join("missing");
        let out = wget(&["-O", missing.to_str().unwrap(), &url(&server, "/missing")]);
        assert_eq!(
            out.status.code(),
            Some(8),
            "wget's exit code for a server error"
        );
        drop(server);
    });
}

/// A sparse file over 4 GiB through curl: its hash is the file's.
#[test]
fn curl_downloads_a_sparse_file_over_4_gib() {
    require("curl", "curl");
    let tree = Tree::new();
    let size = 4 * GIB + 3 * MIB + 11;
    let path = tree.path("sparse.bin");
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.set_len(size).unwrap();
    for offset in [0, 2 * GIB - 3, 4 * GIB - 5, size - 64] {
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(format!("<marker {offset:>20}>").as_bytes())
            .unwrap();
    }
    drop(file);
    let want = hash_file(&path);
    each_backend(|backend| {
        let server = serve(tree.root(), backend, &[]);
        let mut child = Command::new("curl")
            .args(["-sS", "--max-time", "300", &url(&server, "/sparse.bin")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("running curl");
        let mut hasher = blake3::Hasher::new();
        let mut len = 0u64;
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        assert!(wait_child(&mut child, Duration::from_secs(300)).success());
        assert_eq!(len, size);
        assert_eq!(hasher.finalize(), want);
        drop(server);
    });
}

/// Headless Chromium opens a `--list` folder: every entry is shown, odd names included, and
/// every link, followed, gives that file's bytes.
#[test]
fn chromium_shows_a_listing_whose_links_work() {
    require("chromium", "chromium");
    require("curl", "curl");
    let tree = Tree::new();
    let names = [
        "plain.txt",
        "with space.txt",
        "hash#tag.txt",
        "question?.txt",
        "percent%20.txt",
        "quote\"d.txt",
        "apostrophe's.txt",
        "<script>alert(1)<.txt",
        "amp&amp;.txt",
        "caf\u{e9} \u{65e5}\u{672c}.txt",
        "javascript:alert(1)",
    ];
    let folder = tree.root().join("list");
    std::fs::create_dir_all(folder.join("sub folder")).unwrap();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(folder.join(name), format!("content {i} of {name}\n")).unwrap();
    }
    each_backend(|backend| {
        let server = serve(tree.root(), backend, &["--list"]);
        let profile = TempDir::new("chromium");
        let page = url(&server, "/list/");
        let out = run(
            Command::new("chromium").args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", profile.path().display()),
                "--dump-dom",
                &page,
            ]),
            Duration::from_secs(120),
        );
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            dom.contains("Index of /list/"),
            "chromium showed: {dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!dom.contains("<script>"), "a name became markup: {dom}");
        let links = anchors(&dom);
        for name in names.iter().copied().chain(["sub folder/", "../"]) {
            let (href, _) = links
                .iter()
                .find(|(_, text)| text == name)
                .unwrap_or_else(|| panic!("{name:?} is not listed: {links:?}"));
            if name.ends_with('/') {
                continue;
            }
            let target = format!("{page}{}", href.trim_start_matches("./"));
            let got = curl(&["--path-as-is", &target]);
            assert!(
                got.status.success(),
                "{target}: {}",
                String::from_utf8_lossy(&got.stderr)
            );
            assert_eq!(
                got.stdout,
                std::fs::read(folder.join(name)).unwrap(),
                "{name} via {href}"
            );
        }
        drop(server);
    });
}

/// The `<a href="…">text</a>` pairs of a serialized DOM, entities decoded.
fn anchors(dom: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&")
    };
    dom.split("<a href=\"")
        .skip(1)
        .filter_map(|rest| {
            let (href, rest) = rest.split_once('"')?;
            let (_, rest) = rest.split_once('>')?;
            let (text, _) = rest.split_once("</a>")?;
            Some((decode(href), decode(text)))
        })
        .collect()
}
