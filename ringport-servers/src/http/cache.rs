//! Small files kept in memory, per worker, never served stale.
//!
//! Serving a small file costs more in opening and inspecting it than in sending it: an
//! `openat2` through the ring (a round trip), an `fstat`, a `sendfile`, a `close`. A hit here
//! costs one `statx` of the path instead, and the head and body leave in one send.
//!
//! **Never stale.** Every hit first `stat`s the path again (relative to the served folder)
//! and compares device, inode, size, modification and change times (nanoseconds) with what was
//! cached. A file rewritten in place changes its change time (`ctime`, which no user can set);
//! a file replaced by another (rename, delete and create) has another inode, or the same
//! inode number reused with a new change time. The one gap, a change within the same clock
//! tick as the one the cache saw, is closed by caching only files whose modification and
//! change times are at least [`SETTLE`] old when they are read: any later change then gets a
//! strictly later timestamp. A file that changes often is simply never cached.
//!
//! The `stat` resolves the path without `RESOLVE_BENEATH` (no `stat` call has it), which is
//! safe because it only decides whether cached bytes — read from a file opened beneath the
//! folder — are still the file's: a link pointing elsewhere has another device or inode and
//! is a miss, and a miss opens the file again beneath the folder. The `stat` runs on the worker
//! thread (like nginx's `open_file_cache` checks); paths just served are in the kernel's dentry
//! cache.
//!
//! Platform specific: Windows has no `statat`; the path is joined to the folder's (only a
//! path that passed routing and a plain-name check) and opened for its attributes, following
//! links as `statat` does, and the identity is the volume serial number, file index, size,
//! last write time and change time (`ChangeTime`, which moves on every write and no user can
//! set), read from the handle. The same reasoning holds: the stat never serves anything.
//!
//! **Bounded.** At most `capacity` bytes of file content per worker (the `--cache-size`
//! flag divided among workers), files of at most `max_file` bytes; when full, the oldest
//! entries go first (FIFO). Entries that fail revalidation are dropped at once.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, Metadata};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringport::Dir;

use super::response::FileHead;
use crate::sys;

/// How old a file's timestamps must be for it to be cached.
pub const SETTLE: Duration = Duration::from_secs(2);

/// What identifies a file's bytes: if all of it is unchanged, so are they.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Device (Windows: volume serial number).
    pub dev: u64,
    /// Inode (Windows: file index).
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, u32),
    /// Change time (seconds, nanoseconds; Windows: `ChangeTime`).
    pub ctime: (i64, u32),
}

impl Identity {
    /// Of an open file (`meta` is its metadata).
    pub fn of(file: &File, meta: &Metadata) -> Self {
        sys::identity(file, meta)
    }

    /// Of the file at `path` beneath `root` (following links), if it is a regular file.
    pub fn stat_at(root: &Dir, path: &[u8]) -> Option<Self> {
        sys::stat_beneath(root, path)
    }

    /// Whether both timestamps are at least `settle` older than `now`.
    pub fn settled(&self, now: SystemTime, settle: Duration) -> bool {
        let Some(limit) = now.checked_sub(settle) else {
            return false;
        };
        let at = |(s, n): (i64, u32)| {
            u64::try_from(s)
                .ok()
                .map(|s| UNIX_EPOCH + Duration::new(s, n))
        };
        [self.mtime, self.ctime]
            .into_iter()
            .all(|t| at(t).is_some_and(|t| t <= limit))
    }
}

/// A cached file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What the bytes belong to.
    pub identity: Identity,
    /// The file's bytes.
    pub bytes: Arc<[u8]>,
    /// Its response headers.
    pub head: Arc<FileHead>,
}

/// One worker's cache, keyed by the path relative to the served folder.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<Vec<u8>, Entry>,
    /// Insertion order, for eviction; a key may be stale (removed or replaced since).
    order: VecDeque<(Vec<u8>, Identity)>,
    bytes: u64,
    capacity: u64,
    max_file: u64,
    settle: Duration,
}

impl Cache {
    /// A cache of at most `capacity` bytes of files of at most `max_file` bytes each, that
    /// takes only files whose timestamps are `settle` old.
    pub fn new(capacity: u64, max_file: u64, settle: Duration) -> Self {
        Cache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            capacity,
            max_file: max_file.min(capacity),
            settle,
        }
    }

    /// Whether a file of `size` bytes may be cached at all.
    pub fn admits(&self, size: u64) -> bool {
        size <= self.max_file && self.capacity > 0
    }

    /// Whether a file with this identity may be cached now (small enough, settled).
    pub fn takes(&self, identity: &Identity) -> bool {
        self.admits(identity.size) && identity.settled(SystemTime::now(), self.settle)
    }

    /// The entry for `path`, if its file on disk (`stat` beneath `dir`) is still the one cached.
    pub fn get(&mut self, root: &Dir, path: &[u8]) -> Option<&Entry> {
        let cached = self.entries.get(path)?.identity;
        if Identity::stat_at(root, path) != Some(cached) {
            self.remove(path);
            return None;
        }
        self.entries.get(path)
    }

    fn remove(&mut self, path: &[u8]) {
        if let Some(old) = self.entries.remove(path) {
            self.bytes -= old.bytes.len() as u64;
        }
    }

    /// Caches `entry` for `path` (if it fits), evicting the oldest entries as needed.
    pub fn insert(&mut self, path: Vec<u8>, entry: Entry) {
        let size = entry.bytes.len() as u64;
        if !self.admits(size) || entry.identity.size != size {
            return;
        }
        self.remove(&path);
        while self.bytes + size > self.capacity {
            let Some((old, identity)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&old)
                .is_some_and(|e| e.identity == identity)
            {
                self.remove(&old);
            }
        }
        // Stale order records are bounded too: drop them once they outnumber live entries.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(k, id)| entries.get(k).is_some_and(|e| e.identity == *id));
        }
        self.bytes += size;
        self.order.push_back((path.clone(), entry.identity));
        self.entries.insert(path, entry);
    }

    /// Bytes of file content held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of files held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::{FileFacts, FileHead};
    use std::fs::File;

    struct Tmp(std::path::PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp() -> (Tmp, Dir) {
        let p = std::env::temp_dir().join(format!(
            "ringport-cache-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        let d = Dir::open(&p).unwrap();
        (Tmp(p), d)
    }

    fn entry(identity: Identity, bytes: &[u8]) -> Entry {
        let head = FileHead::new(&FileFacts {
            name: b"x",
            size: identity.size,
            mtime: identity.mtime,
            coding: None,
            cache_control: None,
            vary: false,
        });
        Entry {
            identity,
            bytes: bytes.into(),
            head: Arc::new(head),
        }
    }

    #[test]
    fn a_changed_file_is_a_miss() {
        let (dir, fd) = tmp();
        let path = dir.0.join("f");
        std::fs::write(&path, b"one").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(old))
            .unwrap();
        let id = Identity::stat_at(&fd, b"f").unwrap();
        // The change time is now: not settled yet.
        assert!(!id.settled(SystemTime::now(), SETTLE));
        assert!(id.settled(SystemTime::now() + SETTLE, SETTLE));
        let mut cache = Cache::new(1000, 100, SETTLE);
        cache.insert(b"f".to_vec(), entry(id, b"one"));
        assert_eq!(&*cache.get(&fd, b"f").unwrap().bytes, b"one");
        // Rewritten in place with the same size and modification time: the change time moves.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, b"two").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(old))
            .unwrap();
        assert!(cache.get(&fd, b"f").is_none());
        assert!(cache.is_empty() && cache.bytes() == 0);
        // Gone: a miss.
        cache.insert(
            b"f".to_vec(),
            entry(Identity::stat_at(&fd, b"f").unwrap(), b"two"),
        );
        std::fs::remove_file(&path).unwrap();
        assert!(cache.get(&fd, b"f").is_none());
    }

    #[test]
    fn bounded_oldest_first() {
        let id = |n: u64| Identity {
            dev: 1,
            ino: n,
            size: 40,
            mtime: (0, 0),
            ctime: (0, 0),
        };
        let mut cache = Cache::new(100, 50, SETTLE);
        for n in 0..10 {
            cache.insert(vec![n as u8], entry(id(n), &[0; 40]));
            assert!(cache.bytes() <= 100);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.entries.contains_key(&vec![9]) && cache.entries.contains_key(&vec![8]));
        assert!(!cache.admits(51));
        cache.insert(vec![99], entry(Identity { size: 60, ..id(99) }, &[0; 60]));
        assert_eq!(cache.len(), 2);
        assert!(cache.order.len() <= 2 * cache.len() + 64);
    }
}
