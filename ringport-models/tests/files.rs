//! Every model's file service passes the download tests of `ringport serve`: whole files of
//! every size byte for byte, requests in order one after another or pipelined, refusals in
//! the same words, nothing outside the served folder, and a thousand clients.
// Linux only, like ringport-models itself (it measures with Linux facilities).
#![cfg(target_os = "linux")]

mod util;

use std::os::unix::fs::symlink;
use std::sync::Arc;

use ringport_models::Model;
use util::files::{error_line, Client, Tree, KIB, MIB};

#[test]
fn files_of_every_size_come_back_whole() {
    let mut tree = Tree::new();
    let files = [
        tree.add("empty", 0),
        tree.add("one", 1),
        tree.add("page.bin", 4 * KIB),
        tree.add("mib.bin", MIB),
        tree.add("big.bin", 16 * MIB + 3),
    ];
    util::each_files(tree.root(), |_, addr| {
        for file in &files {
            let mut client = Client::connect(addr);
            client.get(file);
            // The file ended where it should: the next reply starts right after it.
            client.ask(b"missing");
            client.expect_error("no such file", b"missing");
        }
        let mut client = Client::connect(addr);
        for file in files.iter().rev() {
            client.get(file);
        }
    });
}

/// Ten names in one write, existing and missing mixed, with CRLF and blank lines among them
/// (every line gets a reply, a blank one "no file name"); then 300 names in one write (more than a server holds at once): every one answered, in
/// order.
#[test]
fn pipelined_names_answered_in_order() {
    let mut tree = Tree::new();
    let small = tree.add("small.txt", 777);
    let empty = tree.add("empty", 0);
    let big = tree.add("big.bin", MIB);
    let page = tree.add("page.bin", 4 * KIB);
    std::fs::create_dir(tree.path("dir")).unwrap();
    util::each_files(tree.root(), |_, addr| {
        let mut client = Client::connect(addr);
        client.send(b"small.txt\nnope1\r\nempty\n\n../x\r\nsmall.txt\n\r\ndir\nbig.bin\nempty\n");
        client.expect_file(&small);
        client.expect_error("no such file", b"nope1");
        client.expect_file(&empty);
        client.expect_error("no file name", b"");
        client.expect_error("outside the served folder", b"../x");
        client.expect_file(&small);
        client.expect_error("no file name", b"");
        client.expect_error("not a regular file", b"dir");
        client.expect_file(&big);
        client.expect_file(&empty);

        let mut request = Vec::new();
        for i in 0..300 {
            let name = if i % 2 == 0 {
                "page.bin".to_owned()
            } else {
                format!("missing-{i}")
            };
            request.extend_from_slice(name.as_bytes());
            request.push(b'\n');
        }
        client.send(&request);
        for i in 0..300 {
            if i % 2 == 0 {
                client.expect_file(&page);
            } else {
                client.expect_error("no such file", format!("missing-{i}").as_bytes());
            }
        }
    });
}

/// Names that lead outside the folder, special files, loops, NUL bytes and overlong names
/// get the same one-line refusals as from `ringport serve`, and the connection goes on.
#[test]
fn hostile_names_are_refused_alike() {
    let mut tree = Tree::new();
    let ok = tree.add("ok.txt", 5 * KIB);
    let root = tree.root().to_owned();
    std::fs::write(tree.outside().join("x"), tree.secret()).unwrap();
    symlink("/", root.join("to_root")).unwrap();
    symlink("../secret.txt", root.join("rel_secret")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    symlink("/proc/self/root", root.join("proc_root")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"../x".to_vec(), "outside the served folder"),
        (b"/etc/passwd".to_vec(), "outside the served folder"),
        (b"sub/../../x".to_vec(), "outside the served folder"),
        (b"to_root/etc/passwd".to_vec(), "outside the served folder"),
        (b"rel_secret".to_vec(), "outside the served folder"),
        (
            b"proc_root/etc/passwd".to_vec(),
            "outside the served folder",
        ),
        (b"loop_a".to_vec(), "too many symbolic links"),
        (b"sub".to_vec(), "not a regular file"),
        (b".".to_vec(), "not a regular file"),
        (b"a\0b".to_vec(), "no such file"),
        (b"\x1b[2J".to_vec(), "no such file"),
        (vec![b'a'; 300], "name too long"),
    ];
    util::each_files(tree.root(), |model, addr| {
        let mut client = Client::connect(addr);
        let mut seen = Vec::new();
        for (name, reason) in &cases {
            client.ask(name);
            let got = client.read_line();
            assert_eq!(
                got.escape_ascii().to_string(),
                error_line(reason, name).escape_ascii().to_string(),
                "{model}: reply to {:?}",
                name.escape_ascii().to_string()
            );
            seen.extend_from_slice(&got);
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(
            !text.contains(tree.secret()) && !text.contains("root:x:0:0"),
            "{model} leaked"
        );
        // A name far over the limit, then a valid one in the same write.
        let mut long = vec![b'y'; 64 * 1024];
        long.extend_from_slice(b"\nok.txt\n");
        client.send(&long);
        assert!(
            client.read_line().starts_with(b"error: name too long"),
            "{model}"
        );
        client.expect_file(&ok);
    });
}

/// A thousand clients connected at once, each downloading a 64 KiB file (verified by hash)
/// and leaving: every model serves every one (the pool, in turn as clients leave).
#[test]
fn thousand_clients() {
    let mut tree = Tree::new();
    let file = Arc::new(tree.add("64k.bin", 64 * KIB));
    util::each_files(tree.root(), |model, addr| {
        let mut clients: Vec<Client> = (0..1000).map(|_| Client::connect(addr)).collect();
        if model != Model::Pool {
            // All ask before any reads: every one is served while all are open.
            for client in &mut clients {
                client.ask(file.name.as_bytes());
            }
            for client in &mut clients {
                client.expect_file(&file);
            }
        }
        for mut client in clients {
            client.get(&file);
        }
    });
}

/// Two hundred clients at once, each on its own thread, each downloading two 1 MiB files.
#[test]
fn two_hundred_concurrent_downloads() {
    let mut tree = Tree::new();
    let files: Arc<Vec<_>> = Arc::new(
        (0..4)
            .map(|i| tree.add(&format!("f{i}.bin"), MIB + i * 1000))
            .collect(),
    );
    util::each_files(tree.root(), |model, addr| {
        let clients: Vec<_> = (0..200usize)
            .map(|i| {
                let files = files.clone();
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    client.get(&files[i % 4]);
                    client.get(&files[(i + 1) % 4]);
                })
            })
            .collect();
        let failed = clients
            .into_iter()
            .map(|c| c.join())
            .filter(Result::is_err)
            .count();
        assert_eq!(failed, 0, "{model}: {failed} of 200 clients failed");
    });
}
