//! Keeps the library in step with the music folder without a press of "Scan".
//!
//! Filesystem events (notify: inotify on Linux) start the same incremental scan as `POST /api/scan`
//! once the folder has been quiet for [`QUIET`], or [`MAX_DELAY`] after the first change while
//! changes keep coming: copying in an album is one scan, and a slow trickle is still scanned.
//! A change that finds a scan running is scanned again after it, since that scan may have listed
//! the folder before the change. Network mounts (NFS, SMB) and some container mounts report no
//! changes made elsewhere, and an inotify watch limit can refuse the watch: a periodic rescan
//! covers those. The folder is only watched and read, never written.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{Event, EventKind, RecursiveMode, Watcher as _};

use super::{Error, Library};

/// Quiet time after the last change before its scan starts.
pub const QUIET: Duration = Duration::from_secs(1);
/// Longest a change waits for its scan while further changes keep coming.
pub const MAX_DELAY: Duration = Duration::from_secs(3);
/// How often a change that found a scan running asks again.
const RETRY: Duration = Duration::from_millis(250);

/// How the library follows the music folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// Scan on filesystem events.
    pub events: bool,
    /// Rescan this long after the last scan the watcher started; `None` for never.
    pub rescan_interval: Option<Duration>,
}

impl WatchOptions {
    /// From the settings `WATCH` and `RESCAN_INTERVAL` (seconds, 0 for never).
    pub fn new(watch: bool, rescan_interval_s: u64) -> Self {
        WatchOptions {
            events: watch,
            rescan_interval: (rescan_interval_s > 0).then(|| Duration::from_secs(rescan_interval_s)),
        }
    }
}

/// Why a scan is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Files changed (or a change waited for a running scan).
    Change,
    /// The periodic rescan.
    Interval,
}

/// When to scan, as a pure function of the changes seen and the time, passed in.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Option<Duration>,
    /// First and last change not yet handed to a scan.
    changes: Option<(Instant, Instant)>,
    /// A due change found a scan running: ask again at this time.
    retry_at: Option<Instant>,
    periodic_at: Option<Instant>,
}

impl Schedule {
    /// A schedule whose first periodic rescan is one `interval` after `now`.
    pub fn new(interval: Option<Duration>, now: Instant) -> Self {
        Schedule { interval, changes: None, retry_at: None, periodic_at: interval.map(|i| now + i) }
    }

    /// Records a change in the music folder.
    pub fn change(&mut self, now: Instant) {
        let first = self.changes.map_or(now, |(first, _)| first);
        self.changes = Some((first, now));
    }

    /// The next time something may be due; `None` when nothing ever is.
    pub fn next_wake(&self) -> Option<Instant> {
        let changes = self.changes.map(|(first, last)| (last + QUIET).min(first + MAX_DELAY));
        [changes, self.retry_at, self.periodic_at].into_iter().flatten().min()
    }

    /// What is due at `now`, if anything; a change comes before the periodic rescan.
    pub fn due(&self, now: Instant) -> Option<Trigger> {
        let changes = self.changes.map(|(first, last)| (last + QUIET).min(first + MAX_DELAY));
        if changes.into_iter().chain(self.retry_at).any(|t| t <= now) {
            Some(Trigger::Change)
        } else if self.periodic_at.is_some_and(|t| t <= now) {
            Some(Trigger::Interval)
        } else {
            None
        }
    }

    /// A scan started at `now`: it covers every change so far, and the period starts again.
    pub fn started(&mut self, now: Instant) {
        self.changes = None;
        self.retry_at = None;
        self.periodic_at = self.interval.map(|i| now + i);
    }

    /// A due scan found another one running at `now`. That one serves as the periodic rescan,
    /// but it may have listed the folder before the changes: ask again shortly.
    pub fn busy(&mut self, trigger: Trigger, now: Instant) {
        match trigger {
            Trigger::Change => {
                self.changes = None;
                self.retry_at = Some(now + RETRY);
            }
            Trigger::Interval => self.periodic_at = self.interval.map(|i| now + i),
        }
    }

    /// A due scan could not start for another reason: changes wait for the periodic rescan.
    pub fn failed(&mut self, now: Instant) {
        self.changes = None;
        self.retry_at = None;
        self.periodic_at = self.interval.map(|i| now + i);
    }
}

/// Whether an event can change what a scan finds. Reads do not, nor do entries the scan skips:
/// hidden ones (under `root`), such as the temporary files rsync writes before renaming them.
pub fn matters(event: &Event, root: &Path) -> bool {
    if event.need_rescan() {
        return true;
    }
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    let hidden = |p: &PathBuf| {
        p.strip_prefix(root)
            .is_ok_and(|rel| rel.components().any(|c| c.as_os_str().as_encoded_bytes().starts_with(b".")))
    };
    event.paths.is_empty() || !event.paths.iter().all(hidden)
}

enum Msg {
    Fs(notify::Result<Event>),
    Stop,
}

/// Watches the music folder and starts scans on its own thread. Dropping it stops the thread
/// (a scan it started runs on; `Library::stop_scan` stops that).
pub struct Watcher {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `library`'s music folder; `None` when `options` turn everything off.
    /// A folder that cannot be watched (missing, an inotify limit) is logged, and the periodic
    /// rescan carries on alone.
    pub fn start(library: Library, options: WatchOptions) -> Option<Watcher> {
        if !options.events && options.rescan_interval.is_none() {
            return None;
        }
        let dir = library.music_dir();
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let (tx, rx) = mpsc::channel();
        let events = if options.events { watch_folder(&root, tx.clone(), options.rescan_interval) } else { None };
        if events.is_none() && options.rescan_interval.is_none() {
            return None;
        }
        let every_s = options.rescan_interval.map(|d| d.as_secs());
        tracing::info!(
            music_dir = %root.display(), watching = events.is_some(), rescan_every_s = every_s,
            "following the music folder"
        );
        let thread = std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || run(&library, &root, options.rescan_interval, &rx, events))
            .map_err(|e| tracing::warn!(error = %e, "cannot start the music folder watcher"))
            .ok()?;
        Some(Watcher { tx, thread: Some(thread) })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A recursive watch on `root` sending its events to `tx`; `None`, with a warning, when refused.
fn watch_folder(root: &Path, tx: mpsc::Sender<Msg>, fallback: Option<Duration>) -> Option<notify::RecommendedWatcher> {
    let watched = notify::recommended_watcher(move |e| {
        let _ = tx.send(Msg::Fs(e));
    })
    .and_then(|mut w| w.watch(root, RecursiveMode::Recursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            let then = match fallback {
                Some(d) => format!("changes show at the next periodic rescan (every {} s)", d.as_secs()),
                None => "changes show only after a manual scan (RESCAN_INTERVAL is 0)".into(),
            };
            tracing::warn!(error = %e, music_dir = %root.display(), "cannot watch the music folder; {then}");
            None
        }
    }
}

fn run(
    library: &Library,
    root: &Path,
    interval: Option<Duration>,
    rx: &mpsc::Receiver<Msg>,
    _events: Option<notify::RecommendedWatcher>,
) {
    let mut schedule = Schedule::new(interval, Instant::now());
    // Events since the last scan started, for the log line.
    let mut seen = 0u64;
    let mut warned = false;
    loop {
        let msg = match schedule.next_wake() {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Fs(Ok(event))) => {
                if matters(&event, root) {
                    tracing::trace!(kind = ?event.kind, paths = ?event.paths, "music folder event");
                    seen += 1;
                    schedule.change(Instant::now());
                }
            }
            Ok(Msg::Fs(Err(e))) => {
                // Events may have been lost (a queue overflow, a watch limit on a new folder): scan.
                if !warned {
                    tracing::warn!(error = %e, "music folder watch error; rescanning (further ones: debug level)");
                    warned = true;
                } else {
                    tracing::debug!(error = %e, "music folder watch error");
                }
                seen += 1;
                schedule.change(Instant::now());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let Some(trigger) = schedule.due(now) else { continue };
        match library.start_scan() {
            Ok(()) => {
                match trigger {
                    Trigger::Change => tracing::info!(events = seen, "music folder changed; scanning"),
                    Trigger::Interval => tracing::info!("periodic rescan of the music folder"),
                }
                seen = 0;
                schedule.started(now);
            }
            Err(Error::Conflict(_)) => schedule.busy(trigger, now),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a scan of the music folder");
                schedule.failed(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_of_changes_is_one_scan_after_a_quiet_second() {
        let t0 = Instant::now();
        let mut s = Schedule::new(None, t0);
        assert_eq!(s.next_wake(), None);
        for i in 0..20 {
            s.change(t0 + i * 10 * MS);
        }
        assert_eq!(s.next_wake(), Some(t0 + 190 * MS + QUIET));
        assert_eq!(s.due(t0 + 190 * MS + QUIET - MS), None);
        assert_eq!(s.due(t0 + 190 * MS + QUIET), Some(Trigger::Change));
        s.started(t0 + 190 * MS + QUIET);
        assert_eq!(s.next_wake(), None);
    }

    #[test]
    fn a_trickle_is_scanned_within_the_max_delay() {
        let t0 = Instant::now();
        let mut s = Schedule::new(None, t0);
        let mut t = t0;
        while t < t0 + MAX_DELAY {
            s.change(t);
            t += 500 * MS;
        }
        assert_eq!(s.next_wake(), Some(t0 + MAX_DELAY));
        assert_eq!(s.due(t0 + MAX_DELAY), Some(Trigger::Change));
    }

    #[test]
    fn a_change_during_a_scan_is_scanned_again_after_it() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Some(Duration::from_secs(300)), t0);
        s.change(t0);
        s.busy(Trigger::Change, t0 + QUIET);
        assert_eq!(s.due(t0 + QUIET + RETRY - MS), None);
        assert_eq!(s.due(t0 + QUIET + RETRY), Some(Trigger::Change));
        s.busy(Trigger::Change, t0 + QUIET + RETRY);
        assert_eq!(s.next_wake(), Some(t0 + QUIET + 2 * RETRY), "still asking while the scan runs");
        s.started(t0 + QUIET + 2 * RETRY);
        assert_eq!(s.next_wake(), Some(t0 + QUIET + 2 * RETRY + Duration::from_secs(300)));
    }

    #[test]
    fn the_periodic_rescan_counts_from_the_last_scan() {
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        let mut s = Schedule::new(Some(every), t0);
        assert_eq!(s.due(t0 + every - MS), None);
        assert_eq!(s.due(t0 + every), Some(Trigger::Interval));
        s.busy(Trigger::Interval, t0 + every);
        assert_eq!(s.next_wake(), Some(t0 + 2 * every), "a running scan serves as the rescan");
        s.change(t0 + every + MS);
        s.started(t0 + every + QUIET + MS);
        assert_eq!(s.next_wake(), Some(t0 + 2 * every + QUIET + MS));
        s.change(t0 + 2 * every);
        s.failed(t0 + 2 * every + QUIET);
        assert_eq!(s.next_wake(), Some(t0 + 3 * every + QUIET));
    }

    #[test]
    fn reads_and_hidden_files_do_not_matter() {
        use notify::event::{AccessKind, CreateKind, ModifyKind, RenameMode};
        let root = Path::new("/music");
        let ev = |kind, paths: &[&str]| Event {
            kind,
            paths: paths.iter().map(PathBuf::from).collect(),
            attrs: Default::default(),
        };
        assert!(matters(&ev(EventKind::Create(CreateKind::File), &["/music/a/b.flac"]), root));
        assert!(!matters(&ev(EventKind::Access(AccessKind::Any), &["/music/a/b.flac"]), root));
        assert!(!matters(&ev(EventKind::Modify(ModifyKind::Any), &["/music/a/.b.flac.Xy12"]), root));
        assert!(!matters(&ev(EventKind::Create(CreateKind::File), &["/music/.cache/x.mp3"]), root));
        // rsync's rename of its temporary file into place.
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(matters(&ev(rename, &["/music/a/.b.flac.Xy12", "/music/a/b.flac"]), root));
        assert!(matters(&ev(EventKind::Any, &[]), root));
        // A hidden music folder is not a hidden entry.
        assert!(matters(&ev(EventKind::Create(CreateKind::File), &["/srv/.music/a.mp3"]), Path::new("/srv/.music")));
        assert!(matters(&Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan), root));
    }
}
