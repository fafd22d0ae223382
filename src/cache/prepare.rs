//! Background pre-segmenting: many tracks, at most `prepare_concurrency` encodes at once.
//!
//! Each track waits for a slot of a semaphore and then asks the cache for the whole track,
//! so a track the room is already encoding on demand is joined, not encoded twice.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;

use serde::Serialize;

use super::{disk, CacheStatus, SegmentCache, SourceKey};

/// Failures kept for the dashboard.
const MAX_FAILURES: usize = 100;

/// A track that could not be pre-segmented.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheFailure {
    /// The source file.
    pub path: String,
    /// Why, for the GM.
    pub error: String,
}

/// Counters of the current (or last) prepare run.
#[derive(Default)]
pub(super) struct PrepareState {
    pub done: u64,
    pub pending: u64,
    pub failed: u64,
    pub failures: VecDeque<CacheFailure>,
    /// Folder names and paths of the tracks pending, so a track asked for twice is queued once.
    queued: HashSet<(String, PathBuf)>,
}

impl SegmentCache {
    /// Queues the tracks for encoding in the background and returns at once. Cached tracks
    /// count as done; tracks already queued are not queued again. Two paths with the same
    /// content are both queued and share one encode (counted twice). A call while a run is going
    /// adds to it; otherwise it starts a new run (the counters restart). Needs a tokio runtime.
    pub fn prepare(&self, keys: Vec<SourceKey>) -> CacheStatus {
        {
            let mut st = self.shared.lock();
            if st.prepare.pending == 0 {
                st.prepare = PrepareState::default();
            }
            for key in keys {
                let name = disk::track_dir_name(&key.fingerprint);
                if st.tracks.contains_key(&name) {
                    st.prepare.done += 1;
                    continue;
                }
                if !st.prepare.queued.insert((name, key.path.clone())) {
                    continue;
                }
                st.prepare.pending += 1;
                let this = self.clone();
                tokio::spawn(async move { this.prepare_one(key).await });
            }
        }
        let status = self.status();
        tracing::info!(pending = status.pending, done = status.done, "pre-segmenting");
        status
    }

    async fn prepare_one(&self, key: SourceKey) {
        let result = match self.shared.prepare_slots.clone().acquire_owned().await {
            Ok(_slot) => self.track_parts(&key).await,
            Err(_) => Err(super::CacheError::Closed),
        };
        let mut st = self.shared.lock();
        let p = &mut st.prepare;
        p.queued.remove(&(disk::track_dir_name(&key.fingerprint), key.path.clone()));
        p.pending = p.pending.saturating_sub(1);
        match result {
            Ok(_) => p.done += 1,
            Err(e) => {
                p.failed += 1;
                if p.failures.len() == MAX_FAILURES {
                    p.failures.pop_front();
                }
                p.failures.push_back(CacheFailure { path: key.path.display().to_string(), error: e.to_string() });
            }
        }
    }
}
