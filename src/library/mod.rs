//! The music library: tracks scanned from the music folder, virtual folders, in SQLite.
//!
//! One connection, behind a mutex, serves the whole server; handlers reach it through
//! [`Library::call`], which runs the closure on tokio's blocking pool.

pub mod db;
pub mod demo;
pub mod error;
pub mod model;
pub mod scan;
pub mod watcher;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{unix_ms, Clock};
use db::{Applied, Db};
pub use error::{Error, Result};

/// Files read and written per transaction during a scan.
const SCAN_BATCH: usize = 512;

/// Progress and totals of the current or last scan.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanStatus {
    /// `"scanning"` or `"idle"`.
    pub state: &'static str,
    /// When the last scan finished (RFC 3339); null until one has.
    pub last_finished_at: Option<String>,
    /// Audio files found in the music folder.
    pub seen: u64,
    /// Files read so far, of those that needed reading.
    pub processed: u64,
    /// Files that needed reading (new or changed).
    pub to_process: u64,
    pub added: u64,
    pub updated: u64,
    pub missing: u64,
    pub errors: u64,
    /// Duration of the current or last scan, ms.
    pub elapsed_ms: u64,
    /// Why the last scan stopped early, if it did.
    pub failure: Option<String>,
}

/// Where a track's file is: `relpath` (raw path bytes, as stored) under `music_dir`.
pub fn file_path(music_dir: &Path, relpath: &[u8]) -> PathBuf {
    music_dir.join(std::ffi::OsStr::from_bytes(relpath))
}

/// Handle to the library; cheap to clone.
#[derive(Clone)]
pub struct Library {
    db: Arc<Mutex<Db>>,
    music_dir: PathBuf,
    clock: Arc<dyn Clock>,
    scan: watch::Sender<ScanStatus>,
    cancel: Arc<AtomicBool>,
    scan_thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Library {
    /// Opens the database (creating its folder) and remembers the music folder.
    pub fn open(database_path: &Path, music_dir: PathBuf, clock: Arc<dyn Clock>) -> std::result::Result<Self, String> {
        if let Some(parent) = database_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let db =
            Db::open(database_path).map_err(|e| format!("cannot open database {}: {e}", database_path.display()))?;
        Ok(Library {
            db: Arc::new(Mutex::new(db)),
            music_dir,
            clock,
            scan: watch::channel(ScanStatus { state: "idle", ..Default::default() }).0,
            cancel: Arc::new(AtomicBool::new(false)),
            scan_thread: Arc::new(Mutex::new(None)),
        })
    }

    /// The music folder this library reads.
    pub fn music_dir(&self) -> &Path {
        &self.music_dir
    }

    /// Where the file of a track stored at `relpath` is.
    pub fn path_of(&self, relpath: &[u8]) -> PathBuf {
        file_path(&self.music_dir, relpath)
    }

    /// Runs `f` with the database on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = db.lock().map_err(|_| Error::Internal("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Runs `f` with the database on the current thread (start-up and scans only).
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        let mut guard = self.db.lock().map_err(|_| Error::Internal("database lock poisoned".into()))?;
        f(&mut guard)
    }

    /// Whether the music folder can be listed; the reason when it cannot.
    pub fn music_dir_status(&self) -> std::result::Result<(), String> {
        std::fs::read_dir(&self.music_dir)
            .map(|_| ())
            .map_err(|e| format!("music folder {} is not readable: {e}", self.music_dir.display()))
    }

    /// Follows scan progress.
    pub fn scan_status(&self) -> watch::Receiver<ScanStatus> {
        self.scan.subscribe()
    }

    /// Starts a scan on its own thread; a conflict when one is running.
    pub fn start_scan(&self) -> Result<()> {
        let mut slot = self.scan_thread.lock().map_err(|_| Error::Internal("scan lock poisoned".into()))?;
        if self.scan.borrow().state == "scanning" {
            return Err(Error::Conflict("a scan is already running".into()));
        }
        self.cancel.store(false, Ordering::SeqCst);
        let last = self.scan.borrow().last_finished_at.clone();
        self.scan.send_replace(ScanStatus { state: "scanning", last_finished_at: last, ..Default::default() });
        let lib = self.clone();
        let handle = std::thread::Builder::new()
            .name("scan".into())
            .spawn(move || lib.run_scan())
            .map_err(|e| Error::Internal(e.to_string()))?;
        *slot = Some(handle);
        Ok(())
    }

    /// Asks a running scan to stop after its current batch and waits for it.
    pub fn stop_scan(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        let handle = self.scan_thread.lock().ok().and_then(|mut s| s.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn run_scan(&self) {
        let started = Instant::now();
        let result = self.scan_into_db(started);
        let now = unix_ms(self.clock.now());
        self.scan.send_modify(|s| {
            s.state = "idle";
            s.elapsed_ms = started.elapsed().as_millis() as u64;
            s.last_finished_at = Some(crate::clock::iso8601_ms(now));
            if let Err(e) = &result {
                s.failure = Some(e.clone());
            }
        });
        match result {
            Ok(()) => {
                let s = self.scan.borrow().clone();
                tracing::info!(
                    seen = s.seen,
                    added = s.added,
                    updated = s.updated,
                    missing = s.missing,
                    errors = s.errors,
                    elapsed_ms = s.elapsed_ms,
                    "scan finished"
                );
            }
            Err(e) => tracing::warn!(error = %e, "scan stopped"),
        }
    }

    fn scan_into_db(&self, started: Instant) -> std::result::Result<(), String> {
        let found = scan::walk(&self.music_dir)
            .map_err(|e| format!("cannot read music folder {}: {e}", self.music_dir.display()))?;
        let now_ms = || unix_ms(self.clock.now()) as i64;
        let db_err = |e: Error| e.to_string();
        let (known, failed_before) =
            self.call_blocking(|db| Ok((db.known_files()?, db.failed_paths()?))).map_err(db_err)?;
        let found_paths: std::collections::HashSet<&[u8]> = found.iter().map(|f| f.relpath.as_slice()).collect();
        let vanished: Vec<_> = known
            .iter()
            .filter(|(path, k)| !k.missing && !found_paths.contains(path.as_slice()))
            .map(|(_, k)| k.id)
            .collect();
        let missing = self.call_blocking(|db| Ok(db.mark_missing(&vanished, now_ms())?)).map_err(db_err)?;
        let gone_errors: Vec<Vec<u8>> =
            failed_before.into_iter().filter(|p| !found_paths.contains(p.as_slice())).collect();
        self.call_blocking(|db| Ok(db.forget_errors(&gone_errors)?)).map_err(db_err)?;
        let to_read: Vec<_> = found
            .iter()
            .filter(|f| match known.get(&f.relpath) {
                Some(k) => k.missing || k.file_size != f.size || k.mtime_ns != f.mtime_ns,
                None => true,
            })
            .cloned()
            .collect();
        self.scan.send_modify(|s| {
            s.seen = found.len() as u64;
            s.missing = missing;
            s.to_process = to_read.len() as u64;
        });
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
        for batch in to_read.chunks(SCAN_BATCH) {
            if self.cancel.load(Ordering::SeqCst) {
                return Err("cancelled".into());
            }
            let (ok, failed): (Vec<_>, Vec<_>) = scan::read_files(batch, threads).into_iter().partition(|r| r.is_ok());
            let ok: Vec<_> = ok.into_iter().filter_map(std::result::Result::ok).collect();
            let failed: Vec<_> = failed.into_iter().filter_map(std::result::Result::err).collect();
            let applied = self.call_blocking(|db| Ok(db.apply_scan_batch(&ok, &failed, now_ms())?)).map_err(db_err)?;
            let count = |kind: Applied| applied.iter().filter(|a| **a == kind).count() as u64;
            let (added, moved) = (count(Applied::Added), count(Applied::Moved));
            self.scan.send_modify(|s| {
                s.processed += batch.len() as u64;
                s.added += added;
                // A moved track is updated in place, and no longer missing.
                s.updated += applied.len() as u64 - added;
                s.missing = s.missing.saturating_sub(moved);
                s.errors += failed.len() as u64;
                s.elapsed_ms = started.elapsed().as_millis() as u64;
            });
        }
        Ok(())
    }
}
