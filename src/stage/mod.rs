//! The stage: the room renders its own sound.
//!
//! Every live part is mixed from the room's voices and encoded just before it is served,
//! so every listener hears the same crossfades, ramps and GM volume at the same moment.
//!
//! - [`voices`] reads the timeline: which tracks sound in a window of grid samples, from
//!   where, and how they fade in and out (plain data, no I/O).
//! - [`mix`] sums decoded voices with their gains, applies the GM volume and keeps the
//!   sum under full scale (a pure function).
//! - [`tick`] is the calibration click on every whole second, while the GM has it on.
//! - [`render`] fetches and decodes the cached track parts, mixes and encodes a part.
//!
//! A part is rendered on its own, from the timeline alone, so the same part always gets the
//! same bytes and a room nobody hears renders nothing (what was served is also kept on disk,
//! `room::published`, for when the inputs themselves are gone after a restart). So that part
//! boundaries join seamlessly, [`WARM_FRAMES`] before the part and [`LOOKAHEAD_FRAMES`] after
//! it are mixed and encoded too: the encoder, the decoders and the limiter then enter the
//! part as a continuous render would.

pub mod mix;
pub mod render;
pub mod tick;

use std::f32::consts::FRAC_PI_2;

use segmenter::{FRAME_SAMPLES, PART_SAMPLES};

use crate::room::ambience::{DuckStep, DUCK_RAMP_MS, ONESHOT_CUT_MS};
use crate::room::timeline::{Entry, Settle, Source, Timeline, TrackRef, VolumeStep, PART_MS, SETTLE_MS};

/// AAC frames mixed and encoded before a part and thrown away (256 ms).
pub const WARM_FRAMES: u64 = 12;
/// AAC frames mixed after a part: the encoder's look-ahead (its delay is 2048 samples).
pub const LOOKAHEAD_FRAMES: u64 = 2;
/// Every change on the timeline (an entry, a fade, a volume step) is heard this many
/// samples after its part starts (42.7 ms): a part's look-ahead then never depends on a
/// command that arrives after the part was published, so a part renders to the same bytes
/// whenever it is rendered.
pub const CHANGE_DELAY_SAMPLES: u64 = LOOKAHEAD_FRAMES * FRAME_SAMPLES as u64;
/// A GM volume change glides over this long, ms.
pub const VOLUME_GLIDE_MS: u64 = 250;

/// Samples per millisecond at 48 kHz.
const SAMPLES_PER_MS: u64 = 48;

/// An equal-power fade: over `len` samples from grid sample `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fade {
    pub at: u64,
    pub len: u64,
}

impl Fade {
    /// How far into the fade grid sample `s` is, 0..=1.
    fn progress(self, s: u64) -> f32 {
        if s < self.at {
            0.0
        } else if self.len == 0 || s >= self.at + self.len {
            1.0
        } else {
            (s - self.at) as f32 / self.len as f32
        }
    }

    /// Gain of the voice coming in: sin, so that in² + out² = 1.
    pub fn fade_in(self, s: u64) -> f32 {
        match self.progress(s) {
            0.0 => 0.0,
            1.0 => 1.0,
            x => (x * FRAC_PI_2).sin(),
        }
    }

    /// Gain of the voice going out: cos.
    pub fn fade_out(self, s: u64) -> f32 {
        match self.progress(s) {
            0.0 => 1.0,
            1.0 => 0.0,
            x => (x * FRAC_PI_2).cos(),
        }
    }
}

/// A level (0..=1, linear) from grid sample `at` on, reached over `len` samples from the
/// level before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glide {
    pub at: u64,
    pub value: f32,
    pub len: u64,
}

/// The level at grid sample `s` of a series of glides (oldest first); before the first, the
/// first's level, and 1 with none.
pub fn glide_at(steps: &[Glide], s: u64) -> f32 {
    let started = steps.partition_point(|g| g.at <= s);
    let Some(step) = started.checked_sub(1).map(|i| steps[i]) else {
        return steps.first().map_or(1.0, |g| g.value);
    };
    let from = started.checked_sub(2).map_or(step.value, |i| steps[i].value);
    from + (step.value - from) * Fade { at: step.at, len: step.len }.progress(s)
}

/// Which bus a voice plays on: ducking lowers music and ambience, not effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Music,
    Ambience,
    Effects,
}

/// A track sounding on the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    pub track: TrackRef,
    /// Grid sample at which the track's sample 0 would sound (may be before the epoch).
    pub origin: i64,
    pub enter: Fade,
    /// `None` while nothing follows it yet.
    pub leave: Option<Fade>,
    /// Its own level over time (a layer's gain, a one-shot's); empty: 1.
    pub level: Vec<Glide>,
    /// Starts again from its first sample after this many samples, without a gap.
    pub loop_samples: Option<u64>,
    /// Its first sample continues audio heard before it (a loop, a repeated track): it is
    /// decoded from the frame before it, so it does not fade in over its first frame.
    pub seamless: bool,
    pub bus: Bus,
    /// Loudness matching, as a linear gain.
    pub trim: f32,
}

impl Voice {
    /// The voice's gain at grid sample `s`, 0..=1.
    pub fn gain(&self, s: u64) -> f32 {
        self.enter.fade_in(s) * self.leave.map_or(1.0, |f| f.fade_out(s)) * glide_at(&self.level, s) * self.trim
    }

    /// The track sample heard at grid sample `s`; negative before the track starts.
    pub fn track_sample(&self, s: u64) -> i64 {
        s as i64 - self.origin
    }
}

/// The voices that sound anywhere in grid samples `[start, end)`.
///
/// Each track entry of the timeline is a voice from its start part: it fades in over the
/// entry's `fade_ms`, and fades out over the next entry's `fade_ms` from where that one
/// starts, so a crossfade plays the outgoing track on past the change.
pub fn voices(timeline: &Timeline, start: u64, end: u64) -> Vec<Voice> {
    let part_samples = u64::from(PART_SAMPLES);
    let entries = &timeline.entries;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Source::Track { track, from_part } = &entry.source else { continue };
        let begins = entry_begins(entry);
        let enter = Fade { at: begins, len: ms(entry.fade_ms) };
        let leave = entries.get(i + 1).map(|next| Fade { at: entry_begins(next), len: ms(next.fade_ms) });
        let origin = begins as i64 - from_part.saturating_mul(part_samples) as i64;
        // The next entry ends it, not the track's length: that is learnt while it plays, and
        // what a part renders must not change once it is published. Past its end a track is
        // silent.
        let ends = leave.map_or(u64::MAX, |f| f.at.saturating_add(f.len));
        if begins < end && ends > start {
            let (loop_samples, bus) = (None, Bus::Music);
            let trim = trim(track);
            let level = entry
                .settle
                .map_or_else(Vec::new, |settle| vec![Glide { at: 0, value: 1.0, len: 0 }, settled(settle, track, 1.0)]);
            let seamless = entry.early_samples > 0;
            out.push(Voice { track: track.clone(), origin, enter, leave, level, loop_samples, seamless, bus, trim });
        }
    }
    for layer in &timeline.layers {
        let begins = change_at(layer.start_part);
        let leave = layer.stop.map(|s| Fade { at: change_at(s.at_part), len: ms(s.fade_ms) });
        let ends = leave.map_or(u64::MAX, |f| f.at.saturating_add(f.len));
        if begins < end && ends > start {
            out.push(Voice {
                track: layer.track.clone(),
                origin: begins as i64,
                enter: Fade { at: begins, len: ms(layer.fade_ms) },
                leave,
                level: layer
                    .gains
                    .iter()
                    .map(|g| Glide { at: change_at(g.at_part), value: g.gain as f32, len: ms(g.fade_ms) })
                    .collect(),
                loop_samples: Some(layer.loop_samples),
                seamless: true,
                bus: Bus::Ambience,
                trim: trim(&layer.track),
            });
        }
    }
    for shot in &timeline.oneshots {
        let begins = change_at(shot.start_part);
        let leave = shot.cut_at.map(|c| Fade { at: change_at(c), len: ms(ONESHOT_CUT_MS) });
        // Its length as known when it was fired (the tags' if not encoded yet, and a part more).
        let length = match shot.track.parts {
            Some(parts) => parts.saturating_mul(part_samples),
            None => (shot.track.duration_ms + PART_MS).saturating_mul(SAMPLES_PER_MS),
        };
        let ends = leave.map_or(u64::MAX, |f| f.at.saturating_add(f.len)).min(begins.saturating_add(length));
        if begins < end && ends > start {
            out.push(Voice {
                track: shot.track.clone(),
                origin: begins as i64,
                enter: Fade { at: begins, len: 0 },
                leave,
                level: [Glide { at: begins, value: shot.gain as f32, len: 0 }]
                    .into_iter()
                    .chain(shot.settle.map(|settle| settled(settle, &shot.track, shot.gain as f32)))
                    .collect(),
                loop_samples: None,
                seamless: false,
                bus: Bus::Effects,
                trim: trim(&shot.track),
            });
        }
    }
    out
}

/// The glide of a voice at `gain` (linear) of `track` to the level its loudness, learnt
/// while it played, matches.
fn settled(settle: Settle, track: &TrackRef, gain: f32) -> Glide {
    let to = 10f64.powf((settle.gain_db - track.gain_db) / 20.0) as f32;
    Glide { at: change_at(settle.at_part), value: gain * to, len: ms(SETTLE_MS) }
}

/// A track's loudness-matching gain, linear.
fn trim(track: &TrackRef) -> f32 {
    10f64.powf(track.gain_db / 20.0) as f32
}

/// `ms` milliseconds in samples.
fn ms(ms: u32) -> u64 {
    u64::from(ms) * SAMPLES_PER_MS
}

/// The grid sample at which a music entry is heard: its change, or earlier by as much as it
/// continues the track before it.
fn entry_begins(entry: &Entry) -> u64 {
    change_at(entry.start_part).saturating_sub(u64::from(entry.early_samples))
}

/// The grid sample at which a change made at grid part `part` is heard.
pub(crate) fn change_at(part: u64) -> u64 {
    part.saturating_mul(u64::from(PART_SAMPLES)).saturating_add(CHANGE_DELAY_SAMPLES)
}

/// The GM volume at grid sample `s`: each step glides from the one before over
/// [`VOLUME_GLIDE_MS`]; before the first step it is the first's, and with none `current`.
pub fn volume_at(steps: &[VolumeStep], current: f64, s: u64) -> f32 {
    if steps.is_empty() {
        return current as f32;
    }
    let glides: Vec<Glide> = steps
        .iter()
        .map(|v| Glide { at: change_at(v.at_part), value: v.volume as f32, len: VOLUME_GLIDE_MS * SAMPLES_PER_MS })
        .collect();
    glide_at(&glides, s)
}

/// How much ducking leaves of music and ambience over time (linear gain).
pub fn duck_glides(steps: &[DuckStep]) -> Vec<Glide> {
    steps
        .iter()
        .map(|d| Glide {
            at: change_at(d.at_part),
            value: 10f64.powf(d.db / 20.0) as f32,
            len: u64::from(DUCK_RAMP_MS) * SAMPLES_PER_MS,
        })
        .collect()
}

/// The window of grid samples rendered for grid part `part`: `[start, end)`, frame-aligned.
pub fn window(part: u64) -> (u64, u64) {
    let frame = u64::from(FRAME_SAMPLES);
    let start = part.saturating_mul(u64::from(PART_SAMPLES)).saturating_sub(WARM_FRAMES * frame);
    let end = (part + 1).saturating_mul(u64::from(PART_SAMPLES)).saturating_add(LOOKAHEAD_FRAMES * frame);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TrackId;

    const PS: u64 = PART_SAMPLES as u64;
    /// Where a change made at the start of part `p` is heard.
    const fn at(p: u64) -> u64 {
        p * PS + CHANGE_DELAY_SAMPLES
    }

    fn track(id: i64, parts: u64) -> TrackRef {
        TrackRef {
            id: TrackId(id),
            fingerprint: format!("f{id}"),
            relpath: vec![],
            parts: Some(parts),
            samples: None,
            duration_ms: 0,
            loudness_lufs: None,
            gain_db: 0.0,
        }
    }

    fn entry(start_part: u64, source: Source, fade_ms: u32) -> Entry {
        Entry { start_part, source, fade_ms, early_samples: 0, settle: None }
    }

    fn timeline(entries: Vec<Entry>) -> Timeline {
        Timeline { entries, ..Timeline::default() }
    }

    #[test]
    fn a_crossfade_keeps_the_outgoing_track_until_it_has_faded() {
        let a = Source::Track { track: track(1, 100), from_part: 0 };
        let b = Source::Track { track: track(2, 100), from_part: 5 };
        let t = timeline(vec![entry(10, a, 0), entry(20, b, 1000)]);
        // Inside the crossfade both sound, at equal power.
        let v = voices(&t, 20 * PS, 21 * PS);
        assert_eq!(v.len(), 2);
        let mid = at(20) + 24_000;
        let (out, into) = (v[0].gain(mid), v[1].gain(mid));
        assert!((out * out + into * into - 1.0).abs() < 1e-5);
        assert!((out - into).abs() < 1e-3, "half way both are at -3 dB");
        assert_eq!(v[1].track_sample(at(20)), 5 * PS as i64);
        assert_eq!(v[0].track_sample(at(20)), 10 * PS as i64);
        assert_eq!((v[0].gain(at(20) - 1), v[1].gain(at(20) - 1)), (1.0, 0.0), "nothing changes before it is heard");
        // After it only the new track sounds.
        let v = voices(&t, at(20) + 48_000, 22 * PS);
        assert_eq!(v.iter().map(|v| v.track.id.0).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_cut_switches_at_the_part_and_the_next_entry_ends_a_track() {
        let a = Source::Track { track: track(1, 4), from_part: 0 };
        let t = timeline(vec![entry(10, a.clone(), 0), entry(12, Source::Silence, 0)]);
        assert_eq!(voices(&t, at(12), 13 * PS), vec![]);
        assert_eq!(voices(&t, 12 * PS, 13 * PS).len(), 1, "heard until the change is");
        // Not its length, which is learnt while it plays: past it the voice is silent.
        let t = timeline(vec![entry(10, a, 0)]);
        assert_eq!(voices(&t, at(14), at(15)).len(), 1);
    }

    #[test]
    fn a_pause_ramps_down_instead_of_clicking() {
        let a = Source::Track { track: track(1, 100), from_part: 0 };
        let t = timeline(vec![entry(10, a, 0), entry(20, Source::Silence, 250)]);
        let v = voices(&t, 20 * PS, 21 * PS);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].gain(at(20)), 1.0);
        let steps: Vec<f32> = (0..12_000).map(|i| v[0].gain(at(20) + i)).collect();
        assert!(steps.windows(2).all(|w| w[1] <= w[0] && w[0] - w[1] < 0.001), "smooth and falling");
        assert_eq!(v[0].gain(at(20) + 12_000), 0.0);
    }

    /// Commands change the first part not yet published: whatever they add from part P + 1
    /// on must not change what part P renders, look-ahead included.
    #[test]
    fn a_parts_window_does_not_depend_on_the_parts_after_it() {
        let a = Source::Track { track: track(1, 100), from_part: 0 };
        let b = Source::Track { track: track(2, 100), from_part: 0 };
        let before = timeline(vec![entry(10, a.clone(), 0)]);
        let (start, end) = window(20);
        for next in [entry(21, b, 0), entry(21, Source::Silence, 0), entry(21, a, 3000)] {
            let after = timeline(vec![entry(10, Source::Track { track: track(1, 100), from_part: 0 }, 0), next]);
            let (v0, v1) = (voices(&before, start, end), voices(&after, start, end));
            assert_eq!(v0.len(), v1.len());
            for (x, y) in v0.iter().zip(&v1) {
                assert_eq!((x.origin, x.track.id), (y.origin, y.track.id));
                assert!((start..end).all(|s| x.gain(s) == y.gain(s)));
            }
        }
        let mut volume = before.clone();
        volume.set_volume(21, 0.2);
        assert!((start..end).all(|s| volume_at(&volume.volume_steps, 1.0, s) == 1.0));
    }

    #[test]
    fn the_gm_volume_glides_between_steps() {
        let steps = [VolumeStep { at_part: 10, volume: 1.0 }, VolumeStep { at_part: 20, volume: 0.5 }];
        assert_eq!(volume_at(&steps, 0.5, 0), 1.0);
        assert_eq!(volume_at(&steps, 0.5, at(20)), 1.0);
        assert!((volume_at(&steps, 0.5, at(20) + 6_000) - 0.75).abs() < 1e-6);
        assert_eq!(volume_at(&steps, 0.5, at(20) + 12_000), 0.5);
        assert_eq!(volume_at(&[], 0.3, 5), 0.3);
    }

    #[test]
    fn the_window_covers_the_part_and_its_neighbours() {
        let (start, end) = window(100);
        assert_eq!(start, 100 * PS - WARM_FRAMES * 1024);
        assert_eq!(end, 101 * PS + LOOKAHEAD_FRAMES * 1024);
        assert_eq!(window(0).0, 0);
    }
}
