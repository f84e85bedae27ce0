//! Served folders with files of known content.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh folder under the system's temporary folder, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh folder named after `tag`, this process and a counter.
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ringport-files-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a temporary folder");
        TempDir { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a download of a file must give.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Its name, relative to the served folder.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The BLAKE3 hash of its content.
    pub hash: blake3::Hash,
}

/// A served folder `<tmp>/served` with files of known content, and beside it (outside the
/// served folder) `<tmp>/secret.txt` holding [`Tree::secret`].
#[derive(Debug)]
pub struct Tree {
    tmp: TempDir,
    root: PathBuf,
    secret: String,
    files: HashMap<String, Expected>,
}

impl Tree {
    /// An empty served folder, and the secret beside it.
    pub fn new() -> Self {
        let tmp = TempDir::new("tree");
        let root = tmp.path().join("served");
        std::fs::create_dir(&root).unwrap();
        let secret = format!(
            "SECRET-{}",
            blake3::hash(tmp.path().as_os_str().as_encoded_bytes()).to_hex()
        );
        std::fs::write(tmp.path().join("secret.txt"), format!("{secret}\n")).unwrap();
        Tree {
            tmp,
            root,
            secret,
            files: HashMap::new(),
        }
    }

    /// The served folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding the served folder (and the secret).
    pub fn outside(&self) -> &Path {
        self.tmp.path()
    }

    /// A marker found only in the file outside the served folder.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Writes `name` (relative to the served folder) with `size` bytes of its own content.
    pub fn add(&mut self, name: &str, size: u64) -> Expected {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let mut file = io::BufWriter::with_capacity(1 << 20, File::create(&path).unwrap());
        let mut stream = content_stream(name);
        let mut hasher = blake3::Hasher::new();
        let mut chunk = vec![0; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            stream.fill(&mut chunk[..n]);
            hasher.update(&chunk[..n]);
            file.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        file.flush().unwrap();
        let expected = Expected {
            name: name.to_owned(),
            size,
            hash: hasher.finalize(),
        };
        self.files.insert(name.to_owned(), expected.clone());
        expected
    }

    /// What `name`, written by [`Tree::add`], must give.
    pub fn expected(&self, name: &str) -> Expected {
        self.files[name].clone()
    }

    /// The path of `name` inside the served folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

/// The content stream of the file written as `name`: deterministic, incompressible, seekable.
pub fn content_stream(name: &str) -> blake3::OutputReader {
    blake3::Hasher::new_derive_key("ringport files test content")
        .update(name.as_bytes())
        .finalize_xof()
}

/// `len` bytes of `name`'s content from `offset`.
pub fn content_at(name: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut stream = content_stream(name);
    stream.set_position(offset);
    let mut out = vec![0; len];
    stream.fill(&mut out);
    out
}
