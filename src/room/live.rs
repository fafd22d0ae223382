//! Live parts and segments, rendered by the stage onto the wall-clock grid (silence is the
//! cached silent part re-stamped) and kept on disk once served ([`super::published`]); and
//! the media playlist, rendered once per published part.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::playlist;
use super::published::PublishedParts;
use super::timeline::{Timeline, PARTS_PER_SEGMENT};
use super::{Error, RoomHandle};
use crate::cache::SegmentCache;
use crate::stage::render::Renderer;

/// Live parts kept in memory per rendition: every listener asks for the same few.
const RECENT_PARTS: usize = 64;
/// Parts are rendered as they are published while someone asked for one this recently (30 s).
const LISTENED_PARTS: u64 = 60;
/// Parts whose one shared render is tracked (more are rendered at once only by a client
/// catching up).
const RENDERS_SHARED: usize = 16;
/// Live segments kept in memory per rendition (a playlist window is 12).
const RECENT_SEGMENTS: usize = 16;

/// The media playlist as served between two part publications.
#[derive(Clone)]
pub struct RenderedPlaylist {
    /// The latest published part it lists.
    pub latest_part: u64,
    pub text: Bytes,
    /// `text` gzip-compressed; `None` if compression failed.
    pub gzip: Option<Bytes>,
}

/// One part's render, shared by everyone who asks for it meanwhile: every rendition.
type RenderOnce = Arc<tokio::sync::OnceCell<Arc<[Bytes]>>>;

/// Builds live part, segment and playlist bytes; cheap to clone.
#[derive(Clone)]
pub struct LiveParts {
    cache: SegmentCache,
    /// Rendition names (`256k`), in ladder order.
    renditions: Arc<[String]>,
    stage: Renderer,
    /// Every part served, on disk: a restart serves the same bytes.
    published: PublishedParts,
    /// The parts being rendered: the listeners asking for one at once all wait for its one
    /// render, and are all woken together when it is done.
    rendering: Arc<Mutex<VecDeque<(u64, RenderOnce)>>>,
    /// The newest grid part a listener asked for (a part or a segment).
    newest_asked: Arc<AtomicU64>,
    parts: Recent,
    segments: Recent,
    playlist: Arc<Mutex<Option<RenderedPlaylist>>>,
}

impl LiveParts {
    /// The live parts of room `room` (its slug).
    pub fn new(cache: SegmentCache, music_dir: PathBuf, room: &str) -> Result<Self, String> {
        let renditions = cache.ladder().len();
        Ok(LiveParts {
            renditions: cache.ladder().iter().map(playlist::rendition_name).collect(),
            stage: Renderer::new(cache.clone(), music_dir)?,
            published: PublishedParts::open(cache.root(), room)
                .map_err(|e| format!("cannot keep published parts in {}: {e}", cache.root().display()))?,
            rendering: Arc::default(),
            newest_asked: Arc::default(),
            cache,
            parts: Recent::new(RECENT_PARTS * renditions),
            segments: Recent::new(RECENT_SEGMENTS * renditions),
            playlist: Arc::default(),
        })
    }

    /// The media playlist at `now_ms` (the same for every rendition: its URIs are relative).
    /// Rendered and compressed once per published part, since every listener asks for it.
    pub fn playlist(&self, now_ms: u64) -> RenderedPlaylist {
        let latest_part = playlist::latest_part(now_ms);
        let memo = self.playlist.lock().ok().and_then(|p| p.clone());
        if let Some(hit) = memo.filter(|p| p.latest_part == latest_part) {
            return hit;
        }
        let text = Bytes::from(playlist::live_playlist(now_ms).to_string());
        let rendered = RenderedPlaylist { latest_part, gzip: gzip(&text), text };
        if let Ok(mut slot) = self.playlist.lock() {
            if slot.as_ref().is_none_or(|p| p.latest_part < latest_part) {
                *slot = Some(rendered.clone());
            }
        }
        rendered
    }

    /// The ladder index of the rendition called `name` (`256k`).
    pub fn rendition(&self, name: &str) -> Option<usize> {
        self.renditions.iter().position(|r| r == name)
    }

    /// Whether parts are rendered as they are published: someone asked for one in the last
    /// [`LISTENED_PARTS`] (what a room costs in CPU).
    pub fn rendering(&self, now_ms: u64) -> bool {
        self.newest_asked.load(Ordering::Relaxed) + LISTENED_PARTS >= super::playlist::latest_part(now_ms)
    }

    /// Forgets the parts this room published (the room was deleted).
    pub fn remove_published(&self) {
        self.published.remove();
    }

    pub fn cache(&self) -> &SegmentCache {
        &self.cache
    }

    /// The bytes of grid part `part` of `rendition`: `tfdt` = part × 24576, so media time
    /// is wall time. Rendered once for every rendition; a part in which nothing sounds is
    /// the cached silent part, and so is one the stage failed to render.
    pub async fn part(&self, timeline: &Timeline, rendition: usize, part: u64) -> Result<Bytes, Error> {
        self.newest_asked.fetch_max(part, Ordering::Relaxed);
        self.rendered(timeline, rendition, part).await
    }

    /// Renders each part as soon as its timeline is final, [`super::timeline::RENDER_AHEAD_MS`] before it is
    /// published, while anyone listens (someone asked for a part in the last
    /// [`LISTENED_PARTS`]): the listeners' requests, which all come at its publication, find
    /// it ready, and a caching proxy's lock holds them only briefly.
    pub async fn render_as_published(self, room: RoomHandle) {
        let mut finalized = room.finalized();
        loop {
            tokio::select! {
                changed = finalized.changed() => if changed.is_err() { return },
                () = room.stopped() => return,
            }
            let part = *finalized.borrow_and_update();
            if self.newest_asked.load(Ordering::Relaxed) + LISTENED_PARTS >= part {
                if let Err(e) = self.rendered(&room.timeline(), 0, part).await {
                    tracing::warn!(error = %e, part, "rendering a part ahead of its publication failed");
                }
            }
        }
    }

    async fn rendered(&self, timeline: &Timeline, rendition: usize, part: u64) -> Result<Bytes, Error> {
        if let Some(hit) = self.parts.get(rendition, part) {
            return Ok(hit);
        }
        let once = self.render_once(part).ok_or_else(|| Error::Internal("the render lock is poisoned".into()))?;
        let all = once.get_or_try_init(|| self.produce(timeline, part)).await?;
        all.get(rendition).cloned().ok_or(Error::NotFound("rendition"))
    }

    /// The one render of `part` every request for it shares (the last [`RENDERS_SHARED`]
    /// parts are tracked; a part rendered is then in memory).
    fn render_once(&self, part: u64) -> Option<RenderOnce> {
        let mut rendering = self.rendering.lock().ok()?;
        if let Some((_, once)) = rendering.iter().find(|(p, _)| *p == part) {
            return Some(once.clone());
        }
        if rendering.len() == RENDERS_SHARED {
            rendering.pop_front();
        }
        let once = RenderOnce::default();
        rendering.push_back((part, once.clone()));
        Some(once)
    }

    /// Every rendition of `part`: as published before (on disk), else rendered; remembered.
    async fn produce(&self, timeline: &Timeline, part: u64) -> Result<Arc<[Bytes]>, Error> {
        if let Some(all) = (0..self.renditions.len()).map(|r| self.parts.get(r, part)).collect::<Option<Vec<_>>>() {
            return Ok(all.into());
        }
        let kept = self.read_published(part).await;
        let all = if kept.iter().all(Option::is_some) {
            kept.into_iter().flatten().collect()
        } else {
            let rendered = self.render(timeline, part).await?;
            // A part published in some renditions only (a kill between writes) keeps those.
            let fresh: Vec<(usize, Bytes)> =
                rendered.iter().enumerate().filter(|(r, _)| kept[*r].is_none()).map(|(r, b)| (r, b.clone())).collect();
            self.write_published(part, fresh);
            kept.into_iter().zip(rendered).map(|(kept, rendered)| kept.unwrap_or(rendered)).collect::<Vec<_>>()
        };
        for (r, bytes) in all.iter().enumerate() {
            self.parts.remember(r, part, bytes.clone());
        }
        Ok(all.into())
    }

    /// Every rendition of grid part `part`, rendered by the stage; silence when nothing
    /// sounds or the stage failed.
    async fn render(&self, timeline: &Timeline, part: u64) -> Result<Vec<Bytes>, Error> {
        let rendered = self.stage.render(timeline, part).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, part, "the stage could not render a part; serving silence");
            None
        });
        match rendered {
            Some(all) => Ok(all),
            None => (0..self.renditions.len()).map(|r| self.silence(r, part)).collect(),
        }
    }

    /// Each rendition of `part` as it was published before, where it was.
    async fn read_published(&self, part: u64) -> Vec<Option<Bytes>> {
        let (published, renditions) = (self.published.clone(), self.renditions.clone());
        let read = move || renditions.iter().map(|r| published.read(part, r)).collect::<Vec<_>>();
        tokio::task::spawn_blocking(read).await.unwrap_or_else(|_| vec![None; self.renditions.len()])
    }

    /// Keeps `(rendition, bytes)` of `part` on disk, beside serving them: the listeners
    /// waiting for the part do not wait for the disk too (a kill in the millisecond between
    /// leaves that part to be rendered again).
    fn write_published(&self, part: u64, fresh: Vec<(usize, Bytes)>) {
        let (published, renditions) = (self.published.clone(), self.renditions.clone());
        let write = move || {
            for (r, bytes) in fresh {
                if let Err(e) = published.write(part, &renditions[r], &bytes) {
                    tracing::warn!(error = %e, part, "cannot keep a published part on disk");
                }
            }
        };
        tokio::task::spawn_blocking(write);
    }

    /// The cached silent part of `rendition`, stamped as grid part `part`.
    fn silence(&self, rendition: usize, part: u64) -> Result<Bytes, Error> {
        let silence = self.cache.silence_part(rendition).ok_or(Error::NotFound("rendition"))?;
        let sequence = (part & u64::from(u32::MAX)) as u32;
        let tfdt = part * u64::from(segmenter::PART_SAMPLES);
        let bytes =
            segmenter::restamp(&silence, sequence, tfdt, &silence).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Bytes::from(bytes))
    }

    /// A live segment: its four parts back to back.
    pub async fn segment(&self, timeline: &Timeline, rendition: usize, msn: u64) -> Result<Bytes, Error> {
        if let Some(hit) = self.segments.get(rendition, msn) {
            return Ok(hit);
        }
        let mut out = Vec::new();
        for part in msn * PARTS_PER_SEGMENT..(msn + 1) * PARTS_PER_SEGMENT {
            out.extend_from_slice(&self.part(timeline, rendition, part).await?);
        }
        let bytes = Bytes::from(out);
        self.segments.remember(rendition, msn, bytes.clone());
        Ok(bytes)
    }
}

/// A rendition index and a part or segment number.
type RenditionNumber = (usize, u64);

/// The last few (rendition, number) → bytes, oldest first out.
#[derive(Clone)]
struct Recent {
    capacity: usize,
    entries: Arc<Mutex<VecDeque<(RenditionNumber, Bytes)>>>,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Recent { capacity, entries: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))) }
    }

    fn get(&self, rendition: usize, n: u64) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        entries.iter().find(|(k, _)| *k == (rendition, n)).map(|(_, b)| b.clone())
    }

    fn remember(&self, rendition: usize, n: u64, bytes: Bytes) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.iter().any(|(k, _)| *k == (rendition, n)) {
                return;
            }
            if entries.len() == self.capacity {
                entries.pop_front();
            }
            entries.push_back(((rendition, n), bytes));
        }
    }
}

fn gzip(text: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text).ok()?;
    encoder.finish().ok().map(Bytes::from)
}
