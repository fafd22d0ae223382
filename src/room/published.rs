//! Published live parts on disk, so that a part keeps its bytes across a crash and a restart:
//! what a listener or a proxy already holds is what the server serves again, even when the
//! room could no longer render it the same way (a track evicted and its file gone, a command
//! whose saved state a kill cut off).
//!
//! ```text
//! CACHE_DIR/published/<ladder key>/<room slug>/<part>.<rendition>.m4s
//! ```
//!
//! Each file is written (beside serving it) under a temporary name and renamed, so a kill
//! leaves a whole part or none. Parts older than [`KEEP_PARTS`] before the newest written are removed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Parts kept behind the newest written: the playlist window (48) and the preload-hinted part,
/// with room to spare.
const KEEP_PARTS: u64 = 64;
/// Pruning runs when a part number is a multiple of this.
const PRUNE_EVERY: u64 = 16;
/// Prefix of a file being written.
const TMP_PREFIX: &str = ".tmp-";

/// The folder of published parts of one room and bitrate ladder; cheap to clone.
#[derive(Clone)]
pub struct PublishedParts {
    dir: PathBuf,
    /// Set once the room is deleted. Held while a part is written, so that a write still
    /// queued then cannot land in the folder of a new room of the same name.
    removed: Arc<Mutex<bool>>,
}

impl PublishedParts {
    /// Opens `CACHE_DIR/published/<ladder key>/<room>`, where `cache_root` is the segment
    /// cache's ladder folder (`CACHE_DIR/<ladder key>`). Other ladders' folders, files of the
    /// one-room layout and unfinished writes are removed.
    pub fn open(cache_root: &Path, room: &str) -> io::Result<Self> {
        let ladder_dir = ladder_dir(cache_root)?;
        let dir = ladder_dir.join(room);
        fs::create_dir_all(&dir)?;
        let all = ladder_dir.parent().ok_or_else(|| io::Error::other("no published folder"))?;
        for entry in fs::read_dir(all)?.flatten() {
            if entry.path() != ladder_dir {
                remove_quietly(&entry.path());
            }
        }
        for entry in fs::read_dir(&ladder_dir)?.flatten() {
            if entry.file_type().is_ok_and(|t| !t.is_dir()) {
                remove_quietly(&entry.path());
            }
        }
        for entry in fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                remove_quietly(&entry.path());
            }
        }
        Ok(PublishedParts { dir, removed: Arc::default() })
    }

    /// Removes the published parts of every room not in `rooms` (deleted while the server was down).
    pub fn remove_rooms_except(cache_root: &Path, rooms: &[&str]) -> io::Result<()> {
        let ladder_dir = ladder_dir(cache_root)?;
        for entry in fs::read_dir(&ladder_dir)?.flatten() {
            if !rooms.iter().any(|r| entry.file_name() == *r) {
                remove_quietly(&entry.path());
            }
        }
        Ok(())
    }

    /// Removes this room's published parts (the room was deleted).
    pub fn remove(&self) {
        let mut removed = self.removed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *removed = true;
        remove_quietly(&self.dir);
    }

    fn path(&self, part: u64, rendition: &str) -> PathBuf {
        self.dir.join(format!("{part}.{rendition}.m4s"))
    }

    /// The bytes of `part` of `rendition` as published, if they were.
    pub fn read(&self, part: u64, rendition: &str) -> Option<Bytes> {
        match fs::read(self.path(part, rendition)) {
            Ok(bytes) => Some(Bytes::from(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(error = %e, part, rendition, "cannot read a published part; rendering it");
                None
            }
        }
    }

    /// Keeps `bytes` as `part` of `rendition`; now and then removes parts older than
    /// [`KEEP_PARTS`] before it.
    pub fn write(&self, part: u64, rendition: &str, bytes: &[u8]) -> io::Result<()> {
        let removed = self.removed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *removed {
            return Ok(());
        }
        let tmp = self.dir.join(format!("{TMP_PREFIX}{part}.{rendition}"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, self.path(part, rendition))?;
        if part.is_multiple_of(PRUNE_EVERY) {
            self.prune(part.saturating_sub(KEEP_PARTS));
        }
        Ok(())
    }

    /// Removes every part before `oldest`.
    fn prune(&self, oldest: u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let part = name.to_str().and_then(|n| n.split('.').next()).and_then(|n| n.parse::<u64>().ok());
            if part.is_some_and(|p| p < oldest) {
                remove_quietly(&entry.path());
            }
        }
    }
}

/// `CACHE_DIR/published/<ladder key>`, made if missing.
fn ladder_dir(cache_root: &Path) -> io::Result<PathBuf> {
    let ladder = cache_root.file_name().ok_or_else(|| io::Error::other("the cache folder has no name"))?;
    let parent = cache_root.parent().ok_or_else(|| io::Error::other("the cache folder has no parent"))?;
    let dir = parent.join("published").join(ladder);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn remove_quietly(path: &Path) {
    let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    if let Err(e) = removed {
        tracing::warn!(error = %e, path = %path.display(), "cannot remove an old published part");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_survive_reopening_and_old_ones_go() {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("aaclc-a");
        let other = cache.path().join("published/aaclc-b");
        fs::create_dir_all(&other).unwrap();
        let parts = PublishedParts::open(&root, "main").unwrap();
        assert!(!other.exists(), "another ladder's parts are removed");
        for part in 100..=200 {
            parts.write(part, "256k", &part.to_le_bytes()).unwrap();
        }
        fs::write(parts.dir.join(".tmp-201.256k"), b"half").unwrap();
        let reopened = PublishedParts::open(&root, "main").unwrap();
        assert_eq!(reopened.read(200, "256k").as_deref(), Some(&200u64.to_le_bytes()[..]));
        assert_eq!(reopened.read(200, "128k"), None);
        // Pruned at 192: everything before 128 is gone, 128 on is kept.
        assert_eq!(reopened.read(127, "256k"), None);
        assert!(reopened.read(128, "256k").is_some());
        let names: Vec<String> =
            fs::read_dir(&reopened.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert!(names.iter().all(|n| !n.starts_with(TMP_PREFIX)), "an unfinished write is removed: {names:?}");
    }

    #[test]
    fn each_room_keeps_its_own_parts_and_a_deleted_room_loses_them() {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("aaclc-a");
        let old_layout = cache.path().join("published/aaclc-a/100.256k.m4s");
        fs::create_dir_all(old_layout.parent().unwrap()).unwrap();
        fs::write(&old_layout, b"one-room layout").unwrap();
        let (main, crypt) =
            (PublishedParts::open(&root, "main").unwrap(), PublishedParts::open(&root, "crypt").unwrap());
        assert!(!old_layout.exists(), "a part of the one-room layout is removed");
        main.write(100, "256k", b"main").unwrap();
        crypt.write(100, "256k", b"crypt").unwrap();
        assert_eq!(main.read(100, "256k").as_deref(), Some(&b"main"[..]));
        assert_eq!(crypt.read(100, "256k").as_deref(), Some(&b"crypt"[..]));
        PublishedParts::remove_rooms_except(&root, &["main"]).unwrap();
        assert_eq!(crypt.read(100, "256k"), None, "a room deleted while the server was down");
        assert!(main.read(100, "256k").is_some());
        main.remove();
        assert_eq!(main.read(100, "256k"), None);
    }

    #[test]
    fn a_write_queued_when_its_room_was_deleted_goes_nowhere() {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("aaclc-a");
        let old = PublishedParts::open(&root, "crypt").unwrap();
        let queued = old.clone();
        old.remove();
        // A new room of the same name, then the old room's last write comes through.
        let new = PublishedParts::open(&root, "crypt").unwrap();
        queued.write(100, "256k", b"old room").unwrap();
        assert_eq!(new.read(100, "256k"), None);
        new.write(100, "256k", b"new room").unwrap();
        assert_eq!(new.read(100, "256k").as_deref(), Some(&b"new room"[..]));
    }
}
