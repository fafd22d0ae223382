//! Live parts and segments: cached track parts re-stamped onto the wall-clock grid.

use std::collections::VecDeque;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::timeline::{Content, Timeline, PARTS_PER_SEGMENT};
use crate::cache::{SegmentCache, SourceKey};
use crate::error::{AppError, AppResult};

/// Live parts kept in memory: every listener asks for the same few.
const RECENT_PARTS: usize = 64;

/// Builds live part and segment bytes; cheap to clone.
#[derive(Clone)]
pub struct LiveParts {
    cache: SegmentCache,
    music_dir: PathBuf,
    recent: Arc<Mutex<VecDeque<((usize, u64), Bytes)>>>,
}

impl LiveParts {
    pub fn new(cache: SegmentCache, music_dir: PathBuf) -> Self {
        LiveParts { cache, music_dir, recent: Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_PARTS))) }
    }

    pub fn cache(&self) -> &SegmentCache {
        &self.cache
    }

    /// The bytes of grid part `part` of `rendition`: `tfdt` = part × 24576, so media time
    /// is wall time. A track past its end, a track that cannot be decoded, and silence in
    /// the timeline all give encoded silence.
    pub async fn part(&self, timeline: &Timeline, rendition: usize, part: u64) -> AppResult<Bytes> {
        if let Some(hit) = self.recent_part(rendition, part) {
            return Ok(hit);
        }
        let silence = self.cache.silence_part(rendition).ok_or(AppError::NotFound("rendition"))?;
        let track_part = match timeline.content_at(part) {
            Content::Silence => None,
            Content::Track { track, index } => {
                let key = SourceKey {
                    fingerprint: track.fingerprint.clone(),
                    path: self.music_dir.join(std::ffi::OsStr::from_bytes(&track.relpath)),
                };
                match self.cache.part(&key, rendition, index).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, part, "a track part is unavailable; serving silence");
                        None
                    }
                }
            }
        };
        let source = track_part.as_deref().unwrap_or(&silence);
        let sequence = (part & u64::from(u32::MAX)) as u32;
        let tfdt = part * u64::from(segmenter::PART_SAMPLES);
        let bytes = Bytes::from(segmenter::restamp(source, sequence, tfdt, &silence).map_err(AppError::internal)?);
        self.remember(rendition, part, bytes.clone());
        Ok(bytes)
    }

    /// A live segment: its four parts back to back.
    pub async fn segment(&self, timeline: &Timeline, rendition: usize, msn: u64) -> AppResult<Bytes> {
        let mut out = Vec::new();
        for part in msn * PARTS_PER_SEGMENT..(msn + 1) * PARTS_PER_SEGMENT {
            out.extend_from_slice(&self.part(timeline, rendition, part).await?);
        }
        Ok(Bytes::from(out))
    }

    fn recent_part(&self, rendition: usize, part: u64) -> Option<Bytes> {
        let recent = self.recent.lock().ok()?;
        recent.iter().find(|(k, _)| *k == (rendition, part)).map(|(_, b)| b.clone())
    }

    fn remember(&self, rendition: usize, part: u64, bytes: Bytes) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.iter().any(|(k, _)| *k == (rendition, part)) {
                return;
            }
            if recent.len() == RECENT_PARTS {
                recent.pop_front();
            }
            recent.push_back(((rendition, part), bytes));
        }
    }
}
