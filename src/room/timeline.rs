//! The room's timeline: plain data saying what plays at every part of the epoch grid.
//!
//! Part `P` covers wall-clock milliseconds `[P × 512, (P + 1) × 512)`. Entries are sorted
//! by `start_part`; each lasts until the next one starts. A GM command replaces what comes
//! at and after its effective part, never anything already published.

use rand::seq::SliceRandom;
use rand::Rng;
use segmenter::PART_SAMPLES;
use serde::{Deserialize, Serialize};

use super::ambience::{DuckStep, Layer, OneShot, TickStep};
use super::apply::ENVELOPE_MS;
use crate::ids::{FolderId, SceneId, TrackId};

/// Milliseconds per part on the grid.
pub const PART_MS: u64 = segmenter::PART_MS;
/// A part's timeline is final this long before the part is published, ms: commands aim at
/// later parts, and the stage renders it then, so the listeners who all ask for it at its
/// publication find it ready.
pub const RENDER_AHEAD_MS: u64 = 30;
/// Parts per segment.
pub const PARTS_PER_SEGMENT: u64 = segmenter::PARTS_PER_SEGMENT as u64;

/// The grid part that contains Unix time `unix_ms`.
pub fn part_at(unix_ms: u64) -> u64 {
    unix_ms / PART_MS
}

/// Repeat mode of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Repeat {
    #[default]
    Off,
    One,
    All,
}

/// A track as the timeline needs it to find its cached parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRef {
    pub id: TrackId,
    pub fingerprint: String,
    /// Raw path bytes relative to the music folder.
    pub relpath: Vec<u8>,
    /// Exact number of parts once the encode has told us; `None` before.
    pub parts: Option<u64>,
    /// Exact length in samples at 48 kHz, known with `parts`: where a repeated track comes
    /// round without a gap.
    #[serde(default)]
    pub samples: Option<u64>,
    /// Length from the library's tags, ms (0 when unknown); bounds positions until `parts` is known.
    #[serde(default)]
    pub duration_ms: u64,
    /// Integrated loudness (EBU R128), LUFS, when the cache had measured it.
    #[serde(default)]
    pub loudness_lufs: Option<f64>,
    /// The stage plays it this much louder (or softer, negative), dB: loudness matching,
    /// fixed when it was put on the timeline so that a part always renders the same.
    #[serde(default)]
    pub gain_db: f64,
}

/// What an entry plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    Silence,
    /// A track from its part `from_part` on.
    Track {
        track: TrackRef,
        from_part: u64,
    },
}

/// From `start_part` on, play `source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub start_part: u64,
    pub source: Source,
    /// How long this entry fades in while the one before fades out, ms (0: a cut).
    #[serde(default)]
    pub fade_ms: u32,
    /// Its track sounds this many samples (less than a part) before the entry's part: a
    /// repeated track comes round where its last sample ends, without a gap.
    #[serde(default)]
    pub early_samples: u32,
    /// Its track's loudness was learnt while it played: it glides to its matched level.
    #[serde(default)]
    pub settle: Option<Settle>,
}

/// From grid part `at_part`, an entry or a one-shot glides over [`SETTLE_MS`] to `gain_db`
/// (instead of its track's `gain_db`): the level that matches its loudness, learnt once it was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settle {
    pub at_part: u64,
    pub gain_db: f64,
}

/// A track whose loudness is learnt while it plays glides to its matched level over this, ms.
pub const SETTLE_MS: u32 = 1_000;

impl Entry {
    /// The grid sample after its track's last (exact once the track's samples are known,
    /// else at the end of its last part); `None` for silence or a track of unknown length.
    /// Wide, so that far-off parts do not overflow.
    pub fn track_end_sample(&self) -> Option<u128> {
        let Source::Track { track, from_part } = &self.source else { return None };
        let ps = u128::from(PART_SAMPLES);
        let length = track.samples.map(u128::from).or(track.parts.map(|n| u128::from(n) * ps))?;
        let start = (u128::from(self.start_part) * ps).saturating_sub(u128::from(self.early_samples));
        Some(start + length.saturating_sub(u128::from(*from_part) * ps))
    }
}

/// The GM volume from a grid part on (it glides there from the one before).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VolumeStep {
    pub at_part: u64,
    /// 0..=1, linear gain.
    pub volume: f64,
}

/// Loudness matching never lowers a track by more than this, dB.
pub const MAX_CUT_DB: f64 = 24.0;
/// Loudness matching never raises a track by more than this, dB (the limiter catches peaks).
pub const MAX_BOOST_DB: f64 = 12.0;
/// The loudness every track is brought to by default, LUFS.
pub const DEFAULT_TARGET_LUFS: f64 = -18.0;
/// The loudness targets a GM may choose, LUFS.
pub const TARGET_LUFS: std::ops::RangeInclusive<f64> = -30.0..=-10.0;

fn default_target_lufs() -> f64 {
    DEFAULT_TARGET_LUFS
}

fn yes() -> bool {
    true
}

/// The longest crossfade a GM may set, ms.
pub const MAX_CROSSFADE_MS: u32 = 12_000;
/// The crossfade of a new room, ms.
pub const DEFAULT_CROSSFADE_MS: u32 = 3_000;

fn default_crossfade_ms() -> u32 {
    DEFAULT_CROSSFADE_MS
}

/// What a grid part carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Content<'a> {
    Silence,
    /// Part `index` (track-relative) of `track`.
    Track {
        track: &'a TrackRef,
        index: u64,
    },
}

/// A paused track and the part it resumes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paused {
    pub track: TrackRef,
    pub at_part: u64,
}

/// The room's whole state; persisted as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub entries: Vec<Entry>,
    /// Play order.
    pub queue: Vec<TrackId>,
    /// Position of the current track in `queue`.
    pub queue_index: Option<usize>,
    /// The queue's order before shuffling, restored when shuffle goes off.
    pub unshuffled: Option<Vec<TrackId>>,
    pub repeat: Repeat,
    pub shuffle: bool,
    /// Master volume, 0..=1: the latest of `volume_steps`.
    pub volume: f64,
    /// Where the GM volume changed, oldest first; the stage glides between them.
    #[serde(default)]
    pub volume_steps: Vec<VolumeStep>,
    /// Track changes crossfade over this long, ms (0: a cut).
    #[serde(default = "default_crossfade_ms")]
    pub crossfade_ms: u32,
    /// Bring tracks put on the stage from now on to `target_lufs`.
    #[serde(default = "yes")]
    pub normalize: bool,
    #[serde(default = "default_target_lufs")]
    pub target_lufs: f64,
    pub paused: Option<Paused>,
    /// The grid part from which the latest change is heard.
    pub changed_at_part: u64,
    /// The last playback problem (a track that could not be decoded), for the GM.
    pub error: Option<String>,
    /// The next track (or the queue's end) scheduled ahead of time by the look-ahead, and
    /// the queue position before it, so a command arriving first can take it back.
    #[serde(default)]
    pub scheduled: Option<Scheduled>,
    /// The playback delay the GM pinned, ms; `None` while it adapts to the listeners.
    #[serde(default)]
    pub delay_pin_ms: Option<u64>,
    /// Ambience loops under the music, in the order they were added.
    #[serde(default)]
    pub layers: Vec<Layer>,
    /// The id the next layer gets.
    #[serde(default)]
    pub next_layer_id: u64,
    /// Tracks played once on top.
    #[serde(default)]
    pub oneshots: Vec<OneShot>,
    /// Where ducking started or ended, oldest first.
    #[serde(default)]
    pub duck_steps: Vec<DuckStep>,
    /// Where the calibration tick was turned on or off, oldest first.
    #[serde(default)]
    pub tick_steps: Vec<TickStep>,
    /// The folder the queue was made from, while it still is.
    #[serde(default)]
    pub queue_folder: Option<FolderId>,
    /// The scene the GM switched to last.
    #[serde(default)]
    pub scene: Option<ActiveScene>,
}

/// The scene the room plays, as it was when the GM switched to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveScene {
    pub id: SceneId,
    pub name: String,
    /// What could not be played (a missing track, an unknown folder), one line each.
    pub skipped: Vec<String>,
}

/// An automatic queue advance decided before it is heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// Grid part where it starts.
    pub at: u64,
    /// `queue_index` before the advance.
    pub previous_index: Option<usize>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            entries: vec![Entry { start_part: 0, source: Source::Silence, fade_ms: 0, early_samples: 0, settle: None }],
            queue: Vec::new(),
            queue_index: None,
            unshuffled: None,
            repeat: Repeat::Off,
            shuffle: false,
            volume: 1.0,
            volume_steps: Vec::new(),
            crossfade_ms: DEFAULT_CROSSFADE_MS,
            normalize: true,
            target_lufs: DEFAULT_TARGET_LUFS,
            paused: None,
            changed_at_part: 0,
            error: None,
            scheduled: None,
            delay_pin_ms: None,
            layers: Vec::new(),
            next_layer_id: 0,
            oneshots: Vec::new(),
            duck_steps: Vec::new(),
            tick_steps: Vec::new(),
            queue_folder: None,
            scene: None,
        }
    }
}

impl Timeline {
    /// Index of the entry in effect at `part`.
    fn entry_index(&self, part: u64) -> Option<usize> {
        match self.entries.partition_point(|e| e.start_part <= part) {
            0 => None,
            n => Some(n - 1),
        }
    }

    /// The entry in effect at `part`.
    pub fn entry_at(&self, part: u64) -> Option<&Entry> {
        self.entry_index(part).map(|i| &self.entries[i])
    }

    /// What grid part `part` carries. A track past its known end is silence.
    pub fn content_at(&self, part: u64) -> Content<'_> {
        match self.entry_at(part) {
            Some(Entry { start_part, source: Source::Track { track, from_part }, .. }) => {
                let index = from_part.saturating_add(part.saturating_sub(*start_part));
                match track.parts {
                    Some(n) if index >= n => Content::Silence,
                    _ => Content::Track { track, index },
                }
            }
            _ => Content::Silence,
        }
    }

    /// The last entry, which lasts until a new one is added.
    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }

    /// The grid part where the last entry's track runs out, if it is a track of known
    /// length: the part after its last sample.
    pub fn last_track_end(&self) -> Option<u64> {
        let entry = self.last()?;
        let end = entry.track_end_sample()?.div_ceil(u128::from(PART_SAMPLES));
        Some(u64::try_from(end).unwrap_or(u64::MAX))
    }

    /// Makes the entry that starts at `at` continue the same track before it where that one's
    /// last sample ends, if that is within the part before `at`: a track repeating itself
    /// comes round without a gap. (Entries start on parts; tracks rarely end on one.)
    pub fn continue_gapless(&mut self, at: u64) {
        let Some(i) = self.entries.iter().rposition(|e| e.start_part == at) else { return };
        let Some(previous) = i.checked_sub(1).map(|p| &self.entries[p]) else { return };
        let same = match (&previous.source, &self.entries[i].source) {
            (Source::Track { track: a, .. }, Source::Track { track: b, from_part: 0 }) => {
                a.fingerprint == b.fingerprint
            }
            _ => false,
        };
        let Some(end) = previous.track_end_sample().filter(|_| same) else { return };
        let early = (u128::from(at) * u128::from(PART_SAMPLES)).checked_sub(end);
        if let Some(early) = early.filter(|&e| e < u128::from(PART_SAMPLES)) {
            self.entries[i].early_samples = early as u32;
            self.entries[i].fade_ms = 0;
        }
    }

    /// `track` with the gain that brings it to the room's loudness target, if the room
    /// matches loudness and the track's loudness is known (else unchanged: 0 dB).
    pub fn leveled(&self, mut track: TrackRef) -> TrackRef {
        track.gain_db = self.matching_gain_db(track.loudness_lufs);
        track
    }

    /// The gain that brings a track of loudness `lufs` to the room's target, dB (0 when the
    /// room does not match loudness or it is unknown).
    fn matching_gain_db(&self, lufs: Option<f64>) -> f64 {
        match (self.normalize, lufs) {
            (true, Some(lufs)) => (self.target_lufs - lufs).clamp(-MAX_CUT_DB, MAX_BOOST_DB),
            _ => 0.0,
        }
    }

    /// The track with `fingerprint` measures `lufs`: where it was put on the timeline before
    /// that was known, it is matched from part `at` on (an entry or a one-shot that starts
    /// later, at once; one already heard glides there).
    pub fn learn_loudness(&mut self, fingerprint: &str, lufs: f64, at: u64) {
        let gain_db = self.matching_gain_db(Some(lufs));
        for entry in &mut self.entries {
            let Source::Track { track, .. } = &mut entry.source else { continue };
            if track.fingerprint != fingerprint || track.loudness_lufs.is_some() {
                continue;
            }
            track.loudness_lufs = Some(lufs);
            if entry.start_part >= at {
                track.gain_db = gain_db;
            } else if gain_db != track.gain_db {
                entry.settle = Some(Settle { at_part: at, gain_db });
            }
        }
        for shot in &mut self.oneshots {
            if shot.track.fingerprint == fingerprint && shot.track.loudness_lufs.is_none() {
                shot.track.loudness_lufs = Some(lufs);
                if shot.start_part >= at {
                    shot.track.gain_db = gain_db;
                } else if gain_db != shot.track.gain_db {
                    shot.settle = Some(Settle { at_part: at, gain_db });
                }
            }
        }
        if let Some(p) = self.paused.as_mut().filter(|p| p.track.fingerprint == fingerprint) {
            p.track.loudness_lufs = Some(lufs);
        }
    }

    /// Replaces everything from part `at` on with `source`.
    pub fn switch(&mut self, at: u64, source: Source) {
        let source = match source {
            Source::Track { track, from_part } => Source::Track { track: self.leveled(track), from_part },
            silence => silence,
        };
        self.entries.retain(|e| e.start_part < at);
        if let Some(Source::Silence) = self.entries.last().map(|e| &e.source) {
            if source == Source::Silence {
                self.changed_at_part = at;
                return;
            }
        }
        self.entries.push(Entry { start_part: at, source, fade_ms: 0, early_samples: 0, settle: None });
        self.changed_at_part = at;
    }

    /// Makes the entry that starts at `at`, if any, fade in over `fade_ms` while the one
    /// before fades out as long. Out of silence (or a track that has ended, as far as is
    /// known now) a track starts at once, within the short ramp: a crossfade needs something
    /// to fade from. Decided here, once, so that a part renders the same however much is
    /// learnt later.
    pub fn set_fade(&mut self, at: u64, fade_ms: u32) {
        let Some(i) = self.entries.iter().rposition(|e| e.start_part == at) else { return };
        let from_sound = i.checked_sub(1).is_some_and(|p| match &self.entries[p] {
            Entry { start_part, source: Source::Track { track, from_part }, .. } => {
                track.parts.is_none_or(|n| from_part.saturating_add(at - start_part) < n)
            }
            _ => false,
        });
        self.entries[i].fade_ms = if from_sound { fade_ms } else { fade_ms.min(ENVELOPE_MS) };
    }

    /// The GM volume is `volume` from part `at` on.
    pub fn set_volume(&mut self, at: u64, volume: f64) {
        if self.volume_steps.is_empty() {
            // What was heard before the first change.
            self.volume_steps.push(VolumeStep { at_part: 0, volume: self.volume });
        }
        self.volume_steps.retain(|s| s.at_part < at);
        self.volume_steps.push(VolumeStep { at_part: at, volume });
        self.volume = volume;
        self.changed_at_part = at;
    }

    /// Takes back an automatic advance that is not heard before `at`: its entries go and
    /// the queue position returns to where it was.
    pub fn unschedule(&mut self, at: u64) {
        match self.scheduled {
            Some(s) if s.at >= at => {
                self.entries.retain(|e| e.start_part < s.at);
                self.queue_index = s.previous_index.filter(|&i| i < self.queue.len());
                self.scheduled = None;
            }
            Some(_) => self.scheduled = None,
            None => {}
        }
    }

    /// Drops entries that ended before `part`; the one in effect at `part` stays.
    pub fn forget_before(&mut self, part: u64) {
        if let Some(i) = self.entry_index(part) {
            self.entries.drain(..i);
        }
        let in_effect = self.volume_steps.partition_point(|s| s.at_part <= part);
        self.volume_steps.drain(..in_effect.saturating_sub(1));
        self.forget_ambience_before(part);
    }

    /// The track playing (or paused) at `part`, with its track-relative part index.
    pub fn current(&self, part: u64) -> Option<(TrackRef, u64, bool)> {
        if let Content::Track { track, index } = self.content_at(part) {
            return Some((track.clone(), index, false));
        }
        self.paused.as_ref().map(|p| (p.track.clone(), p.at_part, true))
    }

    /// Plays `track` from its part `from_part`, starting at grid part `at`.
    pub fn play(&mut self, at: u64, track: TrackRef, from_part: u64) {
        self.paused = None;
        self.switch(at, Source::Track { track, from_part });
    }

    /// Silence from `at`, remembering where to resume; false when nothing plays at `at`.
    pub fn pause(&mut self, at: u64) -> bool {
        let Content::Track { track, index } = self.content_at(at) else { return false };
        self.paused = Some(Paused { track: track.clone(), at_part: index });
        self.switch(at, Source::Silence);
        true
    }

    /// Continues a paused track at `at`; false when nothing is paused.
    pub fn resume(&mut self, at: u64) -> bool {
        match self.paused.take() {
            Some(p) => {
                self.switch(at, Source::Track { track: p.track, from_part: p.at_part });
                true
            }
            None => false,
        }
    }

    /// Silence from `at`; nothing is current any more.
    pub fn stop(&mut self, at: u64) {
        self.paused = None;
        self.switch(at, Source::Silence);
    }

    /// Appends tracks to the queue (and to the unshuffled order).
    pub fn enqueue(&mut self, tracks: &[TrackId]) {
        self.queue.extend_from_slice(tracks);
        if let Some(u) = &mut self.unshuffled {
            u.extend_from_slice(tracks);
        }
    }

    /// Makes `tracks` the queue, optionally shuffled, with nothing current yet.
    pub fn replace_queue(&mut self, tracks: Vec<TrackId>, shuffle: bool, rng: &mut impl Rng) {
        self.shuffle = shuffle;
        self.unshuffled = None;
        self.queue = tracks;
        self.queue_index = None;
        if shuffle {
            self.unshuffled = Some(self.queue.clone());
            self.queue.shuffle(rng);
        }
    }

    /// Makes `track` current in the queue: its position if queued, else inserted after the current one.
    pub fn select_in_queue(&mut self, track: TrackId) -> usize {
        if let Some(i) = self.queue_index.filter(|&i| self.queue.get(i) == Some(&track)) {
            return i;
        }
        let at = self.queue_index.map(|i| i + 1).unwrap_or(self.queue.len()).min(self.queue.len());
        self.queue.insert(at, track);
        if let Some(u) = &mut self.unshuffled {
            u.push(track);
        }
        self.queue_index = Some(at);
        at
    }

    /// The queue position after the current one, following repeat (`natural` = the track ended).
    /// Whether the queue goes on after the current track ends by itself.
    pub fn has_next(&self) -> bool {
        let len = self.queue.len();
        match self.queue_index.filter(|&i| i < len) {
            _ if len == 0 => false,
            None => true,
            Some(i) => i + 1 < len || self.repeat != Repeat::Off,
        }
    }

    pub fn next_index(&mut self, natural: bool, rng: &mut impl Rng) -> Option<usize> {
        let len = self.queue.len();
        if len == 0 {
            return None;
        }
        let Some(i) = self.queue_index.filter(|&i| i < len) else { return Some(0) };
        if natural && self.repeat == Repeat::One {
            return Some(i.min(len - 1));
        }
        if i + 1 < len {
            return Some(i + 1);
        }
        if self.repeat == Repeat::All || (!natural && self.repeat == Repeat::One) {
            if self.shuffle && len > 1 {
                let current = self.queue[i];
                self.queue.shuffle(rng);
                // Never the same track twice in a row across a reshuffle.
                if self.queue[0] == current {
                    self.queue.swap(0, len - 1);
                }
            }
            return Some(0);
        }
        None
    }

    /// The queue position before the current one.
    pub fn previous_index(&self) -> Option<usize> {
        let len = self.queue.len();
        match self.queue_index {
            _ if len == 0 => None,
            None => Some(0),
            Some(0) if self.repeat == Repeat::All => Some(len - 1),
            Some(0) => Some(0),
            Some(i) => Some(i.min(len) - 1),
        }
    }

    /// Turns shuffle on (shuffling what comes after the current track) or off (restoring the order).
    pub fn set_shuffle(&mut self, on: bool, rng: &mut impl Rng) {
        if on == self.shuffle {
            return;
        }
        self.shuffle = on;
        let current = self.queue_index.and_then(|i| self.queue.get(i).copied());
        if on {
            self.unshuffled = Some(self.queue.clone());
            let start = self.queue_index.map(|i| i + 1).unwrap_or(0).min(self.queue.len());
            self.queue[start..].shuffle(rng);
        } else if let Some(order) = self.unshuffled.take() {
            self.queue = order;
            self.queue_index = current.and_then(|c| self.queue.iter().position(|t| *t == c));
        }
    }

    /// Removes queue position `index`; the current track keeps playing.
    pub fn remove_from_queue(&mut self, index: usize) -> bool {
        if index >= self.queue.len() {
            return false;
        }
        let removed = self.queue.remove(index);
        if let Some(u) = &mut self.unshuffled {
            if let Some(p) = u.iter().position(|t| *t == removed) {
                u.remove(p);
            }
        }
        self.queue_index = match self.queue_index {
            Some(i) if i > index => Some(i - 1),
            Some(i) if i == index => None,
            other => other,
        };
        true
    }

    /// Moves queue position `from` to `to` (its index after the move).
    pub fn move_in_queue(&mut self, from: usize, to: usize) -> bool {
        let len = self.queue.len();
        if from >= len || to >= len {
            return false;
        }
        let t = self.queue.remove(from);
        self.queue.insert(to, t);
        // By position, not by track: a track can be queued more than once.
        self.queue_index = self.queue_index.map(|i| match i {
            _ if i == from => to,
            _ if from < i && i <= to => i - 1,
            _ if to <= i && i < from => i + 1,
            _ => i,
        });
        true
    }

    /// Reads a saved timeline; an error says why it does not make sense.
    pub fn from_saved(json: &str) -> Result<Timeline, String> {
        let t: Timeline = serde_json::from_str(json).map_err(|e| e.to_string())?;
        t.validate()?;
        Ok(t)
    }

    /// Checks what every command keeps true: entries in order, indices inside the queue, a
    /// volume in range. A timeline that passes cannot make the room panic.
    pub fn validate(&self) -> Result<(), String> {
        if self.entries.is_empty() {
            return Err("it has no entries".into());
        }
        if !self.entries.windows(2).all(|w| w[0].start_part < w[1].start_part) {
            return Err("its entries are out of order".into());
        }
        let len = self.queue.len();
        if self.queue_index.is_some_and(|i| i >= len) {
            return Err(format!("its queue position is past the queue's {len} tracks"));
        }
        if self.scheduled.and_then(|s| s.previous_index).is_some_and(|i| i >= len) {
            return Err(format!("its scheduled advance points past the queue's {len} tracks"));
        }
        if let Some(order) = &self.unshuffled {
            let (mut a, mut b) = (order.clone(), self.queue.clone());
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return Err("its unshuffled order holds other tracks than the queue".into());
            }
        }
        if self.delay_pin_ms.is_some_and(|ms| !super::command::PINNED_DELAY_MS.contains(&ms)) {
            return Err("its pinned playback delay is out of range".into());
        }
        if !(0.0..=1.0).contains(&self.volume) {
            return Err(format!("its volume {} is not between 0 and 1", self.volume));
        }
        if let Some(bad) = self.volume_steps.iter().find(|s| !(0.0..=1.0).contains(&s.volume)) {
            return Err(format!("a volume step {} is not between 0 and 1", bad.volume));
        }
        if !self.volume_steps.windows(2).all(|w| w[0].at_part < w[1].at_part) {
            return Err("its volume steps are out of order".into());
        }
        if self.crossfade_ms > MAX_CROSSFADE_MS || self.entries.iter().any(|e| e.fade_ms > MAX_CROSSFADE_MS) {
            return Err(format!("a crossfade is longer than {MAX_CROSSFADE_MS} ms"));
        }
        let mut tracks = self
            .entries
            .iter()
            .filter_map(|e| match &e.source {
                Source::Track { track, .. } => Some(track),
                Source::Silence => None,
            })
            .chain(self.paused.iter().map(|p| &p.track))
            .chain(self.layers.iter().map(|l| &l.track))
            .chain(self.oneshots.iter().map(|o| &o.track));
        if tracks.any(|t| !(-MAX_CUT_DB..=MAX_BOOST_DB).contains(&t.gain_db)) {
            return Err("a track's loudness gain is out of range".into());
        }
        if !TARGET_LUFS.contains(&self.target_lufs) {
            return Err(format!("its loudness target {} is out of range", self.target_lufs));
        }
        self.validate_ambience()
    }

    /// Empties the queue except the current track.
    pub fn clear_queue(&mut self) {
        let current = self.queue_index.and_then(|i| self.queue.get(i).copied());
        self.queue = current.into_iter().collect();
        self.unshuffled = self.unshuffled.as_ref().map(|_| self.queue.clone());
        self.queue_index = current.map(|_| 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(3)
    }

    fn track(id: i64, parts: Option<u64>) -> TrackRef {
        TrackRef {
            id: TrackId(id),
            fingerprint: format!("f{id}"),
            relpath: vec![b'a'],
            parts,
            samples: None,
            duration_ms: 0,
            loudness_lufs: None,
            gain_db: 0.0,
        }
    }

    #[test]
    fn content_follows_entries_and_ends_in_silence() {
        let mut t = Timeline::default();
        t.play(100, track(1, Some(10)), 2);
        assert_eq!(t.content_at(99), Content::Silence);
        assert_eq!(t.content_at(100), Content::Track { track: &track(1, Some(10)), index: 2 });
        assert_eq!(t.content_at(107), Content::Track { track: &track(1, Some(10)), index: 9 });
        assert_eq!(t.content_at(108), Content::Silence);
        assert_eq!(t.last_track_end(), Some(108));
    }

    #[test]
    fn a_crossfade_needs_something_to_fade_from() {
        let mut t = Timeline::default();
        t.play(10, track(1, Some(4)), 0);
        t.set_fade(10, 3000);
        assert_eq!(t.entries[1].fade_ms, ENVELOPE_MS, "out of silence: the short ramp");
        t.play(12, track(2, Some(40)), 0);
        t.set_fade(12, 3000);
        assert_eq!(t.entries[2].fade_ms, 3000, "from a track still sounding: the crossfade");
        t.play(30, track(3, None), 0);
        t.set_fade(30, 3000);
        assert_eq!(t.entries[3].fade_ms, 3000);
        t.play(80, track(4, None), 0);
        t.set_fade(80, 3000);
        assert_eq!(t.entries[4].fade_ms, 3000, "a track of unknown length is taken to sound");
        t.play(90, track(5, None), 0);
        t.entries[4].source = Source::Track { track: track(4, Some(5)), from_part: 0 };
        t.set_fade(90, 3000);
        assert_eq!(t.entries[5].fade_ms, ENVELOPE_MS, "after a track's end: the short ramp");
    }

    #[test]
    fn pause_and_resume_continue_where_cut() {
        let mut t = Timeline::default();
        t.play(10, track(1, None), 0);
        assert!(t.pause(15));
        assert_eq!(t.content_at(15), Content::Silence);
        assert_eq!(t.paused.as_ref().map(|p| p.at_part), Some(5));
        assert!(t.resume(40));
        assert_eq!(t.content_at(40), Content::Track { track: &track(1, None), index: 5 });
        assert_eq!(t.content_at(14), Content::Track { track: &track(1, None), index: 4 }, "the past is unchanged");
    }

    #[test]
    fn a_command_replaces_only_the_future() {
        let mut t = Timeline::default();
        t.play(10, track(1, Some(100)), 0);
        t.play(50, track(2, Some(100)), 0);
        t.play(30, track(3, Some(100)), 0);
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.entries.last().map(|e| e.start_part), Some(30));
        t.forget_before(35);
        assert_eq!(t.entries.len(), 1);
    }

    #[test]
    fn an_advance_not_yet_heard_can_be_taken_back() {
        let mut t = Timeline::default();
        t.replace_queue(vec![TrackId(1), TrackId(2)], false, &mut rng());
        t.queue_index = Some(0);
        t.play(10, track(1, Some(20)), 0);
        t.scheduled = Some(Scheduled { at: 30, previous_index: Some(0) });
        t.queue_index = Some(1);
        t.play(30, track(2, Some(20)), 0);
        t.unschedule(25);
        assert_eq!(t.queue_index, Some(0));
        assert_eq!(t.last().map(|e| e.start_part), Some(10));
        assert_eq!(t.scheduled, None);
    }

    #[test]
    fn queue_order_follows_repeat_modes() {
        let mut t = Timeline::default();
        let rng = &mut rng();
        t.replace_queue(vec![TrackId(1), TrackId(2)], false, rng);
        assert_eq!(t.next_index(true, rng), Some(0));
        t.queue_index = Some(1);
        assert_eq!(t.next_index(true, rng), None);
        t.repeat = Repeat::All;
        assert_eq!(t.next_index(true, rng), Some(0));
        t.repeat = Repeat::One;
        assert_eq!(t.next_index(true, rng), Some(1));
        assert_eq!(t.next_index(false, rng), Some(0), "next skips even with repeat one");
    }

    #[test]
    fn shuffle_off_restores_the_order_and_keeps_the_current_track() {
        let mut t = Timeline::default();
        t.replace_queue((1..=20).map(TrackId).collect(), false, &mut rng());
        t.queue_index = Some(4);
        t.set_shuffle(true, &mut rng());
        assert_eq!(t.queue[4], TrackId(5));
        t.queue_index = Some(9);
        let playing = t.queue[9];
        t.set_shuffle(false, &mut rng());
        assert_eq!(t.queue, (1..=20).map(TrackId).collect::<Vec<_>>());
        assert_eq!(t.queue[t.queue_index.unwrap()], playing);
    }

    #[test]
    fn queue_edits_keep_the_current_index() {
        let mut t = Timeline::default();
        t.replace_queue(vec![TrackId(1), TrackId(2), TrackId(3)], false, &mut rng());
        t.queue_index = Some(1);
        assert!(t.move_in_queue(2, 0));
        assert_eq!(t.queue, [TrackId(3), TrackId(1), TrackId(2)]);
        assert_eq!(t.queue_index, Some(2));
        assert!(t.remove_from_queue(0));
        assert_eq!(t.queue_index, Some(1));
        assert!(!t.remove_from_queue(5));
        t.clear_queue();
        assert_eq!(t.queue, [TrackId(2)]);
        assert_eq!(t.queue_index, Some(0));
    }

    #[test]
    fn moves_keep_the_current_position_when_a_track_is_queued_twice() {
        let mut t = Timeline::default();
        t.replace_queue([1, 2, 1, 3].map(TrackId).to_vec(), false, &mut rng());
        t.queue_index = Some(2);
        assert!(t.move_in_queue(3, 0));
        assert_eq!((t.queue.as_slice(), t.queue_index), ([3, 1, 2, 1].map(TrackId).as_slice(), Some(3)));
        assert!(t.move_in_queue(3, 1));
        assert_eq!(t.queue_index, Some(1));
        assert!(t.move_in_queue(0, 2));
        assert_eq!((t.queue.as_slice(), t.queue_index), ([1, 1, 3, 2].map(TrackId).as_slice(), Some(0)));
    }

    #[test]
    fn saved_timelines_that_make_no_sense_are_refused() {
        let mut t = Timeline::default();
        t.replace_queue(vec![TrackId(1), TrackId(2)], false, &mut rng());
        t.queue_index = Some(1);
        t.play(10, track(2, Some(5)), 0);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(Timeline::from_saved(&json), Ok(t.clone()));
        assert!(Timeline::from_saved("{").is_err());
        assert!(Timeline::from_saved(&json.replace("\"queue_index\":1", "\"queue_index\":7")).is_err());
        assert!(Timeline::from_saved(&json.replace("\"volume\":1.0", "\"volume\":3.0")).is_err());
        let mut backwards = t.clone();
        backwards.entries.reverse();
        assert!(backwards.validate().is_err());
        let mut empty = t;
        empty.entries.clear();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn far_off_parts_saturate_instead_of_overflowing() {
        let mut t = Timeline::default();
        t.play(u64::MAX - 1, track(1, Some(u64::MAX)), u64::MAX - 1);
        assert_eq!(
            t.content_at(u64::MAX - 1),
            Content::Track { track: &track(1, Some(u64::MAX)), index: u64::MAX - 1 }
        );
        assert_eq!(t.content_at(u64::MAX), Content::Silence, "index u64::MAX is past the track");
        assert_eq!(t.last_track_end(), Some(u64::MAX));
        t.play(5, track(2, None), u64::MAX);
        assert_eq!(t.content_at(u64::MAX), Content::Track { track: &track(2, None), index: u64::MAX });
    }
}
