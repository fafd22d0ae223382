//! The segment cache: every track encoded once per bitrate ladder, kept on disk.
//!
//! Keyed by (source fingerprint, encoder parameters); see [`disk`] for the layout and why a
//! crash never leaves a torn file. One encode per track at a time (single flight): whoever
//! asks first starts it on tokio's blocking pool (fdk-aac's handle stays on that one thread),
//! and everyone asking for a part waits only until that part exists, so the first part of an
//! uncached track is ready within milliseconds. The bytes are capped; least recently used
//! tracks are evicted, never a pinned (playing or queued) one. Background pre-segmenting of
//! many tracks ([`SegmentCache::prepare`]) runs at most a fixed number of encodes at once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bardcast::cache::{SegmentCache, SourceKey};
//! let ladder = segmenter::parse_ladder("256,96")?;
//! let cache = SegmentCache::open("data/cache".as_ref(), 10 << 30, ladder)?;
//! let src = SourceKey { fingerprint: "0123abcd".into(), path: "music/theme.mp3".into() };
//! let first = cache.part(&src, 0, 0).await?; // returns as soon as part 0 exists
//! assert!(first.is_some());
//! # Ok(()) }
//! ```

mod disk;
mod prepare;

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, watch, Semaphore};

use segmenter::{EncoderParams, Part, PartSink};

pub use prepare::CacheFailure;
use prepare::PrepareState;

/// How long a failed encode is remembered, so a bad file is not decoded again on every request.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// What identifies a source for the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// The library's content fingerprint: the cache key.
    pub fingerprint: String,
    /// Where to read the file when it has to be encoded.
    pub path: PathBuf,
}

/// Why a part cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The source cannot be read or decoded; the text is meant for the GM.
    #[error("cannot play {path}: {reason}")]
    Source {
        /// The source file.
        path: String,
        /// What the segmenter said.
        reason: String,
    },
    /// The rendition index is not in the bitrate ladder.
    #[error("rendition {0} is not in the bitrate ladder")]
    NoSuchRendition(usize),
    /// Reading or writing the cache folder failed.
    #[error("segment cache I/O error: {0}")]
    Io(String),
    /// The server is shutting down; encodes stop.
    #[error("the segment cache is shutting down")]
    Closed,
}

/// The cache's state for the dashboard (`GET /api/cache/status`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStatus {
    /// `"preparing"` while background pre-segmenting has tracks pending, else `"idle"`.
    pub state: &'static str,
    /// Tracks of the current (or last) prepare run that are cached: encoded now or before.
    pub done: u64,
    /// Tracks of the run still waiting or encoding.
    pub pending: u64,
    /// Tracks of the run that could not be encoded.
    pub failed: u64,
    /// The run's failures, oldest first (at most 100).
    pub failures: Vec<CacheFailure>,
    /// Complete tracks on disk.
    pub cached_tracks: u64,
    /// Bytes on disk, including encodes in progress.
    pub bytes_used: u64,
    /// The size cap in bytes (`CACHE_MAX_BYTES`).
    pub max_bytes: u64,
    /// Encodes running now (on demand and prepare).
    pub encodes_running: u64,
    /// Encodes started since the server started.
    pub encodes_started: u64,
    /// Part reads answered from a complete track on disk, since the server started.
    pub hits: u64,
    /// Part reads that waited on (or started) an encode.
    pub misses: u64,
    /// Tracks evicted to keep under the cap.
    pub evictions: u64,
    /// Seconds of audio encoded by finished encodes.
    pub encoded_audio_seconds: f64,
    /// Wall-clock seconds those encodes took; encode throughput (× realtime) is the ratio.
    pub encode_seconds: f64,
    /// Most encodes background pre-segmenting runs at once.
    pub prepare_concurrency: usize,
    /// The ladder, bits per second per rendition.
    pub bitrates: Vec<u32>,
}

/// Handle to the segment cache; cheap to clone.
#[derive(Clone)]
pub struct SegmentCache {
    shared: Arc<Shared>,
}

struct Shared {
    /// `CACHE_DIR/<ladder>`.
    root: PathBuf,
    ladder: Vec<EncoderParams>,
    init: Vec<Bytes>,
    silence: Vec<Bytes>,
    max_bytes: u64,
    prepare_slots: Arc<Semaphore>,
    prepare_concurrency: usize,
    closed: AtomicBool,
    state: Mutex<State>,
    /// (fingerprint, loudness) of each finished encode.
    measured: broadcast::Sender<(String, Option<f64>)>,
}

#[derive(Default)]
struct State {
    /// Complete tracks by folder name.
    tracks: HashMap<String, Cached>,
    /// Encodes in progress by folder name: the single-flight map.
    running: HashMap<String, Arc<Encode>>,
    /// Recent failures by folder name and source path: a missing file is a fault of the path,
    /// so a copy of the same content elsewhere is still tried.
    failed: HashMap<(String, PathBuf), Failed>,
    pinned: HashSet<String>,
    /// Bytes of the complete tracks.
    bytes: u64,
    /// Advances on every access: the LRU clock.
    tick: u64,
    /// Numbers temporary folder names.
    seq: u64,
    encodes_started: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
    encoded_audio_seconds: f64,
    encode_seconds: f64,
    prepare: PrepareState,
}

struct Cached {
    /// Per rendition, each part's end offset in its data file.
    ends: Arc<Vec<Vec<u64>>>,
    /// Decoded length in samples at 48 kHz.
    samples: u64,
    /// Rendition 0's frame before frame 0; empty if unknown.
    lead_in: Arc<[u8]>,
    /// Integrated loudness, LUFS; `None` for silence.
    loudness_lufs: Option<f64>,
    bytes: u64,
    last_access: u64,
}

struct Failed {
    at: Instant,
    error: CacheError,
}

/// One encode in progress, shared by everyone waiting on it.
struct Encode {
    /// The data files, read and written through these handles (they survive the folder's rename).
    files: OnceLock<Vec<Arc<File>>>,
    progress: watch::Sender<Progress>,
}

/// A finished encode, committed to disk.
struct Encoded {
    parts: u64,
    /// Per rendition, each part's end offset in its data file.
    ends: Vec<Vec<u64>>,
    /// Bytes written, all renditions.
    bytes: u64,
    /// The audio's length in samples at 48 kHz.
    samples: u64,
    lead_in: Vec<u8>,
    loudness_lufs: Option<f64>,
}

struct Progress {
    /// Per rendition, each finished part's end offset.
    ends: Vec<Vec<u64>>,
    /// Set once: the part count, or why the encode failed.
    finished: Option<Result<u64, CacheError>>,
}

enum Lookup {
    Cached(String, Arc<Vec<Vec<u64>>>),
    Running(Arc<Encode>),
    Failed(CacheError),
    Absent,
}

/// Background pre-segmenting's default: one fewer than the cores, at least 1.
pub fn default_prepare_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl SegmentCache {
    /// Opens (creating) the cache under `dir` for `ladder`, computing each rendition's init
    /// segment and silence part once. Unfinished or damaged tracks found on disk are removed.
    pub fn open(dir: &Path, max_bytes: u64, ladder: Vec<EncoderParams>) -> Result<Self, String> {
        Self::open_with(dir, max_bytes, ladder, default_prepare_concurrency())
    }

    /// [`SegmentCache::open`] with the number of encodes background pre-segmenting may run at once.
    pub fn open_with(
        dir: &Path,
        max_bytes: u64,
        ladder: Vec<EncoderParams>,
        prepare_concurrency: usize,
    ) -> Result<Self, String> {
        if ladder.is_empty() {
            return Err("the bitrate ladder is empty".into());
        }
        let prepare_concurrency = prepare_concurrency.max(1);
        let mut init = Vec::new();
        let mut silence = Vec::new();
        for p in &ladder {
            let fail = |e: segmenter::Error| format!("cannot set up the AAC encoder at {} bit/s: {e}", p.bitrate);
            init.push(Bytes::from(segmenter::init_segment(p).map_err(fail)?));
            silence.push(Bytes::from(segmenter::silence_part(p).map_err(fail)?));
        }
        let (root, found) =
            disk::open(dir, &ladder).map_err(|e| format!("cannot open the segment cache in {}: {e}", dir.display()))?;
        let mut found = found;
        found.sort_by_key(|f| f.completed);
        let mut state = State::default();
        for f in found {
            state.tick += 1;
            state.bytes += f.bytes;
            state.tracks.insert(
                f.name,
                Cached {
                    ends: Arc::new(f.ends),
                    samples: f.samples,
                    lead_in: f.lead_in.into(),
                    loudness_lufs: f.loudness_lufs,
                    bytes: f.bytes,
                    last_access: state.tick,
                },
            );
        }
        tracing::info!(
            dir = %root.display(), tracks = state.tracks.len(), bytes = state.bytes, max_bytes,
            "segment cache opened"
        );
        let cache = SegmentCache {
            shared: Arc::new(Shared {
                root,
                ladder,
                init,
                silence,
                max_bytes,
                prepare_slots: Arc::new(Semaphore::new(prepare_concurrency)),
                prepare_concurrency,
                closed: AtomicBool::new(false),
                state: Mutex::new(state),
                measured: broadcast::channel(256).0,
            }),
        };
        cache.shared.evict();
        Ok(cache)
    }

    /// The bitrate ladder; a rendition is an index into it.
    pub fn ladder(&self) -> &[EncoderParams] {
        &self.shared.ladder
    }

    /// The folder holding this ladder's tracks (`CACHE_DIR/<ladder>`).
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// The init segment (`ftyp` + `moov`) of a rendition: the same for every track.
    pub fn init_segment(&self, rendition: usize) -> Option<Bytes> {
        self.shared.init.get(rendition).cloned()
    }

    /// A full part (24 frames, 0.512 s) of silence for a rendition, `tfdt` 0, sequence 1.
    pub fn silence_part(&self, rendition: usize) -> Option<Bytes> {
        self.shared.silence.get(rendition).cloned()
    }

    /// Part `index` (track-relative, 0.512 s each) of a rendition. Starts the track's encode if
    /// needed, or joins the one running, and returns as soon as that part exists. `Ok(None)`
    /// when the track has fewer parts; `Err` when it cannot be decoded (the text is for the GM).
    pub async fn part(&self, src: &SourceKey, rendition: usize, index: u64) -> Result<Option<Bytes>, CacheError> {
        if rendition >= self.shared.ladder.len() {
            return Err(CacheError::NoSuchRendition(rendition));
        }
        let mut retried = false;
        loop {
            let lookup = self.shared.lookup(src, true);
            match &lookup {
                Lookup::Cached(..) => self.shared.lock().hits += 1,
                Lookup::Running(_) => self.shared.lock().misses += 1,
                Lookup::Failed(_) | Lookup::Absent => {}
            }
            match lookup {
                Lookup::Cached(name, ends) => {
                    let Some((start, end)) = part_range(&ends[rendition], index) else { return Ok(None) };
                    let path = disk::data_file(&self.shared.root.join(&name), rendition);
                    let read = blocking(move || read_range(&File::open(&path)?, start, end)).await;
                    match read {
                        Ok(bytes) => return Ok(Some(bytes)),
                        Err(e) if !retried => {
                            // Deleted or damaged behind our back: forget the track and encode it again.
                            tracing::warn!(track = %name, error = %e, "cached track unreadable; encoding it again");
                            self.shared.forget(&name, &ends);
                            retried = true;
                        }
                        Err(e) => return Err(CacheError::Io(e.to_string())),
                    }
                }
                Lookup::Running(enc) => return enc.part(rendition, index).await,
                Lookup::Failed(e) => return Err(e),
                Lookup::Absent => return Err(CacheError::Closed),
            }
        }
    }

    /// The exact number of parts once known (the track is cached), without starting anything.
    pub fn known_parts(&self, src: &SourceKey) -> Option<u64> {
        let st = self.shared.lock();
        st.tracks.get(&disk::track_dir_name(&src.fingerprint)).map(|c| c.ends[0].len() as u64)
    }

    /// The exact length in samples at 48 kHz once known (the track is cached).
    pub fn known_samples(&self, src: &SourceKey) -> Option<u64> {
        let st = self.shared.lock();
        st.tracks.get(&disk::track_dir_name(&src.fingerprint)).map(|c| c.samples)
    }

    /// Starts encoding in the background unless the track is cached or being encoded; for
    /// keeping ahead of the play head. Counts as an access for the LRU order.
    pub fn warm(&self, src: &SourceKey) {
        let _ = self.shared.lookup(src, true);
    }

    /// Waits until the track is encoded (starting the encode if needed); its exact part count.
    pub async fn track_parts(&self, src: &SourceKey) -> Result<u64, CacheError> {
        match self.shared.lookup(src, true) {
            Lookup::Cached(_, ends) => Ok(ends[0].len() as u64),
            Lookup::Running(enc) => enc.finished().await,
            Lookup::Failed(e) => Err(e),
            Lookup::Absent => Err(CacheError::Closed),
        }
    }

    /// Waits until the track is encoded (starting the encode if needed); its exact length
    /// in samples at 48 kHz, for gapless loops.
    pub async fn track_samples(&self, src: &SourceKey) -> Result<u64, CacheError> {
        self.track_parts(src).await?;
        self.known_samples(src).ok_or(CacheError::Closed)
    }

    /// Rendition 0's AAC frame before the track's first, once the track is cached: decoding
    /// it first makes the first 1024 samples exact. `None` while unknown.
    pub fn known_lead_in(&self, src: &SourceKey) -> Option<Arc<[u8]>> {
        let st = self.shared.lock();
        st.tracks.get(&disk::track_dir_name(&src.fingerprint)).map(|c| c.lead_in.clone()).filter(|l| !l.is_empty())
    }

    /// A cached track's integrated loudness (EBU R128), LUFS. `None` while it is not
    /// cached, and for silence.
    pub fn known_loudness(&self, src: &SourceKey) -> Option<f64> {
        let st = self.shared.lock();
        st.tracks.get(&disk::track_dir_name(&src.fingerprint)).and_then(|c| c.loudness_lufs)
    }

    /// Each track's loudness as its encode finishes: (fingerprint, LUFS).
    pub fn measured(&self) -> broadcast::Receiver<(String, Option<f64>)> {
        self.shared.measured.subscribe()
    }

    /// Marks tracks as in use (playing or queued next) so eviction never removes them;
    /// replaces the previous set.
    pub fn set_pinned(&self, keys: Vec<SourceKey>) {
        let pinned = keys.iter().map(|k| disk::track_dir_name(&k.fingerprint)).collect();
        self.shared.lock().pinned = pinned;
    }

    /// Counters for the dashboard.
    pub fn status(&self) -> CacheStatus {
        let sh = &self.shared;
        let st = sh.lock();
        let running_bytes: u64 = st.running.values().map(|e| e.bytes_written()).sum();
        CacheStatus {
            state: if st.prepare.pending > 0 { "preparing" } else { "idle" },
            done: st.prepare.done,
            pending: st.prepare.pending,
            failed: st.prepare.failed,
            failures: st.prepare.failures.iter().cloned().collect(),
            cached_tracks: st.tracks.len() as u64,
            bytes_used: st.bytes + running_bytes,
            max_bytes: sh.max_bytes,
            encodes_running: st.running.len() as u64,
            encodes_started: st.encodes_started,
            hits: st.hits,
            misses: st.misses,
            evictions: st.evictions,
            encoded_audio_seconds: st.encoded_audio_seconds,
            encode_seconds: st.encode_seconds,
            prepare_concurrency: sh.prepare_concurrency,
            bitrates: sh.ladder.iter().map(|p| p.bitrate).collect(),
        }
    }

    /// Stops encoding: running encodes abort at their next part (their folders are removed),
    /// queued pre-segmenting is dropped, and nothing new starts. For shutdown.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.prepare_slots.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a set of maps updated in single steps; a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds the track, starting its encode when `start` and it is neither cached nor running.
    fn lookup(self: &Arc<Self>, src: &SourceKey, start: bool) -> Lookup {
        let name = disk::track_dir_name(&src.fingerprint);
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if let Some(c) = st.tracks.get_mut(&name) {
            c.last_access = tick;
            return Lookup::Cached(name, c.ends.clone());
        }
        if let Some(e) = st.running.get(&name) {
            return Lookup::Running(e.clone());
        }
        let failed_key = (name.clone(), src.path.clone());
        if let Some(f) = st.failed.get(&failed_key) {
            if f.at.elapsed() < FAILURE_MEMORY {
                return Lookup::Failed(f.error.clone());
            }
            st.failed.remove(&failed_key);
        }
        if !start || self.closed.load(Ordering::SeqCst) {
            return Lookup::Absent;
        }
        let enc = Arc::new(Encode {
            files: OnceLock::new(),
            progress: watch::Sender::new(Progress { ends: vec![Vec::new(); self.ladder.len()], finished: None }),
        });
        st.running.insert(name.clone(), enc.clone());
        st.encodes_started += 1;
        st.seq += 1;
        let tmp = disk::tmp_dir(&self.root, &name, st.seq);
        drop(st);
        let this = self.clone();
        let job = {
            let enc = enc.clone();
            let src = src.clone();
            move || this.run_encode(name, src, tmp, enc)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(job)),
            Err(_) => drop(std::thread::Builder::new().name("encode".into()).spawn(job)),
        }
        Lookup::Running(enc)
    }

    /// Encodes one track into `tmp` and commits it; runs on a blocking thread.
    fn run_encode(self: Arc<Self>, name: String, src: SourceKey, tmp: PathBuf, enc: Arc<Encode>) {
        let started = Instant::now();
        let result = self.encode_into(&src, &tmp, &enc, &name);
        match result {
            Ok(Encoded { parts, ends, bytes, samples, lead_in, loudness_lufs }) => {
                let audio_seconds = samples as f64 / f64::from(segmenter::SAMPLE_RATE);
                {
                    let mut st = self.lock();
                    st.encoded_audio_seconds += audio_seconds;
                    st.encode_seconds += started.elapsed().as_secs_f64();
                    st.tick += 1;
                    let last_access = st.tick;
                    st.bytes += bytes;
                    st.tracks.insert(
                        name.clone(),
                        Cached {
                            ends: Arc::new(ends),
                            samples,
                            lead_in: lead_in.into(),
                            loudness_lufs,
                            bytes,
                            last_access,
                        },
                    );
                    st.running.remove(&name);
                }
                tracing::info!(
                    track = %name, path = %src.path.display(), parts, bytes, loudness_lufs,
                    ms = started.elapsed().as_millis() as u64, "track encoded"
                );
                let _ = self.measured.send((src.fingerprint.clone(), loudness_lufs));
                // Before waking the waiters, so they see the cache within its cap. Waiters
                // still read an evicted track through the encode's open files.
                self.evict();
                enc.progress.send_modify(|p| p.finished = Some(Ok(parts)));
            }
            Err(error) => {
                {
                    let mut st = self.lock();
                    st.running.remove(&name);
                    if error != CacheError::Closed {
                        let failed = Failed { at: Instant::now(), error: error.clone() };
                        st.failed.insert((name.clone(), src.path.clone()), failed);
                    }
                }
                disk::remove(&tmp);
                enc.progress.send_modify(|p| p.finished = Some(Err(error.clone())));
                match error {
                    CacheError::Closed => tracing::debug!(track = %name, "encode stopped for shutdown"),
                    _ => tracing::warn!(track = %name, %error, "encode failed"),
                }
            }
        }
    }

    /// The encode proper: parts into the data files as they come, then the commit.
    fn encode_into(&self, src: &SourceKey, tmp: &Path, enc: &Encode, name: &str) -> Result<Encoded, CacheError> {
        let io = |e: std::io::Error| CacheError::Io(format!("{}: {e}", tmp.display()));
        std::fs::create_dir(tmp).map_err(io)?;
        let files = (0..self.ladder.len())
            .map(|r| {
                OpenOptions::new().read(true).write(true).create_new(true).open(disk::data_file(tmp, r)).map(Arc::new)
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io)?;
        let _ = enc.files.set(files.clone());
        let mut sink = DataSink {
            files: &files,
            written: vec![0; files.len()],
            progress: &enc.progress,
            closed: &self.closed,
            io_error: None,
        };
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            segmenter::segment_track(&src.path, &self.ladder, &mut sink)
        }));
        let source_error = |reason: String| CacheError::Source { path: src.path.display().to_string(), reason };
        let summary = match encoded {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(match sink.io_error.take() {
                    Some(io_err) => io(io_err),
                    None if self.closed.load(Ordering::SeqCst) => CacheError::Closed,
                    None => source_error(e.to_string()),
                })
            }
            Err(_) => return Err(source_error("the segmenter crashed on this file".into())),
        };
        for w in &summary.warnings {
            tracing::warn!(path = %src.path.display(), warning = %w, "decoded with problems");
        }
        let ends = enc.progress.borrow().ends.clone();
        if ends.iter().any(|e| e.len() as u64 != summary.parts) {
            return Err(CacheError::Io(format!("{}: renditions disagree on the part count", src.path.display())));
        }
        let lead_in = summary.lead_in.clone();
        let manifest = disk::Manifest::new(
            &src.fingerprint,
            &self.ladder,
            summary.duration.0,
            &ends,
            summary.lead_in,
            summary.loudness_lufs,
        );
        disk::commit(&self.root, tmp, name, &files, &manifest).map_err(io)?;
        Ok(Encoded {
            parts: summary.parts,
            ends,
            bytes: sink.written.iter().sum(),
            samples: summary.duration.0,
            lead_in,
            loudness_lufs: summary.loudness_lufs,
        })
    }

    /// Drops a track from the index (if `ends` is still its entry) and deletes its folder.
    fn forget(&self, name: &str, ends: &Arc<Vec<Vec<u64>>>) {
        let trash = {
            let mut st = self.lock();
            match st.tracks.get(name) {
                Some(c) if Arc::ptr_eq(&c.ends, ends) => {}
                _ => return,
            }
            let c = st.tracks.remove(name);
            st.bytes = st.bytes.saturating_sub(c.map_or(0, |c| c.bytes));
            st.seq += 1;
            disk::to_trash(&self.root, name, st.seq).ok()
        };
        if let Some(t) = trash {
            disk::remove(&t);
        }
    }

    /// Evicts least recently used tracks, never a pinned one, until the bytes fit the cap.
    fn evict(&self) {
        let mut trash = Vec::new();
        {
            let mut st = self.lock();
            let running: u64 = st.running.values().map(|e| e.bytes_written()).sum();
            while st.bytes + running > self.max_bytes {
                let victim = st
                    .tracks
                    .iter()
                    .filter(|(name, _)| !st.pinned.contains(*name))
                    .min_by_key(|(_, c)| c.last_access)
                    .map(|(name, _)| name.clone());
                let Some(name) = victim else {
                    tracing::warn!(
                        bytes = st.bytes + running,
                        max = self.max_bytes,
                        "cache over its cap; only pinned tracks left"
                    );
                    break;
                };
                let c = st.tracks.remove(&name);
                st.bytes = st.bytes.saturating_sub(c.map_or(0, |c| c.bytes));
                st.evictions += 1;
                st.seq += 1;
                // Renamed under the lock, so a new encode of the same track can never be caught by this delete.
                match disk::to_trash(&self.root, &name, st.seq) {
                    Ok(t) => trash.push(t),
                    Err(e) => tracing::warn!(track = %name, error = %e, "cannot evict"),
                }
                tracing::debug!(track = %name, "evicted");
            }
        }
        for t in trash {
            disk::remove(&t);
        }
    }
}

impl Encode {
    fn bytes_written(&self) -> u64 {
        self.progress.borrow().ends.iter().map(|e| e.last().copied().unwrap_or(0)).sum()
    }

    async fn finished(&self) -> Result<u64, CacheError> {
        let mut rx = self.progress.subscribe();
        let p = rx.wait_for(|p| p.finished.is_some()).await.map_err(|_| CacheError::Closed)?;
        p.finished.clone().unwrap_or(Err(CacheError::Closed))
    }

    async fn part(&self, rendition: usize, index: u64) -> Result<Option<Bytes>, CacheError> {
        let mut rx = self.progress.subscribe();
        let range = {
            let p = rx
                .wait_for(|p| p.ends[rendition].len() as u64 > index || p.finished.is_some())
                .await
                .map_err(|_| CacheError::Closed)?;
            match (part_range(&p.ends[rendition], index), &p.finished) {
                (Some(r), _) => r,
                (None, Some(Err(e))) => return Err(e.clone()),
                (None, _) => return Ok(None),
            }
        };
        let file = self.files.get().and_then(|f| f.get(rendition)).cloned().ok_or(CacheError::Closed)?;
        blocking(move || read_range(&file, range.0, range.1)).await.map(Some).map_err(|e| CacheError::Io(e.to_string()))
    }
}

/// Writes each part to its rendition's data file, then tells the waiters.
struct DataSink<'a> {
    files: &'a [Arc<File>],
    written: Vec<u64>,
    progress: &'a watch::Sender<Progress>,
    closed: &'a AtomicBool,
    io_error: Option<std::io::Error>,
}

impl PartSink for DataSink<'_> {
    fn part(&mut self, rendition: usize, part: Part) -> segmenter::Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(segmenter::Error::Sink("the cache is closing".into()));
        }
        let (Some(file), Some(offset)) = (self.files.get(rendition), self.written.get_mut(rendition)) else {
            return Err(segmenter::Error::Sink(format!("no rendition {rendition}")));
        };
        if let Err(e) = file.write_all_at(&part.bytes, *offset) {
            let msg = e.to_string();
            self.io_error = Some(e);
            return Err(segmenter::Error::Sink(msg));
        }
        *offset += part.bytes.len() as u64;
        let end = *offset;
        self.progress.send_modify(|p| p.ends[rendition].push(end));
        Ok(())
    }
}

/// The byte range of part `index` given each part's end offset.
fn part_range(ends: &[u64], index: u64) -> Option<(u64, u64)> {
    let i = usize::try_from(index).ok()?;
    let end = *ends.get(i)?;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    Some((start, end))
}

fn read_range(file: &File, start: u64, end: u64) -> std::io::Result<Bytes> {
    let mut buf = vec![0; (end - start) as usize];
    file.read_exact_at(&mut buf, start)?;
    Ok(Bytes::from(buf))
}

/// Runs a short file operation on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_ranges_follow_the_end_offsets() {
        let ends = [10, 25, 31];
        assert_eq!(part_range(&ends, 0), Some((0, 10)));
        assert_eq!(part_range(&ends, 2), Some((25, 31)));
        assert_eq!(part_range(&ends, 3), None);
        assert_eq!(part_range(&[], 0), None);
    }
}
