//! Tests for `open`: the pure name checks (every platform) and the open itself (Windows).

use super::{check_name, is_escape, is_under, refusal, Refusal};
use std::io;

/// Asserts that `check_name` refuses each name with `expected`.
fn assert_refused(names: &[&[u8]], expected: Refusal) {
    for name in names {
        assert_eq!(
            check_name(name),
            Err(expected),
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn good_names_split_into_components() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"a.txt", &["a.txt"]),
        (b"sub/b.txt", &["sub", "b.txt"]),
        (b"sub\\b.txt", &["sub", "b.txt"]),
        (b"sub//b.txt", &["sub", "b.txt"]),
        (b"sub\\/\\b.txt", &["sub", "b.txt"]),
        (b"./sub/./b.txt", &["sub", "b.txt"]),
        (b"sub/b.txt/", &["sub", "b.txt"]),
        (b"with space.txt", &["with space.txt"]),
        (" résumé.txt".as_bytes(), &[" résumé.txt"]),
        ("日本/語.md".as_bytes(), &["日本", "語.md"]),
        (b".hidden", &[".hidden"]),
        (b"a..b", &["a..b"]),
        (b"...x", &["...x"]),
        (b"$MFT.txt", &["$MFT.txt"]),
        (b"x\x7fy", &["x\x7fy"]),
    ];
    for (name, want) in cases {
        assert_eq!(
            check_name(name).as_deref(),
            Ok(*want),
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn names_near_device_names_are_allowed() {
    for name in [
        "CONSOLE",
        "con2",
        "nulls.txt",
        "auxiliary",
        "COM10",
        "LPT",
        "COM",
        "lpt1x",
        "xnul",
        "COM⁴",
        "CONIN",
        "a.con",
        "CLOCK",
        " CON",
    ] {
        assert!(check_name(name.as_bytes()).is_ok(), "{name:?}");
    }
}

#[test]
fn dot_alone_is_the_folder_itself() {
    assert_eq!(check_name(b"."), Ok(vec![]));
    assert_eq!(check_name(b"./"), Ok(vec![]));
    assert_eq!(check_name(b".\\."), Ok(vec![]));
}

#[test]
fn refuses_parent_components() {
    assert_refused(
        &[
            b"..",
            b"../x",
            b"a/../../x",
            b"a\\..\\..\\x",
            b"a/..",
            b"a/../b",
            b"..\\",
        ],
        Refusal::ParentDir,
    );
}

#[test]
fn refuses_absolute_and_drive_paths() {
    assert_refused(&[b"/x", b"\\x", b"/", b"\\"], Refusal::Absolute);
    assert_refused(
        &[b"C:x", b"C:\\x", b"c:/x", b"z:", b"C:", b"a:"],
        Refusal::Drive,
    );
}

#[test]
fn refuses_unc_and_device_namespace_paths() {
    assert_refused(
        &[
            b"\\\\server\\share",
            b"\\\\?\\C:\\x",
            b"\\\\.\\NUL",
            b"//?/C:/x",
            b"//server/share",
            b"\\??\\C:\\x",
            b"/??/C:/x",
        ],
        Refusal::Unc,
    );
}

#[test]
fn refuses_device_names() {
    let names: &[&[u8]] = &[
        b"con",
        b"CON",
        b"nul.txt",
        b"a/aux.c",
        b"COM1 ",
        b"lpt9.log",
        b"prn",
        b"Nul.tar.gz",
        b"com0",
        b"LPT0",
        b"con .txt",
        b"nul.",
        b"aux...",
        b"CONIN$",
        b"conout$.txt",
        b"clock$",
        b"sub\\PRN\\x.txt",
        "COM¹".as_bytes(),
        "lpt².txt".as_bytes(),
        "com³ ".as_bytes(),
    ];
    assert_refused(names, Refusal::Device);
}

#[test]
fn refuses_streams() {
    assert_refused(
        &[
            b"file.txt:stream",
            b"file.txt::$DATA",
            b"sub/b.txt:x",
            b"sub:x/b.txt",
            b"ab:",
            b"sub/a:",
        ],
        Refusal::Stream,
    );
}

#[test]
fn refuses_trailing_dots_and_spaces() {
    assert_refused(
        &[
            b"file.txt.",
            b"file.txt ",
            b"sub./b.txt",
            b"sub /b.txt",
            b"...",
            b"a. . ",
        ],
        Refusal::TrailingDotOrSpace,
    );
}

#[test]
fn refuses_characters_invalid_in_windows_names() {
    assert_refused(
        &[
            b"a<b", b"a>b", b"a\"b", b"a|b", b"a?b", b"a*b", b"*", b"\x01", b"a\tb", b"a\nb",
            b"a\x1fb",
        ],
        Refusal::BadChar,
    );
}

#[test]
fn refuses_nul_empty_and_non_utf8() {
    assert_refused(
        &[b"a\0b", b"\0", b"a.txt\0.jpg", b"\xff\0"],
        Refusal::NulByte,
    );
    assert_refused(&[b"\xff", b"a/\xc3(", b"\xed\xa0\x80"], Refusal::NotUtf8);
    assert_refused(&[b""], Refusal::Empty);
}

#[test]
fn refusals_are_recognisable_io_errors() {
    let err = io::Error::from(Refusal::Device);
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert!(is_escape(&err));
    assert_eq!(refusal(&err), Some(Refusal::Device));
    assert!(err.to_string().contains("a device name"), "{err}");

    let acl = io::Error::new(io::ErrorKind::PermissionDenied, "access denied");
    assert!(!is_escape(&acl));
    assert!(!is_escape(&io::Error::from(
        io::ErrorKind::PermissionDenied
    )));
    assert!(!is_escape(&io::Error::other(Refusal::Device)));
}

#[test]
fn is_under_needs_a_separator_boundary() {
    let w = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let dir = w(r"\Device\HarddiskVolume3\srv");
    assert!(is_under(&w(r"\Device\HarddiskVolume3\srv\a.txt"), &dir));
    assert!(is_under(&w(r"\Device\HarddiskVolume3\srv\sub\b"), &dir));
    assert!(!is_under(&w(r"\Device\HarddiskVolume3\srv"), &dir));
    assert!(!is_under(&w(r"\Device\HarddiskVolume3\srv2\a.txt"), &dir));
    assert!(!is_under(&w(r"\Device\HarddiskVolume3\secret.txt"), &dir));
    assert!(!is_under(&w(r"\Device\HarddiskVolume4\srv\a.txt"), &dir));
    let root = w(r"\Device\HarddiskVolume3\");
    assert!(is_under(&w(r"\Device\HarddiskVolume3\a.txt"), &root));
    assert!(!is_under(&root, &root));
}

#[cfg(windows)]
mod windows {
    //! The open itself, on a fresh temporary folder.

    use super::super::{open_beneath, open_dir, refusal, Refusal};
    use std::fs::{self, File};
    use std::io::{self, Write};
    use std::os::windows::fs::FileExt;
    use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle};
    use std::path::{Path, PathBuf};
    use std::ptr;
    use std::sync::atomic::{AtomicU32, Ordering};

    use windows_sys::Win32::Foundation::ERROR_IO_PENDING;
    use windows_sys::Win32::Storage::FileSystem::ReadFile;
    use windows_sys::Win32::System::IO::{
        CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
    };

    /// A uniquely named folder under the temporary directory, removed on drop.
    struct Folder(PathBuf);

    impl Folder {
        /// Creates `winopen-<pid>-<n>-<tag>` under `std::env::temp_dir()`.
        fn new(tag: &str) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("winopen-{}-{n}-{tag}", std::process::id()));
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        /// Writes `contents` to the file `rel` (creating its parents).
        fn file(&self, rel: &str, contents: &[u8]) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The served folder used by most tests.
    fn served() -> (Folder, OwnedHandle) {
        let f = Folder::new("served");
        f.file("a.txt", b"alpha");
        f.file("sub/b.txt", b"bravo");
        f.file("with some spaces.txt", b"spaces");
        f.file("résumé.txt", b"cv");
        f.file("sub/deeper/c.txt", b"charlie");
        fs::create_dir_all(f.0.join("sub/empty")).unwrap();
        let dir = open_dir(&f.0).unwrap();
        (f, dir)
    }

    /// Reads the whole (small) file through a completion port with one overlapped
    /// `ReadFile` at offset 0: proves the handle is asynchronous and port-capable.
    fn read_via_port(file: &File) -> Vec<u8> {
        const KEY: usize = 0x5eed;
        // SAFETY: `file` is an open handle; a null existing port creates a new port.
        let port = unsafe { CreateIoCompletionPort(file.as_raw_handle(), ptr::null_mut(), KEY, 1) };
        assert!(!port.is_null(), "{}", io::Error::last_os_error());
        // SAFETY: `port` is a new handle owned by nobody else.
        let port = unsafe { OwnedHandle::from_raw_handle(port) };
        let mut buf = vec![0u8; 4096];
        let mut ov = OVERLAPPED::default();
        // SAFETY: `buf` and `ov` outlive the operation, which completes (the wait below)
        // before either is dropped; a null byte count is required for overlapped reads.
        let ok = unsafe {
            ReadFile(
                file.as_raw_handle(),
                buf.as_mut_ptr(),
                buf.len() as u32,
                ptr::null_mut(),
                &mut ov,
            )
        };
        let err = io::Error::last_os_error();
        assert!(
            ok != 0 || err.raw_os_error() == Some(ERROR_IO_PENDING as i32),
            "{err}"
        );
        let (mut n, mut key, mut done) = (0u32, 0usize, ptr::null_mut());
        // SAFETY: all out-pointers are writable locals; `port` is open.
        let ok = unsafe {
            GetQueuedCompletionStatus(port.as_raw_handle(), &mut n, &mut key, &mut done, 5000)
        };
        assert!(ok != 0, "{}", io::Error::last_os_error());
        assert_eq!(key, KEY);
        assert_eq!(done, &raw mut ov);
        buf.truncate(n as usize);
        buf
    }

    /// Asserts that opening `name` is refused with `expected`.
    fn assert_refused(dir: &OwnedHandle, name: &[u8], expected: Refusal) {
        let err = open_beneath(dir.as_handle(), name).unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::PermissionDenied,
            "{name:?}: {err}"
        );
        assert_eq!(
            refusal(&err),
            Some(expected),
            "{:?}: {err}",
            String::from_utf8_lossy(name)
        );
    }

    #[test]
    fn good_names_open_and_read_the_right_bytes() {
        let (_f, dir) = served();
        let cases: &[(&[u8], &[u8])] = &[
            (b"a.txt", b"alpha"),
            (b"A.TXT", b"alpha"),
            (b"sub/b.txt", b"bravo"),
            (b"sub\\b.txt", b"bravo"),
            (b"sub//b.txt", b"bravo"),
            (b"./sub/./deeper\\c.txt", b"charlie"),
            (b"with some spaces.txt", b"spaces"),
            ("résumé.txt".as_bytes(), b"cv"),
        ];
        for (name, want) in cases {
            let file = open_beneath(dir.as_handle(), name)
                .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(name)));
            assert_eq!(
                read_via_port(&file),
                *want,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let (f, dir) = served();
        // A file really named like the targets, one level up, so a leak would succeed.
        let parent_name = format!("{}-secret.txt", f.0.file_name().unwrap().to_str().unwrap());
        let secret = f.0.parent().unwrap().join(&parent_name);
        fs::write(&secret, b"secret").unwrap();
        let up = format!("../{parent_name}");
        let abs = secret.to_str().unwrap().to_owned();
        let cases: &[(&[u8], Refusal)] = &[
            (b"..", Refusal::ParentDir),
            (up.as_bytes(), Refusal::ParentDir),
            (b"sub/../../x", Refusal::ParentDir),
            (b"sub\\..\\..\\x", Refusal::ParentDir),
            (b"sub/..", Refusal::ParentDir),
            (b"/x", Refusal::Absolute),
            (b"\\x", Refusal::Absolute),
            (abs.as_bytes(), Refusal::Drive),
            (b"C:x", Refusal::Drive),
            (b"c:/windows/win.ini", Refusal::Drive),
            (b"\\\\server\\share", Refusal::Unc),
            (b"\\\\?\\C:\\windows\\win.ini", Refusal::Unc),
            (b"\\\\.\\NUL", Refusal::Unc),
            (b"//?/C:/windows/win.ini", Refusal::Unc),
            (b"\\??\\C:\\windows\\win.ini", Refusal::Unc),
            (b"con", Refusal::Device),
            (b"nul.txt", Refusal::Device),
            (b"sub/aux.c", Refusal::Device),
            (b"COM1 ", Refusal::Device),
            (b"lpt9.log", Refusal::Device),
            (b"CONIN$", Refusal::Device),
            (b"a.txt:stream", Refusal::Stream),
            (b"a.txt::$DATA", Refusal::Stream),
            (b"a.txt.", Refusal::TrailingDotOrSpace),
            (b"a.txt ", Refusal::TrailingDotOrSpace),
            (b"a?.txt", Refusal::BadChar),
            (b"a*", Refusal::BadChar),
            (b"a\x01", Refusal::BadChar),
            (b"a.txt\0", Refusal::NulByte),
            (b"a\xff.txt", Refusal::NotUtf8),
            (b"", Refusal::Empty),
        ];
        for (name, expected) in cases {
            assert_refused(&dir, name, *expected);
        }
        fs::remove_file(secret).unwrap();
    }

    #[test]
    fn directories_open_as_directories() {
        let (_f, dir) = served();
        for name in [&b"sub"[..], b"sub/empty", b"sub\\deeper\\", b".", b"./"] {
            let folder = open_beneath(dir.as_handle(), name).unwrap();
            assert!(folder.metadata().unwrap().is_dir(), "{name:?}");
        }
    }

    #[test]
    fn missing_files_are_not_found() {
        let (_f, dir) = served();
        for name in [
            &b"missing.txt"[..],
            b"sub/missing.txt",
            b"missing/b.txt",
            b"sub/missing/x",
        ] {
            let err = open_beneath(dir.as_handle(), name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{name:?}: {err}");
        }
        let err = open_beneath(dir.as_handle(), b"a.txt/x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
    }

    #[test]
    fn opened_file_is_read_only_and_shares_read_and_delete() {
        let (f, dir) = served();
        let file = open_beneath(dir.as_handle(), b"a.txt").unwrap();
        let err = (&file).write(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        // Shared read: a second open succeeds.
        let again = open_beneath(dir.as_handle(), b"a.txt").unwrap();
        assert_eq!(read_via_port(&again), b"alpha");
        // Write not shared: a writer is refused with ERROR_SHARING_VIOLATION (32).
        let err = fs::OpenOptions::new()
            .write(true)
            .open(f.0.join("a.txt"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(32), "{err}");
        // The handle is asynchronous: std's positional read works (it waits for
        // completion), a plain `Read::read` without an offset does not.
        let mut buf = [0u8; 16];
        assert_eq!(file.seek_read(&mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"lpha");
        // Delete shared: the file may be renamed while it is open.
        fs::rename(f.0.join("a.txt"), f.0.join("renamed.txt")).unwrap();
        assert_eq!(read_via_port(&file), b"alpha");
    }

    #[test]
    fn open_dir_refuses_a_file() {
        let f = Folder::new("notdir");
        let path = f.file("x.txt", b"x");
        let err = open_dir(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
        let err = open_dir(&f.0.join("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    /// Creates a junction (mount point) at `link` pointing at the absolute `target`, with
    /// `FSCTL_SET_REPARSE_POINT`: no privilege needed on Windows, unlike symbolic links.
    fn junction(link: &Path, target: &Path) -> io::Result<()> {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::{
            FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
        };
        use windows_sys::Win32::System::IO::DeviceIoControl;
        const FSCTL_SET_REPARSE_POINT: u32 = 0x0009_00A4;
        const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;

        fs::create_dir(link)?;
        let handle = fs::OpenOptions::new()
            .write(true)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
            .open(link)?;
        let target = target.to_str().unwrap().trim_start_matches("\\\\?\\");
        let subst: Vec<u16> = format!("\\??\\{target}").encode_utf16().collect();
        let print: Vec<u16> = target.encode_utf16().collect();
        let (sl, pl) = (subst.len() as u16 * 2, print.len() as u16 * 2);
        // MountPointReparseBuffer: four u16 offsets/lengths, then both names NUL-terminated.
        let data_len = 8 + sl + 2 + pl + 2;
        let mut buf = Vec::new();
        buf.extend_from_slice(&IO_REPARSE_TAG_MOUNT_POINT.to_le_bytes());
        buf.extend_from_slice(&data_len.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        for v in [0, sl, sl + 2, pl] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        for w in subst.iter().chain(&[0]).chain(&print).chain(&[0]) {
            buf.extend_from_slice(&w.to_le_bytes());
        }
        let mut returned = 0u32;
        // SAFETY: `handle` is open; `buf` is a readable REPARSE_DATA_BUFFER of the given
        // length; no output buffer; `returned` is a writable local; synchronous call.
        let ok = unsafe {
            DeviceIoControl(
                handle.as_raw_handle(),
                FSCTL_SET_REPARSE_POINT,
                buf.as_ptr().cast(),
                buf.len() as u32,
                ptr::null_mut(),
                0,
                &mut returned,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            let err = io::Error::last_os_error();
            drop(handle);
            let _ = fs::remove_dir(link);
            return Err(err);
        }
        Ok(())
    }

    #[test]
    fn reparse_points_are_refused() {
        let (f, dir) = served();
        let outside = Folder::new("outside");
        let secret = outside.file("secret.txt", b"secret");
        let mut tried = 0;

        /// Makes a link at the first path pointing at the second.
        type MakeLink = fn(&Path, &Path) -> io::Result<()>;
        let links: [(&str, MakeLink, &Path, &[&[u8]]); 3] = [
            (
                "file symlink",
                |l, t| std::os::windows::fs::symlink_file(t, l),
                &secret,
                &[b"flink.txt"],
            ),
            (
                "directory symlink",
                |l, t| std::os::windows::fs::symlink_dir(t, l),
                &outside.0,
                &[b"dlink/secret.txt", b"dlink"],
            ),
            (
                "junction",
                junction,
                &outside.0,
                &[b"jlink/secret.txt", b"jlink"],
            ),
        ];
        for (what, make, target, names) in links {
            let link = f.0.join(
                std::str::from_utf8(names[0])
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap(),
            );
            match make(&link, target).and_then(|()| fs::symlink_metadata(&link)) {
                Ok(_) => {
                    tried += 1;
                    for name in names {
                        let res = open_beneath(dir.as_handle(), name);
                        let err = res.expect_err(&format!("{what}: {name:?} opened"));
                        assert_eq!(
                            refusal(&err),
                            Some(Refusal::ReparsePoint),
                            "{what}: {:?}: {err}",
                            String::from_utf8_lossy(name)
                        );
                    }
                }
                // Wine 8: CreateSymbolicLinkW reports success and creates nothing, and
                // FSCTL_SET_REPARSE_POINT fails.
                Err(e) => eprintln!(
                    "reparse_points_are_refused: could not create a {what} here ({e}); not checked"
                ),
            }
        }
        eprintln!("reparse_points_are_refused: {tried} of 3 kinds of reparse point checked");
    }
}

/// Links made from the Unix side, under Wine: run with `WINOPEN_UNIX_LINKS` naming (as a
/// Windows path, e.g. `Z:\\tmp\\links`) a folder prepared by `scripts/unix-links.sh`:
/// `ok.txt` ("ok"), `inside.txt -> ok.txt`, `out.txt -> ../secret.txt`,
/// `abs.txt -> /<abs>/secret.txt`, `outdir -> ..` (so `outdir/secret.txt` leaves).
#[cfg(windows)]
#[test]
fn unix_symlinks_under_wine() {
    use super::{open_beneath, open_dir};
    use std::os::windows::io::AsHandle;
    let Some(folder) = std::env::var_os("WINOPEN_UNIX_LINKS") else {
        eprintln!("unix_symlinks_under_wine: WINOPEN_UNIX_LINKS not set; not checked");
        return;
    };
    let dir = open_dir(std::path::Path::new(&folder)).unwrap();
    let open = |name: &[u8]| open_beneath(dir.as_handle(), name);
    assert!(open(b"ok.txt").is_ok());
    // Wine follows a Unix link that stays inside, and shows no reparse point: served.
    assert!(open(b"inside.txt").is_ok());
    for name in [&b"out.txt"[..], b"abs.txt", b"outdir/secret.txt"] {
        let err = open(name).expect_err("a Unix symlink leaving the folder was served");
        assert!(is_escape(&err), "{name:?}: {err}");
        assert_eq!(refusal(&err), Some(Refusal::Outside), "{name:?}: {err}");
    }
}
